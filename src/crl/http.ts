/** Serves CRLs at their distribution point URLs (the node:http hot path, no express): from memory, a large one read from the store. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { systemClock } from '../clock/clock.js';
import type { HeldCrl } from './ports.js';
import { scopeOfFile } from './scope.js';

/** What the handler needs of a publisher: the CRL held for a scope, and the DER of one not held with it. */
export interface CrlSource {
  get(caId: string, scope: string): HeldCrl | undefined;
  derOf(crl: HeldCrl): Promise<Buffer | null>;
}

const crlPath = /^\/crl\/([a-z0-9][a-z0-9-]{0,62})\/([a-z0-9-]{1,20}\.crl)$/;

/** RFC 9457 problem document for an unknown CRL. */
const notFoundBody = JSON.stringify({ type: 'about:blank', title: 'Not Found', status: 404, detail: 'no such CRL' });
/** RFC 9457 problem document for a large CRL whose DER could not be read (the store failed, or a newer one is being loaded). */
const unavailableBody = JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'CRL not available right now' });

/**
 * GET/HEAD `/crl/{caId}/{n}.crl`, `/crl/{caId}/full.crl`, `/crl/{caId}/full-delta.crl`:
 * 200 `application/pkix-crl` DER (RFC 5280 §4.2.1.13, RFC 2585 §4.2), cacheable
 * until nextUpdate; 304 on a matching If-None-Match; 404 problem+json for an
 * unknown CA or scope. A large CRL (held without its DER) answers 304 at once
 * and 200 once its DER is read from the store; 503 problem+json with
 * Retry-After when that fails. Returns true when it answered or will,
 * false for any other path or method (the caller goes on to express). Never throws.
 */
export function crlHandler(
  publisher: CrlSource,
  now: () => Date = () => systemClock.now(),
  log?: (event: Record<string, unknown>) => void,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const url = req.url ?? '';
    if (!url.startsWith('/crl/')) return false;
    const m = crlPath.exec(url.split('?', 1)[0]!);
    const scope = m ? scopeOfFile(m[2]!) : null;
    const crl = m && scope ? publisher.get(m[1]!, scope) : undefined;
    if (!crl) {
      res.writeHead(404, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(notFoundBody), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : notFoundBody);
      return true;
    }
    // Caches may hold the CRL until nextUpdate, never beyond (a stale CRL is
    // still served after a failed regeneration, with max-age 0).
    const maxAge = Math.max(0, Math.floor((crl.nextUpdate.getTime() - now().getTime()) / 1000));
    const etag = `"${crl.crlNumber.toString()}"`;
    const headers = {
      'cache-control': `public, max-age=${maxAge}, no-transform`,
      expires: crl.nextUpdate.toUTCString(),
      'last-modified': crl.thisUpdate.toUTCString(),
      etag,
    };
    if (req.headers['if-none-match']?.split(/\s*,\s*/).includes(etag)) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    const send = (der: Buffer) => {
      res.writeHead(200, { ...headers, 'content-type': 'application/pkix-crl', 'content-length': der.length });
      res.end(req.method === 'HEAD' ? undefined : der);
    };
    if (crl.der) {
      send(crl.der);
      return true;
    }
    const unavailable = (error: string) => {
      log?.({ level: 'warn', msg: 'CRL not served: its DER could not be read', reqId: req.requestId, ca: crl.caId, scope: crl.scope, crlNumber: crl.crlNumber.toString(), error });
      if (res.headersSent || res.destroyed) return;
      res.writeHead(503, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(unavailableBody), 'cache-control': 'no-store', 'retry-after': '1' });
      res.end(req.method === 'HEAD' ? undefined : unavailableBody);
    };
    publisher.derOf(crl).then(
      (der) => (der ? send(der) : unavailable('superseded in the store')),
      (err: unknown) => unavailable(err instanceof Error ? err.message : String(err)),
    );
    return true;
  };
}
