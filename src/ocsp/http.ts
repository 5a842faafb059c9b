/** OCSP over HTTP (RFC 6960 Appendix A.1, RFC 5019 §5–6) on the node:http hot path. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorResponse } from './response.js';
import type { CacheInfo, OcspResponder, OcspResult } from './responder.js';

/** RFC 5019 §5 requests are a few hundred octets; anything above this is refused with 413. */
export const maxOcspRequestBytes = 16 * 1024;

export interface OcspHttpOptions {
  /** Current time for the max-age computation (the instance clock). */
  now: () => Date;
  log?: (e: Record<string, unknown>) => void;
  /** Body limit of POST and decoded GET requests (default `maxOcspRequestBytes`). */
  maxRequestBytes?: number;
  /** URL path of the responder (default `/ocsp`, as in the AIA of issued certificates). */
  path?: string;
}

export type HotHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

const malformed = (): OcspResult => ({ der: errorResponse('malformedRequest'), cache: null });

/**
 * A hot handler that puts X-Request-Id (the front's `req.requestId`) in every
 * answer it gives itself, so that the front does not set it first: with no
 * header set beforehand, `writeHead(status, [name, value, …])` writes the
 * list as it is, without node's per-header bookkeeping (setHeader).
 */
export type HotHandlerWritingRequestId = HotHandler & { readonly writesRequestId: true };

/** Header fields of one answer, in the order they are written; X-Request-Id first, as when the front set it. */
function fields(req: IncomingMessage): (string | number)[] {
  const id = req.requestId;
  return id === undefined ? [] : ['X-Request-Id', id];
}

/**
 * The RFC 5019 §6.2 header values of a pre-signed response: the two HTTP dates
 * once per response (toUTCString was ~1 µs each, per request), max-age once a
 * second. Kept for the responses asked for lately (bounded; a response that is
 * asked for again after that is prepared again).
 */
export interface CachingFields {
  thisMs: number;
  nextMs: number;
  lastModified: string;
  expires: string;
  maxAge: number;
  cacheControl: string;
}

const maxPrepared = 1024;
const prepared = new Map<string, CachingFields>();

/** The §6.2 header values of `cache` at `nowMs` (shared with the raw path, http/wire-ocsp.ts). */
export function cachingFields(cache: CacheInfo, nowMs: number): CachingFields {
  const thisMs = cache.thisUpdate.getTime();
  const nextMs = cache.nextUpdate.getTime();
  let f = prepared.get(cache.etag);
  if (f === undefined || f.thisMs !== thisMs || f.nextMs !== nextMs) {
    if (prepared.size >= maxPrepared) prepared.clear();
    f = { thisMs, nextMs, lastModified: cache.thisUpdate.toUTCString(), expires: cache.nextUpdate.toUTCString(), maxAge: -1, cacheControl: '' };
    prepared.set(cache.etag, f);
  }
  // RFC 5019 §6.2: a CDN or proxy may hold the response until nextUpdate, and must not rewrite it.
  const maxAge = Math.max(0, Math.floor((nextMs - nowMs) / 1000));
  if (maxAge !== f.maxAge) {
    f.maxAge = maxAge;
    f.cacheControl = `max-age=${maxAge}, public, no-transform, must-revalidate`;
  }
  return f;
}

function send(req: IncomingMessage, res: ServerResponse, r: OcspResult, nowMs: number, cacheable: boolean, head: boolean): void {
  const h = fields(req);
  h.push('content-type', 'application/ocsp-response', 'content-length', r.der.length);
  if (cacheable && r.cache) {
    const f = cachingFields(r.cache, nowMs);
    h.push('cache-control', f.cacheControl, 'last-modified', f.lastModified, 'expires', f.expires, 'etag', r.cache.etag);
  } else h.push('cache-control', 'no-store');
  res.writeHead(200, h);
  // As a latin1 string (the same bytes): node writes the header and the body in one write, where a Buffer body takes a writev of both.
  if (head) res.end();
  else res.end(r.der.toString('latin1'), 'latin1');
}

/** RFC 7232 §3.2: If-None-Match with our strong ETag (or `*`) gets 304. */
function notModified(req: IncomingMessage, etag: string): boolean {
  return ifNoneMatchHits(req.headers['if-none-match'], etag);
}

/** RFC 7232 §3.2: whether an If-None-Match value names `etag` (or is `*`). */
export function ifNoneMatchHits(inm: string | undefined, etag: string): boolean {
  if (!inm) return false;
  return inm.split(',').some((t) => {
    const v = t.trim();
    return v === '*' || v === etag || v === `W/${etag}`;
  });
}

const fastBase64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * Segments decoded lately (bounded, then started afresh), each with a copy of its DER: a client or a CDN asks
 * for the same few responses again and again, and a lookup costs less than the percent and base64 decoding.
 * Only segments up to this length are kept (a request of ~380 octets; RFC 5019 §5 requests are about 80).
 */
const maxDecoded = 1024;
const maxKeptSegment = 512;
const decoded = new Map<string, Buffer>();

/**
 * Decodes the GET path segment: RFC 6960 Appendix A.1 says
 * url-encoding-of-base64-encoding-of-the-DER; base64url and missing padding
 * are accepted too. Null when it is not base64 at all. Each call returns a Buffer of its own.
 */
