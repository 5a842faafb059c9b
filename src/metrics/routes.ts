/** The classes requests are counted under: few and fixed, so the latency histogram's label sets stay bounded whatever the URL. */

/** Route classes of `trellis_http_request_duration_seconds`. */
export const routeClasses = ['ocsp', 'crl', 'est', 'acme', 'api', 'other'] as const;
export type RouteClass = (typeof routeClasses)[number];

const under = (path: string, base: string): boolean => path.startsWith(base) && (path.length === base.length || path.charCodeAt(base.length) === 0x2f);

/** The class of a request URL (path and query as received): by its first path segments. */
export function routeClassOf(url: string): RouteClass {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (under(path, '/ocsp')) return 'ocsp';
  if (path.startsWith('/crl/')) return 'crl';
  if (under(path, '/.well-known/est')) return 'est';
  if (under(path, '/acme')) return 'acme';
  if (under(path, '/api')) return 'api';
  return 'other';
}
