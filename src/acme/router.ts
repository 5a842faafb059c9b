/**
 * ACME routes (RFC 8555 §7, RFC 9773). The pipeline in each route reads top
 * to bottom: verify the JWS (pipeline.ts), then one thin handler that parses
 * the payload, makes one RA call and renders the result.
 */
import express, { type Request, type Response } from 'express';
import { PkiError } from '../errors/pki-error.js';
import { toPem } from '../pki/pem.js';
import type { AcmeAccounts } from '../ra/acme/accounts.js';
import type { NonceService } from '../ra/acme/nonces.js';
import type { AcmeOrders } from '../ra/acme/orders.js';
import type { AcmeRevocation } from '../ra/acme/revocation.js';
import { normaliseSerial } from '../ra/revoke.js';
import { decodeBase64url } from './jwk.js';
import { verifyExternalAccountBinding } from './eab.js';
import { parseKeyChange } from './jws.js';
import { Links } from './links.js';
import { accountKeyObjects, acmeErrors, durableAnswers, nonceHeaders, verifiedPost, type AcmeRequest } from './pipeline.js';
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

const acmeOf = (req: Request): AcmeRequest => req.acme!;
const accountOf = (req: Request) => acmeOf(req).account!;
const param = (req: Request, name: string) => String(req.params[name]);

