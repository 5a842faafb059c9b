/**
 * Which http-01 redirects are followed. RFC 8555 §8.3 says only that the
 * server follows redirects ("The server SHOULD follow redirects when
 * dereferencing the URL"); the limits are ours, after Let's Encrypt's:
 *
 * - the target is an `http:` or `https:` URL, relative ones resolved against
 *   the URL that redirected (RFC 9110 §10.2.2);
 * - an `http:` target must use the http-01 port and an `https:` target the
 *   tls-alpn-01 port: these stand in for Let's Encrypt's 80 and 443, so a
 *   default port in the URL (80, 443) only passes when it is the configured one;
 * - the host is a host name or an address literal; its addresses go through
 *   the address policy again when the redirect is followed;
 * - credentials and the fragment are dropped (never sent anyway).
 *
 * Counting hops and spotting loops is the caller's part.
 */
import { ValidationFailure } from './failure.js';
import { parseIpAddress } from './address-policy.js';
import { parseDnsName } from './request.js';

/** The ports redirect targets may use, per scheme. */
export interface RedirectPorts {
  http: number;
  https: number;
}

/** HTTP status codes that redirect (RFC 9110 §15.4), all followed with GET. */
export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** The port a URL connects to: its own, or its scheme's default. */
export const effectivePort = (url: URL): number => (url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80);

/** The host of a URL without the brackets of an IPv6 literal. */
export const bareHostname = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, '$1');

/**
 * Resolves the `Location` of a redirect from `current` and applies the rule
 * above; throws a `connection` ValidationFailure (Boulder's class for refused
 * redirects) naming the redirect.
 */
export function redirectTarget(location: string | undefined, current: URL, status: number, ports: RedirectPorts): URL {
  const from = `${current.href} redirected (HTTP ${status})`;
  const refuse = (why: string) => new ValidationFailure('connection', `${from} ${why}`);
  if (!location) throw refuse('without a Location header');
  let next: URL;
  try {
    next = new URL(location, current);
  } catch (err) {
    throw new ValidationFailure('connection', `${from} to ${JSON.stringify(location)}, which is not a URL`, { cause: err });
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') throw refuse(`to ${next.href}: only http and https redirects are followed`);
  const port = effectivePort(next);
  const allowed = next.protocol === 'http:' ? ports.http : ports.https;
  if (port !== allowed) throw refuse(`to ${next.href}: ${next.protocol.slice(0, -1)} redirects are followed to port ${allowed} only, not ${port}`);
  const host = bareHostname(next);
  if (!parseIpAddress(host) && !parseDnsName(host.replace(/\.$/, ''))) throw refuse(`to ${next.href}: ${JSON.stringify(host)} is not a host name`);
  next.username = '';
  next.password = '';
  next.hash = '';
  return next;
}
