/**
 * Cross-site request checks for the console's form posts (login, logout).
 * SameSite=Strict keeps the cookie off other sites' requests; this check also
 * refuses a post that another site's page makes (login CSRF: logging a
 * victim's browser in with the attacker's token). Browsers send Origin on
 * every POST, and Sec-Fetch-Site too.
 */
import type { IncomingMessage } from 'node:http';
import { PkiError } from '../errors/pki-error.js';

/**
 * Throws `forbidden` unless a browser's post comes from a page of this host:
 * Origin, when sent, must name the host the request was sent to (the Host
 * header; a proxy in front passes it on), and Sec-Fetch-Site, when sent, must
 * be same-origin. A request with neither comes from a program, not a page
 * another site controls.
 */
export function assertSameOrigin(req: IncomingMessage): void {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') throw new PkiError('forbidden', `a console form must be posted from the console itself (Sec-Fetch-Site: ${String(site).slice(0, 32)})`);
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host: string | undefined;
  try {
    host = origin === 'null' ? undefined : new URL(origin).host;
  } catch (err) {
    throw new PkiError('forbidden', 'the Origin header is not a URL', { cause: err });
  }
  const expected = req.headers.host?.toLowerCase();
  if (!host || !expected || host.toLowerCase() !== expected) {
    throw new PkiError('forbidden', 'a console form must be posted from the console itself (Origin does not match the host)');
  }
}
