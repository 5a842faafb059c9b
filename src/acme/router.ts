/**
 * ACME routes (RFC 8555 §7, RFC 9773). Each POST route names the key that
 * must sign it; the dispatcher (dispatch.ts) verifies the JWS first
 * (pipeline.ts), then one thin handler parses the payload, makes one RA call
 * and renders the result.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PkiError } from '../errors/pki-error.js';
import { toPem } from '../pki/pem.js';
import type { AcmeAccounts } from '../ra/acme/accounts.js';
import type { NonceService } from '../ra/acme/nonces.js';
import type { AcmeOrders } from '../ra/acme/orders.js';
import type { AcmeRevocation } from '../ra/acme/revocation.js';
import { normaliseSerial } from '../ra/revoke.js';
import { acmeDispatcher, type AcmeRoute } from './dispatch.js';
import type { AcmeExchange } from './exchange.js';
import { decodeBase64url } from './jwk.js';
import { verifyExternalAccountBinding } from './eab.js';
import { parseKeyChange } from './jws.js';
import { Links } from './links.js';
import { accountKeyObjects, nonceHeaders, type AcmeRequest, type BodyParser } from './pipeline.js';
import { renderAccount, renderAuthorization, renderChallenge, renderOrder } from './render.js';
import { accountUpdatePayload, authorizationPayload, finalizePayload, newAccountPayload, newOrderPayload, parsePayload, revokePayload } from './schemas.js';

export interface AcmeDirectories {
  /** Profiles with a directory. */
  profiles: readonly string[];
  /** Behind `/acme/directory`. */
  defaultProfile: string;
  requiresEab(profile: string): boolean;
  termsOfService?: string | undefined;
}

export interface AcmeRouterDeps {
  accounts: AcmeAccounts;
  orders: AcmeOrders;
  revocation: AcmeRevocation;
  nonces: NonceService;
  directories: AcmeDirectories;
  /** Chains above a leaf of `issuerId`, preferred first (DER, leaf excluded). */
  chains(issuerId: string): Buffer[][];
  bodyLimitBytes: number;
  /** The instance's base URL: every ACME URL (directory, Location, Link, the JWS "url" expected) starts with it, whatever Host a request names. */
  publicBaseUrl: string;
  log: (event: Record<string, unknown>) => void;
}

/** Seconds a client should wait before asking for renewal information again (RFC 9773 §4.3). */
const ariRetryAfterSeconds = 6 * 3600;

const acmeOf = (x: AcmeExchange): AcmeRequest => x.acme!;
const accountOf = (x: AcmeExchange) => acmeOf(x).account!;
const param = (x: AcmeExchange, name: string) => String(x.params[name]);

