/**
 * The headers every console response carries. The console is static pages and
 * same-origin modules that read /api/v1: nothing inline and nothing from
 * another origin, so the policy allows 'self' and no more. `form-action
 * 'self'` keeps the login and search forms on this origin, `frame-ancestors
 * 'none'` forbids framing (clickjacking), `base-uri 'none'` stops a <base>
 * from moving relative URLs.
 */
import type { ServerResponse } from 'node:http';

/** The Content-Security-Policy of every console response (docs/console.md). */
export const contentSecurityPolicy =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Sets the security headers; HTML and anything personal is also `no-store`. */
export function setSecurityHeaders(res: ServerResponse, cache: 'no-store' | 'no-cache'): void {
  res.setHeader('Content-Security-Policy', contentSecurityPolicy);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Cache-Control', cache);
}