export function decodeGetRequest(segment: string): Buffer | null {
  const known = decoded.get(segment);
  if (known !== undefined) return Buffer.from(known);
  const der = decodeSegment(segment);
  if (der !== null && segment.length <= maxKeptSegment) {
    if (decoded.size >= maxDecoded) decoded.clear();
    decoded.set(segment, Buffer.from(der));
  }
  return der;
}

function decodeSegment(segment: string): Buffer | null {
  let text: string;
  try {
    text = segment.includes('%') ? decodeURIComponent(segment) : segment;
  } catch {
    return null; // bad percent-encoding
  }
  // Base64 or base64url without white space, the usual case: node's decoder reads both alphabets alike.
  if (fastBase64.test(text)) return text.length % 4 === 1 ? null : Buffer.from(text, 'base64');
  // Some clients leave '+' unescaped; in a path it is a literal plus either way.
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/').replace(/\s/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) return null;
  return Buffer.from(b64, 'base64');
}

/**
 * The hot-path handler for `POST {path}` (application/ocsp-request body)
 * and `GET|HEAD {path}/{base64 DER}`: returns true when it took the request.
 * Answers are always 200 with an OCSPResponse (malformedRequest for bodies
 * that do not parse), 413 for an oversize body, 405 for other methods on the
 * path; never 500. GET answers carry RFC 5019 §6.2 caching headers.
 * The Content-Type of a POST is not enforced: a body that parses is answered.
 */
export function ocspHandler(responder: OcspResponder, opts: OcspHttpOptions): HotHandlerWritingRequestId;
/** @deprecated the positional form; pass `{ now, log }`. */
export function ocspHandler(responder: OcspResponder, now: () => Date, log?: (e: Record<string, unknown>) => void): HotHandlerWritingRequestId;
export function ocspHandler(responder: OcspResponder, optsOrNow: OcspHttpOptions | (() => Date), legacyLog?: (e: Record<string, unknown>) => void): HotHandlerWritingRequestId {
  const opts: OcspHttpOptions = typeof optsOrNow === 'function' ? { now: optsOrNow, ...(legacyLog ? { log: legacyLog } : {}) } : optsOrNow;
  const base = (opts.path ?? '/ocsp').replace(/\/+$/, '');
  const under = `${base}/`;
  const limit = opts.maxRequestBytes ?? maxOcspRequestBytes;
  const fail = (req: IncomingMessage, res: ServerResponse, err: unknown) => {
    opts.log?.({ level: 'error', msg: 'OCSP handler failed', reqId: req.requestId, error: String(err) });
    if (!res.headersSent) send(req, res, { der: errorResponse('internalError'), cache: null }, opts.now().getTime(), false, false);
    else res.destroy();
  };
  const respond = (req: IncomingMessage, res: ServerResponse, r: OcspResult, get: boolean) => {
    if (res.destroyed) return;
    const nowMs = opts.now().getTime();
    if (get && r.cache && notModified(req, r.cache.etag)) {
      const f = cachingFields(r.cache, nowMs);
      const h = fields(req);
      h.push('etag', r.cache.etag, 'cache-control', f.cacheControl, 'expires', f.expires);
      res.writeHead(304, h);
      res.end();
      return;
    }
    send(req, res, r, nowMs, get, req.method === 'HEAD');
  };
  const reply = (req: IncomingMessage, res: ServerResponse, der: Buffer | null, get: boolean) => {
    if (der === null) return respond(req, res, malformed(), get);
    // A response held in memory is sent now: each promise on the way costs.
    const now = responder.answerCached(der);
    if (now !== undefined) return respond(req, res, now, get);
    responder.answer(der).then(
      (r) => respond(req, res, r, get),
      (err) => fail(req, res, err),
    );
  };
  const handler: HotHandler = (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path !== base && !path.startsWith(under)) return false;
    const rest = path.slice(base.length + 1);
    if (req.method === 'POST' && rest === '') {
      const declared = Number(req.headers['content-length']);
      const tooBig = () => {
        // 413 and close: the rest of the body is not read.
        const h = fields(req);
        h.push('content-type', 'text/plain', 'connection', 'close', 'cache-control', 'no-store');
        res.writeHead(413, h);
        res.end('OCSP request too large\n');
        res.on('finish', () => req.destroy());
      };
      if (declared > limit) {
        tooBig();
        return true;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let refused = false;
      req.on('data', (c: Buffer) => {
        if (refused) return;
        size += c.length;
        if (size > limit) {
          refused = true;
          tooBig();
        } else chunks.push(c);
      });
      req.on('end', () => {
        if (!refused) reply(req, res, Buffer.concat(chunks, size), false);
      });
      req.on('error', (err) => {
        // The client went away mid-body: nothing to answer.
        opts.log?.({ level: 'debug', msg: 'OCSP request aborted', reqId: req.requestId, error: String(err) });
      });
      return true;
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && rest !== '') {
      const der = decodeGetRequest(rest);
      reply(req, res, der && der.length <= limit ? der : null, true);
      return true;
    }
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'POST') {
      // GET /ocsp without a request, or POST /ocsp/…: an OCSP client error all the same.
      reply(req, res, null, false);
      return true;
    }
    const h = fields(req);
    h.push('allow', 'GET, HEAD, POST', 'content-type', 'text/plain', 'cache-control', 'no-store');
    res.writeHead(405, h);
    res.end('method not allowed\n');
    return true;
  };
  return Object.assign(handler, { writesRequestId: true as const });
}