/** The front's hot handler for everything under /acme (it answers every such request). */
export function acmeRouter(deps: AcmeRouterDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { accounts, orders, revocation, nonces, directories } = deps;
  const links = Links.fromBaseUrl(deps.publicBaseUrl);
  const bodyParser = lazyJsonParser(deps.bodyLimitBytes);
  const pipeline = { accounts, nonces, bodyLimitBytes: deps.bodyLimitBytes, accountKeys: accountKeyObjects(), links, bodyParser };
  const routes: AcmeRoute[] = [];
  const get = (path: string, handle: AcmeRoute['handle']) => routes.push({ method: 'GET', path, handle });
  const post = (path: string, key: AcmeRoute['key'], handle: AcmeRoute['handle'], nonce?: AcmeRoute['nonce']) =>
    routes.push({ method: 'POST', path, key, handle, ...(nonce ? { nonce } : {}) });
  const profileOf = (x: AcmeExchange) => {
    const p = x.params.profile === undefined ? directories.defaultProfile : String(x.params.profile);
    if (!directories.profiles.includes(p)) throw new PkiError('notFound', `no ACME directory for profile "${p.slice(0, 64)}"`);
    return p;
  };
  /** Every answer carries a fresh nonce and the index link of the directory it belongs to. */
  const answer = (x: AcmeExchange, profile = directories.defaultProfile) => {
    nonceHeaders(nonces, links, profile, x);
    return x;
  };

  // RFC 8555 §7.1.1: the directory, one per profile.
  const directory = (x: AcmeExchange) => {
    const profile = profileOf(x);
    x.set('Cache-Control', 'public, max-age=300').json({
      newNonce: links.resource(profile, 'new-nonce'),
      newAccount: links.resource(profile, 'new-account'),
      newOrder: links.resource(profile, 'new-order'),
      revokeCert: links.resource(profile, 'revoke-cert'),
      keyChange: links.resource(profile, 'key-change'),
      renewalInfo: links.resource(profile, 'renewal-info'),
      meta: {
        ...(directories.termsOfService ? { termsOfService: directories.termsOfService } : {}),
        externalAccountRequired: directories.requiresEab(profile),
        profiles: Object.fromEntries(directories.profiles.map((p) => [p, links.directory(p)])),
      },
    });
  };
  get('/directory', directory);
  get('/:profile/directory', directory);

  // §7.2: HEAD answers 200, GET 204; both only carry the nonce.
  const newNonce = (status: number) => (x: AcmeExchange) => {
    const profile = profileOf(x);
    nonceHeaders(nonces, links, profile, x);
    x.status(status).end();
  };
  routes.push({ method: 'HEAD', path: '/:profile/new-nonce', handle: newNonce(200) });
  get('/:profile/new-nonce', newNonce(204));

  // RFC 9773 §4.2: renewal information is a plain GET.
  get('/:profile/renewal-info/:certId', async (x) => {
    profileOf(x);
    const w = await revocation.renewalInfo(param(x, 'certId'));
    x.set('Retry-After', String(ariRetryAfterSeconds)).json({ suggestedWindow: { start: w.start.toISOString(), end: w.end.toISOString() } });
  });

  post('/:profile/new-account', 'jwk', async (x) => {
    const profile = profileOf(x);
    const acme = acmeOf(x);
    const p = parsePayload(newAccountPayload, acme.payload ?? {});
    const key = acme.key!;
    let eabKeyId: string | undefined;
    if (p.externalAccountBinding !== undefined && !p.onlyReturnExisting) {
      eabKeyId = await verifyExternalAccountBinding(p.externalAccountBinding, { url: acme.url, accountJwkCanonical: key.jwk }, (kid) => accounts.eabKey(kid, profile));
    }
    const { account, created } = await accounts.newAccount({ key, directory: profile, contact: p.contact, termsOfServiceAgreed: p.termsOfServiceAgreed, onlyReturnExisting: p.onlyReturnExisting, eabKeyId, address: acme.address });
    answer(x, profile).status(created ? 201 : 200).location(acme.links.account(account.id)).json(renderAccount(account, acme.links));
  });

  post('/acct/:id', 'kid', async (x) => {
    const acme = acmeOf(x);
    if (accountOf(x).id !== param(x, 'id')) throw new PkiError('unauthorized', 'requests for an account must be signed by that account');
    const p = parsePayload(accountUpdatePayload, acme.payload ?? {});
    const account = p.contact || p.status ? await accounts.update(accountOf(x), p) : accountOf(x);
    answer(x).location(acme.links.account(account.id)).json(renderAccount(account, acme.links));
  });

  post('/acct/:id/orders', 'kid', async (x) => {
    const acme = acmeOf(x);
    if (accountOf(x).id !== param(x, 'id')) throw new PkiError('unauthorized', 'an account lists only its own orders');
    const ids = await orders.orderIds(accountOf(x));
    answer(x).json({ orders: ids.map((id) => acme.links.order(id)) });
  });

  post('/:profile/key-change', 'kid', async (x) => {
    const profile = profileOf(x);
    const acme = acmeOf(x);
    const current = accountOf(x);
    // The inner JWS proves the new key; "account" and "oldKey" must name the signer (RFC 8555 §7.3.5).
    const inner = parseKeyChange(acme.payload, { url: acme.url, kid: acme.links.account(current.id), accountJwkCanonical: current.jwk });
    const account = await accounts.changeKey(current, current.thumbprint, { thumbprint: inner.newKey.thumbprint, jwk: inner.newKey.canonicalJson });
    answer(x, profile).location(acme.links.account(account.id)).json(renderAccount(account, acme.links));
  });

  // newOrder and finalize record their nonce with their first write (the order; its move to processing): one commit, not two.
  post('/:profile/new-order', 'kid', async (x) => {
    const profile = profileOf(x);
    const acme = acmeOf(x);
    const p = parsePayload(newOrderPayload, acme.payload);
    const view = await orders.newOrder(accountOf(x), profile, p, acme.address, acme.nonce);
    answer(x, profile).status(201).location(acme.links.order(view.order.id)).json(renderOrder(view, acme.links));
  }, 'with-write');

  post('/order/:id', 'kid', async (x) => {
    const acme = acmeOf(x);
    if (!acme.postAsGet) throw new PkiError('malformed', 'fetch an order with POST-as-GET (empty payload)');
    const view = await orders.order(accountOf(x), param(x, 'id'));
    if (view.status === 'processing') x.set('Retry-After', '1');
    answer(x, view.order.profile).json(renderOrder(view, acme.links));
  });

  post('/order/:id/finalize', 'kid', async (x) => {
    const acme = acmeOf(x);
    const p = parsePayload(finalizePayload, acme.payload);
    const view = await orders.finalize(accountOf(x), param(x, 'id'), decodeBase64url(p.csr, 'csr'), acme.nonce);
    if (view.status === 'processing') x.set('Retry-After', '1');
    answer(x, view.order.profile).location(acme.links.order(view.order.id)).json(renderOrder(view, acme.links));
  }, 'with-write');

  post('/authz/:id', 'kid', async (x) => {
    const acme = acmeOf(x);
    const p = acme.postAsGet ? {} : parsePayload(authorizationPayload, acme.payload);
    const view = p.status ? await orders.deactivateAuthorization(accountOf(x), param(x, 'id')) : await orders.authorization(accountOf(x), param(x, 'id'));
    if (view.status === 'pending' && view.authorization.challenges.some((c) => c.status === 'processing')) x.set('Retry-After', '1');
    answer(x).json(renderAuthorization(view, acme.links));
  });

  post('/chall/:authzId/:type', 'kid', async (x) => {
    const acme = acmeOf(x);
    const authzId = param(x, 'authzId');
    // §7.5.1: an empty object starts validation; POST-as-GET only reads the challenge.
    const r = acme.postAsGet
      ? await orders.authorization(accountOf(x), authzId).then((view) => {
          const challenge = view.authorization.challenges.find((c) => c.type === param(x, 'type'));
          if (!challenge) throw new PkiError('notFound', 'no such challenge');
          return { view, challenge, retryAfterSeconds: undefined };
        })
      : await orders.respondChallenge(accountOf(x), authzId, param(x, 'type'), acme.address, acme.payload);
    if (r.retryAfterSeconds) x.set('Retry-After', String(r.retryAfterSeconds));
    answer(x).append('Link', `<${acme.links.authorization(authzId)}>;rel="up"`).json(renderChallenge(authzId, r.challenge, acme.links));
  });

  const certificate = async (x: AcmeExchange) => {
    const acme = acmeOf(x);
    if (!acme.postAsGet) throw new PkiError('malformed', 'download a certificate with POST-as-GET (empty payload)');
    const issuerId = param(x, 'issuer');
    const serialHex = normaliseSerial(param(x, 'serial'));
    const cert = await orders.certificate(accountOf(x), issuerId, serialHex);
    const chains = deps.chains(issuerId);
    const n = x.params.n === undefined ? 0 : Number(x.params.n);
    if (!Number.isInteger(n) || n < 0 || n >= chains.length) throw new PkiError('notFound', 'no such alternate chain');
    answer(x);
    // RFC 8555 §7.4.2: the other chains are offered as Link rel="alternate".
    chains.forEach((_, i) => i !== n && x.append('Link', `<${acme.links.certificate(issuerId, serialHex, i)}>;rel="alternate"`));
    x.send([cert.der!, ...chains[n]!].map((d) => toPem('CERTIFICATE', d)).join(''), 'application/pem-certificate-chain');
  };
  post('/cert/:issuer/:serial', 'kid', certificate);
  post('/cert/:issuer/:serial/:n', 'kid', certificate);

  post('/:profile/revoke-cert', 'either', async (x) => {
    const profile = profileOf(x);
    const acme = acmeOf(x);
    const p = parsePayload(revokePayload, acme.payload);
    const certDer = decodeBase64url(p.certificate, 'certificate');
    const revoker = acme.account ? { kind: 'account' as const, account: acme.account } : { kind: 'certificateKey' as const, spkiDer: acme.key!.keyObject.export({ type: 'spki', format: 'der' }) };
    await revocation.revoke(revoker, certDer, p.reason);
    answer(x, profile).status(200).end();
  });

  return acmeDispatcher(routes, { pipeline, nonces, links, defaultProfile: directories.defaultProfile, log: deps.log });
}

/**
 * express.json for the bodies readJsonBody leaves to it (a Content-Encoding or a charset), loaded with the first such
 * body: a worker that answers ACME's plain JSON bodies, OCSP and issuance never loads express (docs/performance.md, Memory).
 */
function lazyJsonParser(limit: number): BodyParser {
  let parser: Promise<BodyParser> | undefined;
  return (req, res, next) => {
    parser ??= import('express').then((m) => m.default.json({ type: () => true, limit, strict: true }));
    parser.then((parse) => parse(req, res, next), next);
  };
}
