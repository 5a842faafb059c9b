/**
 * Cross-site request checks for the console's form posts (login, logout).
 * SameSite=Strict keeps the cookie off other sites' requests; this check also
 * refuses a post that another site's page makes (login CSRF: logging a
 * victim's browser in with the attacker's token).
 *
 * Browsers send Sec-Fetch-Site on every request, computed by the browser
 * alone, so it decides when present. Origin is checked too; under our
 * Referrer-Policy no-referrer, Chromium sends `Origin: null` for the
 * console's own form posts (the Fetch standard serializes the origin as null
 * then), which is accepted only with Sec-Fetch-Site: same-origin.
 */
import type { IncomingMessage } from 'node:http';
import { PkiError } from '../errors/pki-error.js';

/**
 * Throws `forbidden` unless a browser's post comes from a page of this host:
 * Sec-Fetch-Site, when sent, must be same-origin; Origin, when sent, must
 * name the host the request was sent to (the Host header, which a proxy in
 * front passes on), or be null with Sec-Fetch-Site: same-origin. A request
 * with neither header comes from a program, not from a page another site controls.
 */
export function assertSameOrigin(req: IncomingMessage): void {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') throw new PkiError('forbidden', `a console form must be posted from the console itself (Sec-Fetch-Site: ${String(site).slice(0, 32)})`);
  const origin = req.headers.origin;
  if (origin === undefined || (origin === 'null' && site === 'same-origin')) return;
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
