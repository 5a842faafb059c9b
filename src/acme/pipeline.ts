/**
 * The request pipeline every ACME POST goes through (RFC 8555 §6.2–§6.5), in
 * order: media type, size, JWS structure, algorithm, the "url" header against
 * the URL requested, the key ("jwk" or "kid" as the endpoint demands), the
 * signature, and last the nonce, which is redeemed only for a request that
 * verified. Handlers receive `req.acme` and never see an unverified body.
 */
import type { KeyObject } from 'node:crypto';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { parseStrictJson } from '../errors/json-body.js';
import { PkiError } from '../errors/pki-error.js';
import { faultFields, fromBodyParserError, problemFor } from '../errors/problem.js';
import type { AccountKey, AcmeAccounts } from '../ra/acme/accounts.js';
import { AccountKeyCache } from '../ra/acme/account-key-cache.js';
import type { NonceService } from '../ra/acme/nonces.js';
import type { AcmeAccountRecord } from '../ra/acme/ports.js';
import { importJwk } from './jwk.js';
import { checkRequestHeader, parseJws, parsePayloadJson, verifyJws, type FlattenedJws } from './jws.js';
import { Links } from './links.js';

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
}

declare module 'express-serve-static-core' {
  interface Request {
    acme?: AcmeRequest;
  }
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
}

/** The cache of imported account keys a router's endpoints share. */
export const accountKeyObjects = (): AccountKeyCache<KeyObject> => new AccountKeyCache((a) => importJwk(JSON.parse(a.jwk)).key);

/**
 * The client address of a request: what the front recorded (the peer, or
 * what a trusted proxy forwarded), else the TCP peer itself.
 */
export const clientAddressOf = (req: Request): string => req.clientAddress ?? req.socket.remoteAddress ?? 'unknown';

/** Adds a fresh Replay-Nonce (RFC 8555 §6.5: on every response to a POST, errors included) and the index link. */
export function nonceHeaders(nonces: NonceService, links: Links, profile: string, res: Response): void {
  res.set('Replay-Nonce', nonces.issue());
  res.append('Link', `<${links.directory(profile)}>;rel="index"`);
  res.set('Cache-Control', 'no-store');
}

/**
 * Holds the answer to every POST until the store's writes made before it are
 * on disk (NonceService.durable): the nonce redemption and the handler's
 * writes resolve once committed, so a request that writes waits for one
 * fsync, shared with every request answered beside it, instead of one per
 * write. When that cannot be ensured the connection is dropped unanswered.
 * GET and HEAD (directory, new-nonce, renewal info) write nothing.
 */
export function durableAnswers(nonces: NonceService, log: (e: Record<string, unknown>) => void): RequestHandler {
  return (req, res, next) => {
    if (req.method !== 'POST') return next();
    const end = res.end;
    res.end = function (this: Response, ...args: unknown[]) {
      nonces.durable().then(
        () => (end as (...a: unknown[]) => Response).apply(this, args),
        (err: unknown) => {
          log({ level: 'error', msg: 'ACME answer dropped: its writes are not on disk', id: req.requestId, path: req.originalUrl, error: String(err) });
          this.destroy();
        },
      );
      return this;
    } as Response['end'];
    next();
  };
}

/**
 * Reads an ACME POST body as JSON (RFC 8259, UTF-8) into `req.body`, as
 * express.json({ strict: true }) does: an empty body is `{}`, a body whose
 * first character is not `{` or `[` or that does not parse is `malformed`,
 * one over `limitBytes` is `payloadTooLarge`. A body with a Content-Encoding
 * or a charset goes to `fallback` (body-parser: inflation, charsets); the
 * plain one, which every ACME client sends, is read here without
 * body-parser's per-request machinery (its stream reader, decoder and
 * listeners cost about as much as the JWS parse in bench:acme's profile).
 */
export function jsonBody(limitBytes: number, fallback: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const encoding = req.headers['content-encoding'];
    if ((encoding !== undefined && encoding.toLowerCase() !== 'identity') || /;\s*charset=/i.test(req.headers['content-type'] ?? '')) return fallback(req, res, next);
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      req.off('data', onData).off('end', onEnd).off('error', finish).off('aborted', onAborted);
      if (err !== undefined) return next(err);
      try {
        req.body = parseStrictJson(Buffer.concat(chunks, size));
      } catch (parseErr) {
        return next(parseErr);
      }
      next();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        // The rest is not read: the answer closes the connection.
        res.set('Connection', 'close');
        req.pause();
        return finish(new PkiError('payloadTooLarge', `the request body is larger than ${limitBytes} bytes`));
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish();
    const onAborted = () => finish(new PkiError('malformed', 'request aborted'));
    req.on('data', onData).on('end', onEnd).on('error', finish).on('aborted', onAborted);
  };
}

/** Builds the verifying middleware for one endpoint. */
export function verifiedPost(deps: PipelineDeps, rule: KeyRule): RequestHandler[] {
  const json = jsonBody(deps.bodyLimitBytes, express.json({ type: () => true, limit: deps.bodyLimitBytes, strict: true }));
  const verify: RequestHandler = async (req, _res, next) => {
    // RFC 8555 §6.4: the signed "url" must be this server's URL for the resource, from the base URL, never from Host.
    const links = deps.links;
    const url = links.origin + req.originalUrl;
    const jws = parseJws(req.body);
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
    await deps.nonces.redeem(ref.nonce);
    const postAsGet = jws.payload.length === 0;
    const payload = postAsGet ? undefined : parsePayloadJson(jws, 'JWS payload');
    req.acme = { jws, links, url, payload, postAsGet, address: clientAddressOf(req), ...(account ? { account } : {}), ...(key ? { key } : {}) };
    next();
  };
  const mediaType: RequestHandler = (req, res, next) => {
    // RFC 8555 §6.2: requests carry application/jose+json.
    if (!req.is('application/jose+json')) throw new PkiError('unsupportedMediaType', 'ACME requests are application/jose+json');
    // A declared length over the limit is refused before a byte of the body is read (the body parser would read
    // it all first); the connection then closes, since the rest of the body is never read.
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > deps.bodyLimitBytes) {
      res.set('Connection', 'close');
      throw new PkiError('payloadTooLarge', `the request body is larger than ${deps.bodyLimitBytes} bytes`);
    }
    next();
  };
  return [mediaType, json, verify];
}

/**
 * The error middleware of the ACME router: RFC 8555 problems, a fresh nonce,
 * Retry-After where due. A 5xx is logged with the request id and answered
 * with a generic serverInternal problem that quotes the id.
 */
export function acmeErrors(nonces: NonceService, defaultProfile: string, links: Links, log: (e: Record<string, unknown>) => void) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const mapped = fromBodyParserError(err);
    const doc = problemFor(mapped, 'acme', req.requestId);
    nonceHeaders(nonces, links, String(req.params?.profile ?? defaultProfile), res);
    if (mapped instanceof PkiError && mapped.retryAfterSeconds !== undefined) res.set('Retry-After', String(mapped.retryAfterSeconds));
    // RFC 8555 §7.3.5: a key already in use answers 409 with the other account's URL.
    if (mapped instanceof PkiError && mapped.type === 'conflict' && typeof mapped.extra?.accountId === 'string') {
      res.location(links.account(mapped.extra.accountId));
      delete doc.accountId;
    }
    if (doc.status >= 500) log({ level: 'error', msg: 'ACME request failed', id: req.requestId, path: req.originalUrl, ...faultFields(mapped, err) });
    res.locals.problem = doc.type;
    res.status(doc.status).type('application/problem+json').send(JSON.stringify(doc));
  };
}
