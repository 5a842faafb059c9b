/** Serves CRLs at their distribution point URLs from memory (node:http hot path). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { scopeOfPath, type CrlPublisher } from './crl-publisher.js';

const path = /^\/crl\/([a-z0-9][a-z0-9-]{0,62})\/([a-z0-9-]{1,16}\.crl)$/;

/**
 * GET/HEAD /crl/{ca}/{n}.crl, /crl/{ca}/full.crl, /crl/{ca}/full-delta.crl:
 * DER `application/pkix-crl`, cacheable until nextUpdate. Returns true when it answered.
 */
export function crlHandler(publisher: CrlPublisher, now: () => Date): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const m = path.exec(req.url ?? '');
    if (!m || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const scope = scopeOfPath(m[2]!);
    const crl = scope ? publisher.get(m[1]!, scope) : undefined;
    if (!crl) {
      res.writeHead(404, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ type: 'urn:trellis:problem:notFound', title: 'Not found', status: 404, detail: 'no such CRL' }));
      return true;
    }
    const maxAge = Math.max(0, Math.floor((crl.nextUpdate.getTime() - now().getTime()) / 1000));
    res.writeHead(200, {
      'content-type': 'application/pkix-crl',
      'content-length': crl.der.length,
      'cache-control': `public, max-age=${maxAge}, no-transform, must-revalidate`,
      expires: crl.nextUpdate.toUTCString(),
      'last-modified': crl.thisUpdate.toUTCString(),
      etag: `"${crl.crlNumber.toString(16)}"`,
    });
    res.end(req.method === 'HEAD' ? undefined : crl.der);
    return true;
  };
}
