/** OCSP over HTTP (RFC 6960 Appendix A, RFC 5019 §5–6) on the node:http hot path. */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorResponse } from './response.js';
import type { OcspResult, OcspResponder } from './responder.js';

/** RFC 5019 §5: requests are small; anything bigger is refused. */
export const maxOcspRequestBytes = 16 * 1024;

function send(res: ServerResponse, r: OcspResult, now: Date, get: boolean): void {
  const headers: Record<string, string | number> = { 'content-type': 'application/ocsp-response', 'content-length': r.der.length };
  if (get && r.cache) {
    // RFC 5019 §6.2: caching headers so a CDN can hold the response until nextUpdate.
    const maxAge = Math.max(0, Math.floor((r.cache.nextUpdate.getTime() - now.getTime()) / 1000));
    headers['cache-control'] = `max-age=${maxAge}, public, no-transform, must-revalidate`;
    headers['last-modified'] = r.cache.thisUpdate.toUTCString();
    headers.expires = r.cache.nextUpdate.toUTCString();
    headers.etag = `"${createHash('sha256').update(r.der).digest('hex').slice(0, 32)}"`;
  } else headers['cache-control'] = 'no-store';
  res.writeHead(200, headers);
  res.end(r.der);
}

/** Returns a handler that takes POST /ocsp and GET /ocsp/{base64 request}. */
export function ocspHandler(responder: OcspResponder, now: () => Date, log?: (e: Record<string, unknown>) => void): (req: IncomingMessage, res: ServerResponse) => boolean {
  const fail = (res: ServerResponse, err: unknown) => {
    log?.({ level: 'error', msg: 'OCSP handler failed', error: String(err) });
    if (!res.headersSent) send(res, { der: errorResponse('internalError'), cache: null }, now(), false);
  };
  return (req, res) => {
    const url = req.url ?? '';
    if (req.method === 'POST' && (url === '/ocsp' || url === '/ocsp/')) {
      const chunks: Buffer[] = [];
      let size = 0;
      let refused = false;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxOcspRequestBytes && !refused) {
          refused = true;
          send(res, { der: errorResponse('malformedRequest'), cache: null }, now(), false);
          req.destroy();
        } else if (!refused) chunks.push(c);
      });
      req.on('end', () => {
        if (refused) return;
        responder.respond(Buffer.concat(chunks)).then((r) => send(res, r, now(), false), (err) => fail(res, err));
      });
      req.on('error', () => undefined);
      return true;
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && url.startsWith('/ocsp/')) {
      // The request is base64 (RFC 4648 §4), URL-encoded; accept base64url as well.
      let der: Buffer;
      try {
        const b64 = decodeURIComponent(url.slice('/ocsp/'.length)).replace(/-/g, '+').replace(/_/g, '/');
        der = Buffer.from(b64, 'base64');
      } catch {
        der = Buffer.alloc(0); // bad percent-encoding: answered as a malformed request below
      }
      if (der.length > maxOcspRequestBytes) der = Buffer.alloc(0);
      responder.respond(der).then((r) => send(res, r, now(), true), (err) => fail(res, err));
      return true;
    }
    return false;
  };
}
