/**
 * What the front door learns about each request before anyone handles it:
 * a request id (logged with the access line and every error, sent back as
 * X-Request-Id, quoted in 5xx problems) and the client address (ACME rate
 * limits per address, the access log).
 *
 * The client address is the TCP peer, unless that peer is a proxy the
 * operator listed (`server.trustedProxies`, `serve --trusted-proxy`); then
 * X-Forwarded-For is walked from the right over trusted hops only, so a
 * client cannot pick its own address by sending the header itself.
 * Forwarded headers never build URLs: those come from the base URL alone.
 *
 * The id travels explicitly: the front sets `req.requestId`, and whoever logs
 * while a request is served passes it as the event's `reqId` field. There is
 * no AsyncLocalStorage: once a process enters one store, Node 20 runs promise
 * hooks for every promise it makes (docs/performance.md, OCSP).
 */
import { randomBytes } from 'node:crypto';
import { isPkiError, PkiError } from '../errors/pki-error.js';
import { bytesToIp } from '../pki/ip.js';
import { cidrContains, parseCidrs, parseIpAddress, type Cidr } from '../va/address-policy.js';

declare module 'node:http' {
  interface IncomingMessage {
    /** Set by the front (see {@link newRequestId}). */
    requestId?: string;
    /** Set by the front (see {@link clientAddress}). */
    clientAddress?: string;
  }
}

let pool = '';
let used = 0;

/**
 * 16 random hex digits (64 bits), from a pool refilled 512 ids at a time: 4 KiB of random octets turned into hex text
 * once, each id a slice of it (a view, no copy; one hex conversion per id was a C++ call of ~0.25 µs, a slice ~0.05 µs).
 */
export function newRequestId(): string {
  if (used + 16 > pool.length) {
    pool = randomBytes(4096).toString('hex');
    used = 0;
  }
  const id = pool.slice(used, used + 16);
  used += 16;
  return id;
}

// At most 64 characters a log line or a header can carry as they are: an id a
// proxy or client sends (X-Request-Id) is kept only if it is one of these.
const safeRequestId = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The id of one request: the incoming X-Request-Id when it is a single
 * header of 1 to 64 characters of [A-Za-z0-9._-] (so a proxy's id ties its
 * logs to ours), else a new one ({@link newRequestId}).
 */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && safeRequestId.test(header) ? header : newRequestId();
}

/** The parsed proxy list; throws `invalidConfig` naming a bad entry (so `serve` fails at start). */
export interface TrustedProxies {
  readonly cidrs: readonly Cidr[];
}

export function trustedProxies(texts: readonly string[]): TrustedProxies {
  try {
    return { cidrs: parseCidrs(texts) };
  } catch (err) {
    if (!isPkiError(err)) throw err;
    throw new PkiError(err.type, `trusted proxies (server.trustedProxies, --trusted-proxy): ${err.message}`, { cause: err });
  }
}

/** Octets of an address in canonical form; IPv4-mapped IPv6 (a dual-stack socket's peer) becomes IPv4. */
function octets(text: string | undefined): Buffer | null {
  if (!text) return null;
  const t = text.trim();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(t);
  return parseIpAddress(mapped ? mapped[1]! : t.replace(/^\[(.*)\]$/, '$1'));
}

// Peer address text → its canonical form: a request on a kept connection, or from a client seen before, is one Map lookup
// instead of parsing and printing the address again. Bounded: cleared when full, peers being few next to requests.
const canonicalPeers = new Map<string, string>();

/** `peer` in canonical form (see {@link octets}), 'unknown' when absent or not an address. */
function canonicalPeer(peer: string | undefined): string {
  if (peer === undefined) return 'unknown';
  let address = canonicalPeers.get(peer);
  if (address === undefined) {
    const bytes = octets(peer);
    address = bytes ? bytesToIp(bytes)! : 'unknown';
    if (canonicalPeers.size >= 10_000) canonicalPeers.clear();
    canonicalPeers.set(peer, address);
  }
  return address;
}

const trusted = (proxies: TrustedProxies, address: Buffer) => proxies.cidrs.some((c) => cidrContains(c, address));

/**
 * The client address of one request: `peer` (the socket's remote address)
 * unless it is a trusted proxy; then the rightmost X-Forwarded-For entry,
 * and so on while that is trusted too. An entry that is not an IP address
 * ends the walk at the last trusted hop. 'unknown' without a peer.
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, proxies: TrustedProxies): string {
  if (!proxies.cidrs.length || forwardedFor === undefined) return canonicalPeer(peer);
  let current = octets(peer);
  if (!current) return 'unknown';
  if (proxies.cidrs.length && forwardedFor !== undefined) {
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
    while (hops.length && trusted(proxies, current)) {
      const next = octets(hops.pop());
      if (!next) break;
      current = next;
    }
  }
  return bytesToIp(current)!;
}
