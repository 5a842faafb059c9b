/**
 * OCSP on the raw path (wire.ts): `GET {path}/{base64}` and `POST {path}`
 * with `Content-Type: application/ocsp-request`, answered as the front and
 * ocspHandler (ocsp/http.ts) answer them on node:http: the same request id,
 * client address, status-path rate limit, lookup, status, header fields and
 * body, then the same access line and latency metric. Whatever this does not
 * answer the same way goes to node:http: HEAD, a query, a body over the
 * limit, too many header fields, a client over its rate (node answers 431,
 * 413, 429 and 405 with their bodies).
 */
import type { Socket } from 'node:net';
import { cachingFields, decodeGetRequest, ifNoneMatchHits, maxOcspRequestBytes } from '../ocsp/http.js';
import type { OcspResponder, OcspResult } from '../ocsp/responder.js';
import { errorResponse } from '../ocsp/response.js';
import { accessLogger, type Logger } from './log.js';
import type { RequestLimits } from './limits.js';
import { clientAddress, requestIdOf, trustedProxies } from './request-context.js';
import type { WireHandler, WireReply } from './wire.js';
import type { WireRequest } from './wire-parse.js';

export interface WireOcspDeps {
  responder: OcspResponder;
  /** The instance clock (max-age), as given to ocspHandler. */
  now: () => Date;
  log: Logger;
  /** As the front's: the access line (default on), the latency metric, proxies, limits. */
  accessLog?: boolean;
  observe?: (url: string, status: number, seconds: number) => void;
  trustedProxies?: readonly string[];
  limits?: RequestLimits;
  /** As ocspHandler's (defaults `/ocsp`, `maxOcspRequestBytes`). */
  path?: string;
  maxRequestBytes?: number;
}

/** What one raw answer carries for the access line. */
interface OcspWireReply extends WireReply {
  reqId: string;
  address: string;
  started: number;
}

/** The raw-path OCSP handler (see the file comment). */
export function wireOcsp(deps: WireOcspDeps): WireHandler {
  const proxies = trustedProxies(deps.trustedProxies ?? []);
  const access = deps.accessLog === false ? undefined : accessLogger(deps.log);
  const observe = deps.observe;
  const limits = deps.limits;
  const base = (deps.path ?? '/ocsp').replace(/\/+$/, '');
  const under = `${base}/`;
  const limit = deps.maxRequestBytes ?? maxOcspRequestBytes;

  /** The answer to `req`; `cacheable`: GET with RFC 5019 §6.2 fields (an internalError never is). */
  const reply = (req: WireRequest, r: OcspResult, reqId: string, address: string, started: number, cacheable = req.method === 'GET'): OcspWireReply => {
    const nowMs = deps.now().getTime();
    let headerLines = `X-Request-Id: ${reqId}\r\n`;
    if (cacheable && r.cache) {
      const f = cachingFields(r.cache, nowMs);
      // ocspHandler's 304: etag, cache-control, expires and no body.
      if (ifNoneMatchHits(req.ifNoneMatch, r.cache.etag)) {
        headerLines += `etag: ${r.cache.etag}\r\ncache-control: ${f.cacheControl}\r\nexpires: ${f.expires}\r\n`;
        return { status: 304, headerLines, body: '', reqId, address, started };
      }
      headerLines += `content-type: application/ocsp-response\r\ncontent-length: ${r.der.length}\r\ncache-control: ${f.cacheControl}\r\nlast-modified: ${f.lastModified}\r\nexpires: ${f.expires}\r\netag: ${r.cache.etag}\r\n`;
    } else headerLines += `content-type: application/ocsp-response\r\ncontent-length: ${r.der.length}\r\ncache-control: no-store\r\n`;
    return { status: 200, headerLines, body: r.der.toString('latin1'), reqId, address, started };
  };

  return {
    answer(req: WireRequest, socket: Socket) {
      const target = req.target;
      let der: Buffer | null;
      if (req.method === 'GET') {
        if (!target.startsWith(under) || target.length === under.length || target.includes('?')) return undefined;
        const d = decodeGetRequest(target.slice(under.length));
        der = d !== null && d.length <= limit ? d : null;
      } else {
        if (target !== base || req.contentType?.toLowerCase() !== 'application/ocsp-request' || req.body!.length > limit) return undefined;
        // A copy, as ocspHandler's: the body is a view into the bytes read, which may hold the next requests too.
        der = Buffer.from(req.body!);
      }
      if (limits !== undefined && req.headerCount > limits.maxHeaders) return undefined;
      const started = access || observe ? performance.now() : 0;
      const address = clientAddress(socket.remoteAddress, req.xForwardedFor, proxies);
      // Refused: node:http takes the request again and answers it as the front does (tryLater, Retry-After).
      if (limits !== undefined && limits.status.take(address) > 0) return undefined;
      const reqId = requestIdOf(req.xRequestId);
      if (der === null) return reply(req, { der: errorResponse('malformedRequest'), cache: null }, reqId, address, started);
      const held = deps.responder.answerCached(der);
      if (held !== undefined) return reply(req, held, reqId, address, started);
      return deps.responder.answer(der).then(
        (r) => reply(req, r, reqId, address, started),
        (err: unknown) => {
          deps.log({ level: 'error', msg: 'OCSP handler failed', reqId, error: String(err) });
          // As ocspHandler's `fail`: internalError, not cacheable.
          return reply(req, { der: errorResponse('internalError'), cache: null }, reqId, address, started, false);
        },
      );
    },
    written(req: WireRequest, r: WireReply) {
      if (!access && !observe) return;
      const { reqId, address, started } = r as OcspWireReply;
      const ms = performance.now() - started;
      access?.({ reqId, address, method: req.method, path: req.target, status: r.status, ms: Math.round(ms * 100) / 100, problem: undefined });
      observe?.(req.target, r.status, ms / 1000);
    },
  };
}
