/**
 * The request pipeline every ACME POST goes through (RFC 8555 §6.2–§6.5), in
 * order: media type, size, JWS structure, algorithm, the "url" header against
 * the URL requested, the key ("jwk" or "kid" as the endpoint demands), the
 * signature, and last the nonce, which is recorded as used only for a request
 * that verified (before the handler runs, or with its first write: NonceRule). Handlers receive what verified (`AcmeExchange.acme`) and never
 * see an unverified body.
 */
import type { KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseStrictJson } from '../errors/json-body.js';
import { PkiError } from '../errors/pki-error.js';
import { faultFields, fromBodyParserError, problemFor } from '../errors/problem.js';
import type { AccountKey, AcmeAccounts } from '../ra/acme/accounts.js';
import { AccountKeyCache } from '../ra/acme/account-key-cache.js';
import type { NonceService, PendingNonce } from '../ra/acme/nonces.js';
import type { AcmeAccountRecord } from '../ra/acme/ports.js';
import type { AcmeExchange } from './exchange.js';
import { importJwk } from './jwk.js';
import { checkRequestHeader, parseJws, parsePayloadJson, verifyJws, type FlattenedJws } from './jws.js';
import type { Links } from './links.js';

/** What a verified request carries. */
export interface AcmeRequest {
  jws: FlattenedJws;
  links: Links;
  /** The exact URL the client signed. */
  url: string;
  /** Present for "kid" requests. */
  account?: AcmeAccountRecord;
  /** Present for "jwk" requests. */
  key?: AccountKey & { keyObject: KeyObject };
  /** The parsed payload; undefined for POST-as-GET (empty payload). */
  payload: unknown;
  postAsGet: boolean;
  /** The client address the front worked out (trusted proxies considered); the key of per-address rate limits. */
  address: string;
  /**
   * For a route that records its nonce with its first write (`nonce: 'with-write'`): checked, not yet
   * recorded; the dispatcher has it recorded before the answer goes out. Absent: recorded already.
   */
  nonce?: PendingNonce;
}

/** Which key identifies the signer (RFC 8555 §6.2). */
export type KeyRule = 'jwk' | 'kid' | 'either';

export interface PipelineDeps {
  accounts: AcmeAccounts;
  nonces: NonceService;
  bodyLimitBytes: number;
  /** Account KeyObjects, shared by every endpoint (see {@link accountKeyObjects}). */
  accountKeys: AccountKeyCache<KeyObject>;
  /** The URLs of this server, all built from the instance's base URL (see {@link Links}). */
  links: Links;
  /** Reads the bodies {@link readJsonBody} does not (a Content-Encoding or a charset). */
  bodyParser: BodyParser;
}

/** The cache of imported account keys a router's endpoints share. */
export const accountKeyObjects = (): AccountKeyCache<KeyObject> => new AccountKeyCache((a) => importJwk(JSON.parse(a.jwk)).key);

/**
 * The client address of a request: what the front recorded (the peer, or
 * what a trusted proxy forwarded), else the TCP peer itself.
 */
export const clientAddressOf = (req: IncomingMessage): string => req.clientAddress ?? req.socket.remoteAddress ?? 'unknown';

/** Adds a fresh Replay-Nonce (RFC 8555 §6.5: on every response to a POST, errors included) and the index link. */
export function nonceHeaders(nonces: NonceService, links: Links, profile: string, x: AcmeExchange): void {
  x.set('Replay-Nonce', nonces.issue());
  x.append('Link', `<${links.directory(profile)}>;rel="index"`);
  x.set('Cache-Control', 'no-store');
}

/** A connect-style body reader (express.json), for the bodies {@link readJsonBody} leaves to it. */
export type BodyParser = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * Reads an ACME POST body as JSON (RFC 8259, UTF-8), as express.json({
 * strict: true }) does: an empty body is `{}`, a body whose first character
 * is not `{` or `[` or that does not parse is `malformed`, one over
 * `limitBytes` is `payloadTooLarge`. A body with a Content-Encoding or a
 * charset goes to `fallback` (body-parser: inflation, charsets); the plain
 * one, which every ACME client sends, is read here without body-parser's
 * per-request machinery (its stream reader, decoder and listeners cost about
 * as much as the JWS parse in bench:acme's profile).
 */
export function readJsonBody(x: AcmeExchange, limitBytes: number, fallback: BodyParser): Promise<unknown> {
  const { req } = x;
  const encoding = req.headers['content-encoding'];
  if ((encoding !== undefined && encoding.toLowerCase() !== 'identity') || /;\s*charset=/i.test(req.headers['content-type'] ?? '')) {
    return new Promise((resolve, reject) => fallback(req, x.res, (err) => (err === undefined ? resolve((req as IncomingMessage & { body?: unknown }).body) : reject(err))));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      req.off('data', onData).off('end', onEnd).off('error', finish).off('aborted', onAborted);
      if (err !== undefined) return reject(err);
      try {
        resolve(parseStrictJson(Buffer.concat(chunks, size)));
      } catch (parseErr) {
        reject(parseErr);
      }
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        // The rest is not read: the answer closes the connection.
        x.set('Connection', 'close');
        req.pause();
        return finish(new PkiError('payloadTooLarge', `the request body is larger than ${limitBytes} bytes`));
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish();
    const onAborted = () => finish(new PkiError('malformed', 'request aborted'));
    req.on('data', onData).on('end', onEnd).on('error', finish).on('aborted', onAborted);
  });
}