export function acmeRouter(deps: AcmeRouterDeps): express.Router {
  const router = express.Router({ strict: true });
  const { accounts, orders, revocation, nonces, directories } = deps;
  router.use(durableAnswers(nonces, deps.log));
  const links = Links.fromBaseUrl(deps.publicBaseUrl);
  const pipeline = { accounts, nonces, bodyLimitBytes: deps.bodyLimitBytes, accountKeys: accountKeyObjects(), links };
  const post = (rule: 'jwk' | 'kid' | 'either') => verifiedPost(pipeline, rule);
  const profileOf = (req: Request) => {
    const p = req.params.profile === undefined ? directories.defaultProfile : String(req.params.profile);
    if (!directories.profiles.includes(p)) throw new PkiError('notFound', `no ACME directory for profile "${p.slice(0, 64)}"`);
    return p;
  };
  /** Every answer carries a fresh nonce and the index link of the directory it belongs to. */
  const answer = (res: Response, profile = directories.defaultProfile) => {
    nonceHeaders(nonces, links, profile, res);
    return res;
  };

  // RFC 8555 §7.1.1: the directory, one per profile.
  const directory = (req: Request, res: Response) => {
    const profile = profileOf(req);
    res.set('Cache-Control', 'public, max-age=300').json({
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
  router.get('/directory', directory);
  router.get('/:profile/directory', directory);

  // §7.2: HEAD answers 200, GET 204; both only carry the nonce.
  const newNonce = (status: number) => (req: Request, res: Response) => {
    const profile = profileOf(req);
    nonceHeaders(nonces, links, profile, res);
    res.status(status).end();
  };
  router.head('/:profile/new-nonce', newNonce(200));
  router.get('/:profile/new-nonce', newNonce(204));

  // RFC 9773 §4.2: renewal information is a plain GET.
  router.get('/:profile/renewal-info/:certId', async (req, res) => {
    profileOf(req);
    const w = await revocation.renewalInfo(param(req, 'certId'));
    res.set('Retry-After', String(ariRetryAfterSeconds)).json({ suggestedWindow: { start: w.start.toISOString(), end: w.end.toISOString() } });
  });

  router.post('/:profile/new-account', ...post('jwk'), async (req, res) => {
    const profile = profileOf(req);
    const acme = acmeOf(req);
    const p = parsePayload(newAccountPayload, acme.payload ?? {});
    const key = acme.key!;
    let eabKeyId: string | undefined;
    if (p.externalAccountBinding !== undefined && !p.onlyReturnExisting) {
      eabKeyId = await verifyExternalAccountBinding(p.externalAccountBinding, { url: acme.url, accountJwkCanonical: key.jwk }, (kid) => accounts.eabKey(kid, profile));
    }
    const { account, created } = await accounts.newAccount({ key, directory: profile, contact: p.contact, termsOfServiceAgreed: p.termsOfServiceAgreed, onlyReturnExisting: p.onlyReturnExisting, eabKeyId, address: acme.address });
    answer(res, profile).status(created ? 201 : 200).location(acme.links.account(account.id)).json(renderAccount(account, acme.links));
  });

  router.post('/acct/:id', ...post('kid'), async (req, res) => {
    const acme = acmeOf(req);
    if (accountOf(req).id !== param(req, 'id')) throw new PkiError('unauthorized', 'requests for an account must be signed by that account');
    const p = parsePayload(accountUpdatePayload, acme.payload ?? {});
    const account = p.contact || p.status ? await accounts.update(accountOf(req), p) : accountOf(req);
    answer(res).location(acme.links.account(account.id)).json(renderAccount(account, acme.links));
  });

  router.post('/acct/:id/orders', ...post('kid'), async (req, res) => {
    const acme = acmeOf(req);
    if (accountOf(req).id !== param(req, 'id')) throw new PkiError('unauthorized', 'an account lists only its own orders');
    const ids = await orders.orderIds(accountOf(req));
    answer(res).json({ orders: ids.map((id) => acme.links.order(id)) });
  });

  router.post('/:profile/key-change', ...post('kid'), async (req, res) => {
    const profile = profileOf(req);
    const acme = acmeOf(req);
    const current = accountOf(req);
    // The inner JWS proves the new key; "account" and "oldKey" must name the signer (RFC 8555 §7.3.5).
    const inner = parseKeyChange(acme.payload, { url: acme.url, kid: acme.links.account(current.id), accountJwkCanonical: current.jwk });
    const account = await accounts.changeKey(current, current.thumbprint, { thumbprint: inner.newKey.thumbprint, jwk: inner.newKey.canonicalJson });
    answer(res, profile).location(acme.links.account(account.id)).json(renderAccount(account, acme.links));
  });

  router.post('/:profile/new-order', ...post('kid'), async (req, res) => {
    const profile = profileOf(req);
    const acme = acmeOf(req);
    const p = parsePayload(newOrderPayload, acme.payload);
    const view = await orders.newOrder(accountOf(req), profile, p, acme.address);
    answer(res, profile).status(201).location(acme.links.order(view.order.id)).json(renderOrder(view, acme.links));
  });

  router.post('/order/:id', ...post('kid'), async (req, res) => {
    const acme = acmeOf(req);
    if (!acme.postAsGet) throw new PkiError('malformed', 'fetch an order with POST-as-GET (empty payload)');
    const view = await orders.order(accountOf(req), param(req, 'id'));
    if (view.status === 'processing') res.set('Retry-After', '1');
    answer(res, view.order.profile).json(renderOrder(view, acme.links));
  });

  router.post('/order/:id/finalize', ...post('kid'), async (req, res) => {
    const acme = acmeOf(req);
    const p = parsePayload(finalizePayload, acme.payload);
    const view = await orders.finalize(accountOf(req), param(req, 'id'), decodeBase64url(p.csr, 'csr'));
    if (view.status === 'processing') res.set('Retry-After', '1');
    answer(res, view.order.profile).location(acme.links.order(view.order.id)).json(renderOrder(view, acme.links));
  });

  router.post('/authz/:id', ...post('kid'), async (req, res) => {
    const acme = acmeOf(req);
    const p = acme.postAsGet ? {} : parsePayload(authorizationPayload, acme.payload);
    const view = p.status ? await orders.deactivateAuthorization(accountOf(req), param(req, 'id')) : await orders.authorization(accountOf(req), param(req, 'id'));
    if (view.status === 'pending' && view.authorization.challenges.some((c) => c.status === 'processing')) res.set('Retry-After', '1');
    answer(res).json(renderAuthorization(view, acme.links));
  });

  router.post('/chall/:authzId/:type', ...post('kid'), async (req, res) => {
    const acme = acmeOf(req);
    const authzId = param(req, 'authzId');
    // §7.5.1: an empty object starts validation; POST-as-GET only reads the challenge.
    const r = acme.postAsGet
      ? await orders.authorization(accountOf(req), authzId).then((view) => {
          const challenge = view.authorization.challenges.find((c) => c.type === param(req, 'type'));
          if (!challenge) throw new PkiError('notFound', 'no such challenge');
          return { view, challenge, retryAfterSeconds: undefined };
        })
      : await orders.respondChallenge(accountOf(req), authzId, param(req, 'type'), acme.address, acme.payload);
    if (r.retryAfterSeconds) res.set('Retry-After', String(r.retryAfterSeconds));
    answer(res).append('Link', `<${acme.links.authorization(authzId)}>;rel="up"`).json(renderChallenge(authzId, r.challenge, acme.links));
  });

  const certificate = async (req: Request, res: Response) => {
    const acme = acmeOf(req);
    if (!acme.postAsGet) throw new PkiError('malformed', 'download a certificate with POST-as-GET (empty payload)');
    const issuerId = param(req, 'issuer');
    const serialHex = normaliseSerial(param(req, 'serial'));
    const cert = await orders.certificate(accountOf(req), issuerId, serialHex);
    const chains = deps.chains(issuerId);
    const n = req.params.n === undefined ? 0 : Number(req.params.n);
    if (!Number.isInteger(n) || n < 0 || n >= chains.length) throw new PkiError('notFound', 'no such alternate chain');
    answer(res).type('application/pem-certificate-chain');
    // RFC 8555 §7.4.2: the other chains are offered as Link rel="alternate".
    chains.forEach((_, i) => i !== n && res.append('Link', `<${acme.links.certificate(issuerId, serialHex, i)}>;rel="alternate"`));
    res.send([cert.der!, ...chains[n]!].map((d) => toPem('CERTIFICATE', d)).join(''));
  };
  router.post('/cert/:issuer/:serial', ...post('kid'), certificate);
  router.post('/cert/:issuer/:serial/:n', ...post('kid'), certificate);

  router.post('/:profile/revoke-cert', ...post('either'), async (req, res) => {
    const profile = profileOf(req);
    const acme = acmeOf(req);
    const p = parsePayload(revokePayload, acme.payload);
    const certDer = decodeBase64url(p.certificate, 'certificate');
    const revoker = acme.account ? { kind: 'account' as const, account: acme.account } : { kind: 'certificateKey' as const, spkiDer: acme.key!.keyObject.export({ type: 'spki', format: 'der' }) };
    await revocation.revoke(revoker, certDer, p.reason);
    answer(res, profile).status(200).end();
  });

  router.use((_req, _res) => {
    throw new PkiError('notFound', 'no such ACME resource');
  });
  router.use(acmeErrors(nonces, directories.defaultProfile, links, deps.log));
  return router;
}