/**
 * RFC 8555 §6.2: requests carry application/jose+json. As express's req.is:
 * a request without a body (neither Content-Length nor Transfer-Encoding)
 * has no media type; parameters are allowed, the type and subtype compare
 * without case.
 */
export function isJoseJson(req: IncomingMessage): boolean {
  const h = req.headers;
  if (h['transfer-encoding'] === undefined && (h['content-length'] === undefined || Number.isNaN(Number(h['content-length'])))) return false;
  const type = h['content-type'];
  if (type === undefined) return false;
  const semi = type.indexOf(';');
  return (semi < 0 ? type : type.slice(0, semi)).trim().toLowerCase() === 'application/jose+json';
}

/**
 * When a route's nonce is recorded: 'first' before the handler runs, 'with-write' in the transaction of
 * the handler's first write (PendingNonce.with), or on its own once the handler is done if it wrote nothing.
 */
export type NonceRule = 'first' | 'with-write';

/** Verifies the POST of `x` for an endpoint whose key is named as `rule` says; the handler gets what it returns. */
export async function verifyPost(deps: PipelineDeps, x: AcmeExchange, rule: KeyRule, nonceRule: NonceRule = 'first'): Promise<AcmeRequest> {
  const { req } = x;
  if (!isJoseJson(req)) throw new PkiError('unsupportedMediaType', 'ACME requests are application/jose+json');
  // A declared length over the limit is refused before a byte of the body is read (the body parser would read
  // it all first); the connection then closes, since the rest of the body is never read.
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > deps.bodyLimitBytes) {
    x.set('Connection', 'close');
    throw new PkiError('payloadTooLarge', `the request body is larger than ${deps.bodyLimitBytes} bytes`);
  }
  const body = await readJsonBody(x, deps.bodyLimitBytes, deps.bodyParser);
  // RFC 8555 §6.4: the signed "url" must be this server's URL for the resource, from the base URL, never from Host.
  const links = deps.links;
  const url = links.origin + x.url;
  const jws = parseJws(body);
  // url (RFC 8555 §6.4), nonce present (§6.5), and the key reference this endpoint takes (§6.2).
  const ref = checkRequestHeader(jws.header, { url, key: rule });
  let account: AcmeAccountRecord | undefined;
  let key: AcmeRequest['key'];
  let keyObject: KeyObject;
  if (ref.kind === 'kid') {
    const id = links.accountIdOf(ref.kid);
    if (!id) throw new PkiError('accountDoesNotExist', '"kid" is not an account URL of this server');
    account = await deps.accounts.byId(id);
    keyObject = deps.accountKeys.get(account);
  } else {
    const imported = importJwk(ref.jwk);
    keyObject = imported.key;
    key = { thumbprint: imported.thumbprint, jwk: imported.canonicalJson, keyObject };
  }
  if (!verifyJws(jws, keyObject)) throw new PkiError('malformed', account ? 'the JWS signature does not verify with the account key' : 'the JWS signature does not verify with its "jwk"');
  const nonce = deps.nonces.check(ref.nonce);
  if (nonceRule === 'first') await nonce.record();
  const postAsGet = jws.payload.length === 0;
  let payload: unknown;
  try {
    payload = postAsGet ? undefined : parsePayloadJson(jws, 'JWS payload');
  } catch (err) {
    // A request that verified uses its nonce up, whatever it carries.
    if (nonceRule === 'with-write') await nonce.record();
    throw err;
  }
  return {
    jws,
    links,
    url,
    payload,
    postAsGet,
    address: clientAddressOf(req),
    ...(account ? { account } : {}),
    ...(key ? { key } : {}),
    ...(nonceRule === 'with-write' ? { nonce } : {}),
  };
}

/**
 * The answer to a failed ACME request: an RFC 8555 problem, a fresh nonce
 * and the default directory's index link, Retry-After where due. A 5xx is
 * logged with the request id and answered with a generic serverInternal
 * problem that quotes the id.
 */
export function sendProblem(x: AcmeExchange, err: unknown, deps: { nonces: NonceService; defaultProfile: string; links: Links; log: (e: Record<string, unknown>) => void }): void {
  const { req, res } = x;
  const mapped = fromBodyParserError(err);
  const doc = problemFor(mapped, 'acme', req.requestId);
  nonceHeaders(deps.nonces, deps.links, deps.defaultProfile, x);
  if (mapped instanceof PkiError && mapped.retryAfterSeconds !== undefined) x.set('Retry-After', String(mapped.retryAfterSeconds));
  // RFC 8555 §7.3.5: a key already in use answers 409 with the other account's URL.
  if (mapped instanceof PkiError && mapped.type === 'conflict' && typeof mapped.extra?.accountId === 'string') {
    x.location(deps.links.account(mapped.extra.accountId));
    delete doc.accountId;
  }
  if (doc.status >= 500) deps.log({ level: 'error', msg: 'ACME request failed', reqId: req.requestId, path: req.url, ...faultFields(mapped, err) });
  res.locals = { ...res.locals, problem: doc.type };
  x.status(doc.status).json(doc, 'application/problem+json');
}
