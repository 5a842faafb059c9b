/**
 * What one client may ask of the front (issue 12, "Hostile input"): request
 * rates per client address, open connections per peer address, and the
 * settings of the node:http server (header size and count, slow-client
 * timeouts, the connection cap) taken from `server.limits` of trellis.json.
 *
 * Rates are token buckets kept in memory by each process: with N processes
 * (cluster workers, nodes behind a balancer) a client gets up to N times the
 * budget, which bounds abuse without a shared counter on a path that answers
 * 25k+ OCSP requests a second. The check on a known address is one Map lookup
 * and a few numbers updated in place: it allocates nothing.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { ServerLimits } from '../config/instance-config.js';
import { PkiError } from '../errors/pki-error.js';
import { problemFor } from '../errors/problem.js';
import { ipToBytes } from '../pki/ip.js';
import { cidrContains, parseIpAddress, type Cidr } from '../va/address-policy.js';
import { trustedProxies } from './request-context.js';

/** Addresses tracked at most, per limiter; past it the longest-known half is forgotten (they start again with a full bucket). */
const defaultMaxTracked = 100_000;

/**
 * Milliseconds since the process started, from a clock ticked every 10 ms
 * while it is read (a rate limiter's take is ~20-30 ns with it, ~50-80 ns
 * with performance.now(), which returns a new heap number per call). The
 * timer is unref'd, starts with a read and stops at a tick that finds no read
 * since the one before: an idle process is not woken 100 times a second.
 */
const coarse = new Float64Array(1);
let ticking: NodeJS.Timeout | undefined;
let readSinceTick = false;
function tick(): void {
  if (!readSinceTick) {
    clearInterval(ticking);
    ticking = undefined;
    return;
  }
  readSinceTick = false;
  coarse[0] = performance.now();
}
function coarseNowMs(): number {
  if (ticking === undefined) {
    coarse[0] = performance.now();
    ticking = setInterval(tick, 10);
    ticking.unref();
  }
  readSinceTick = true;
  return coarse[0]!;
}

/**
 * A token bucket per client address: `ratePerSecond` tokens flow in up to
 * `burst`, each request takes one. IPv6 clients are counted per /64, the
 * smallest block a site is given (RFC 6177), so that one host cannot mint a
 * fresh bucket per address.
 *
 * The buckets are slots of typed arrays found through a Map from address to
 * slot number: a request from a known IPv4 address reads and writes numbers
 * in place and allocates nothing.
 */
export class AddressRateLimiter {
  private readonly slots = new Map<string, number>();
  private tokens = new Float64Array(64);
  /** Milliseconds (the limiter's clock) when the slot's tokens were last brought up to date. */
  private at = new Float64Array(64);
  /** 1 for an exempt address: the CIDR walk runs once per address, not per request. */
  private exempt = new Uint8Array(64);
  private readonly free: number[] = [];
  private used = 0;
  private readonly perMs: number;

  constructor(
    /** Sustained requests per second; 0 switches the limiter off. */
    readonly ratePerSecond: number,
    /** Requests allowed at once above the rate (the bucket's size). */
    readonly burst: number,
    private readonly exemptCidrs: readonly Cidr[],
    /** Milliseconds from any fixed origin (monotonic); a parameter for tests. */
    private readonly nowMs: () => number = coarseNowMs,
    private readonly maxTracked = defaultMaxTracked,
  ) {
    this.perMs = ratePerSecond / 1000;
  }

  /**
   * Takes one request of `address` (as the front worked it out): 0 when it
   * may go on, else the whole seconds until the next request would fit (for
   * Retry-After, at least 1).
   */
  take(address: string): number {
    if (this.perMs === 0) return 0;
    const key = address.includes(':') && address !== '::1' ? ipv6Block(address) : address;
    const now = this.nowMs();
    let i = this.slots.get(key);
    if (i === undefined) i = this.track(key, address, now);
    if (this.exempt[i] === 1) return 0;
    const tokens = Math.min(this.burst, this.tokens[i]! + (now - this.at[i]!) * this.perMs);
    this.at[i] = now;
    if (tokens >= 1) {
      this.tokens[i] = tokens - 1;
      return 0;
    }
    this.tokens[i] = tokens;
    return Math.max(1, Math.ceil((1 - tokens) / this.perMs / 1000));
  }

  /** Addresses with a bucket (tests, metrics). */
  get tracked(): number {
    return this.slots.size;
  }

  private track(key: string, address: string, now: number): number {
    if (this.slots.size >= this.maxTracked) this.forget(now);
    const bytes = parseIpAddress(address);
    // A /64 bucket is exempt only when an exempt block covers all of it.
    const block = key !== address;
    const exempt = bytes !== null && this.exemptCidrs.some((c) => (!block || c.prefixLength <= 64) && cidrContains(c, bytes));
    const i = this.free.pop() ?? this.used++;
    if (i >= this.tokens.length) this.grow();
    this.tokens[i] = this.burst;
    this.at[i] = now;
    this.exempt[i] = exempt ? 1 : 0;
    this.slots.set(key, i);
    return i;
  }

  private grow(): void {
    const n = this.tokens.length * 2;
    const tokens = new Float64Array(n);
    const at = new Float64Array(n);
    const exempt = new Uint8Array(n);
    tokens.set(this.tokens);
    at.set(this.at);
    exempt.set(this.exempt);
    this.tokens = tokens;
    this.at = at;
    this.exempt = exempt;
  }

  /** Drops the buckets that are full again (nothing to remember), and if that is not enough, the older half. */
  private forget(now: number): void {
    for (const [k, i] of this.slots) {
      if (this.exempt[i] === 0 && this.tokens[i]! + (now - this.at[i]!) * this.perMs >= this.burst) this.drop(k, i);
    }
    if (this.slots.size < this.maxTracked / 2) return;
    let n = this.slots.size - Math.floor(this.maxTracked / 2);
    for (const [k, i] of this.slots) {
      if (n-- <= 0) break;
      this.drop(k, i);
    }
  }

  private drop(key: string, slot: number): void {
    this.slots.delete(key);
    this.free.push(slot);
  }
}

/** The /64 of an IPv6 address as text (its first 8 octets in hex); the address itself when it does not parse. */
function ipv6Block(address: string): string {
  const bytes = ipToBytes(address);
  return bytes && bytes.length === 16 ? `${bytes.toString('hex', 0, 8)}::/64` : address;
}

/** Paths answered to relying parties rather than enrolling clients: OCSP, CRLs, CA certificates. */
export function isStatusPath(url: string): boolean {
  return url.startsWith('/ocsp') || url.startsWith('/crl/') || url.startsWith('/ca/');
}

/**
 * Paths whose handlers refuse a declared Content-Length over their own limit
 * before reading a byte, in their protocol's words: OCSP (16 KiB) and EST
 * (64 KiB) answer 413 and close; ACME answers its 413 problem document with
 * a fresh Replay-Nonce (RFC 8555 §6.5), at `server.bodyLimitBytes`. The
 * front leaves the check to them.
 */
export function ownsBodyLimit(url: string): boolean {
  return url.startsWith('/ocsp') || url.startsWith('/.well-known/est/') || url.startsWith('/acme/');
}

/** What the front checks on every request (see {@link frontLimits}). */
export interface RequestLimits {
  /** Header fields per request; more is answered 431. */
  maxHeaders: number;
  /** A declared Content-Length above this is answered 413 before any of the body is read. */
  maxBodyBytes: number;
  /** OCSP, CRLs, CA certificates. */
  status: AddressRateLimiter;
  /** Everything else. */
  other: AddressRateLimiter;
}

/** What {@link listen} sets on the node:http server and checks per connection. */
export interface ConnectionLimits {
  maxHeaderBytes: number;
  maxHeaders: number;
  maxConnections: number;
  /** 0 = no cap. */
  maxConnectionsPerAddress: number;
  /** Peers the per-address cap does not apply to (trusted proxies, exempt addresses). */
  exempt: readonly Cidr[];
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/** The front's limits from `server.limits` and `server.bodyLimitBytes`; throws `invalidConfig` for a bad CIDR. */
export function frontLimits(
  server: { limits: ServerLimits; bodyLimitBytes: number },
  proxies: readonly string[],
  nowMs?: () => number,
): { requests: RequestLimits; connections: ConnectionLimits } {
  const l = server.limits;
  const exempt = trustedProxies(l.exemptAddresses).cidrs;
  return {
    requests: {
      maxHeaders: l.maxHeaders,
      maxBodyBytes: server.bodyLimitBytes,
      status: new AddressRateLimiter(l.statusRequestsPerSecond, l.statusBurstRequests, exempt, nowMs),
      other: new AddressRateLimiter(l.requestsPerSecond, l.burstRequests, exempt, nowMs),
    },
    connections: {
      maxHeaderBytes: l.maxHeaderBytes,
      maxHeaders: l.maxHeaders,
      maxConnections: l.maxConnections,
      maxConnectionsPerAddress: l.maxConnectionsPerAddress,
      exempt: [...exempt, ...trustedProxies(proxies).cidrs],
      headersTimeoutMs: l.headersTimeoutSeconds * 1000,
      requestTimeoutMs: l.requestTimeoutSeconds * 1000,
      keepAliveTimeoutMs: l.keepAliveTimeoutSeconds * 1000,
    },
  };
}

/** Connection settings when the caller gives none: what `listen` always used, and Node's header limits. */
export const defaultConnectionLimits: ConnectionLimits = {
  maxHeaderBytes: 16 * 1024,
  maxHeaders: 2000,
  maxConnections: Infinity,
  maxConnectionsPerAddress: 0,
  exempt: [],
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
};

/**
 * Options for http(s).createServer. Node checks the headers and request
 * timeouts every `connectionsCheckingInterval` (30 s by default, which would
 * let a slowloris hold a socket that long past a 10 s timeout): a quarter
 * of the shorter timeout, at most one second.
 */
export function serverOptions(l: ConnectionLimits): http.ServerOptions & { handshakeTimeout: number } {
  return {
    maxHeaderSize: l.maxHeaderBytes,
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(Math.min(l.headersTimeoutMs, l.requestTimeoutMs) / 4))),
    // TLS: the handshake comes before any header; a client that stalls it is held no longer than one that stalls its headers.
    handshakeTimeout: l.headersTimeoutMs,
  };
}

/** Applies the limits that are server properties rather than options. */
export function applyServerLimits(server: http.Server, l: ConnectionLimits): void {
  server.headersTimeout = l.headersTimeoutMs;
  server.requestTimeout = l.requestTimeoutMs;
  server.keepAliveTimeout = l.keepAliveTimeoutMs;
  // server.maxHeadersCount stays at Node's 2000 (above the largest maxHeaders): Node answers a request past it
  // with a bare 400, while the front answers one past maxHeaders with 431.
  if (Number.isFinite(l.maxConnections)) server.maxConnections = l.maxConnections;
}

/**
 * Counts open connections per peer address (the TCP peer: behind a proxy the
 * proxy, which is exempt when trusted). Returns false when `socket` is one
 * over the cap; the caller closes it.
 */
export class ConnectionsPerAddress {
  private readonly open = new Map<string, number>();
  private readonly exemptPeers = new Map<string, boolean>();

  constructor(
    private readonly cap: number,
    private readonly exempt: readonly Cidr[],
  ) {}

  /** False when there is no cap (0): every socket is admitted. */
  get capped(): boolean {
    return this.cap !== 0;
  }

  admit(socket: Socket): boolean {
    const peer = socket.remoteAddress;
    if (this.cap === 0 || peer === undefined || this.isExempt(peer)) return true;
    const n = (this.open.get(peer) ?? 0) + 1;
    if (n > this.cap) return false;
    this.open.set(peer, n);
    socket.once('close', () => {
      const left = (this.open.get(peer) ?? 1) - 1;
      if (left <= 0) this.open.delete(peer);
      else this.open.set(peer, left);
    });
    return true;
  }

  private isExempt(peer: string): boolean {
    let e = this.exemptPeers.get(peer);
    if (e === undefined) {
      const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(peer);
      const bytes = parseIpAddress(mapped ? mapped[1]! : peer);
      e = bytes !== null && this.exempt.some((c) => cidrContains(c, bytes));
      // Bounded: peers are few compared with requests, and an unbounded cache would be a memory sink.
      if (this.exemptPeers.size >= 10_000) this.exemptPeers.clear();
      this.exemptPeers.set(peer, e);
    }
    return e;
  }
}

/*
 * RFC 6960 §4.2.1: an OCSPResponse without responseBytes.
 *   OCSPResponse ::= SEQUENCE { responseStatus OCSPResponseStatus, ... }
 *   OCSPResponseStatus ::= ENUMERATED { ..., tryLater (3), ... }
 */
const ocspTryLaterDer = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x03]);

/**
 * Answers a request the front refuses (429, 431, 413) in the dialect of the
 * endpoint asked: an RFC 8555 problem under /acme/, an OCSP `tryLater`
 * response for a rate-limited OCSP request, plain text for EST (RFC 7030
 * errors are text), an RFC 9457 problem elsewhere. A refused body is never
 * read: the connection closes after the answer.
 */
export function refuse(req: http.IncomingMessage, res: http.ServerResponse, url: string, refusal: { status: 413 | 429 | 431; detail: string; retryAfterSeconds?: number }): void {
  const headers: Record<string, string | number> = { 'cache-control': 'no-store' };
  if (refusal.retryAfterSeconds !== undefined) headers['retry-after'] = refusal.retryAfterSeconds;
  if (refusal.status !== 429) headers.connection = 'close';
  let body: string | Buffer;
  if (url.startsWith('/ocsp') && refusal.status === 429) {
    headers['content-type'] = 'application/ocsp-response';
    body = ocspTryLaterDer;
  } else if (url.startsWith('/.well-known/est/') || url.startsWith('/ocsp') || url.startsWith('/crl/') || url.startsWith('/ca/')) {
    headers['content-type'] = 'text/plain; charset=utf-8';
    body = `${refusal.detail}\n`;
  } else {
    const type = ({ 413: 'payloadTooLarge', 429: 'rateLimited', 431: 'malformed' } as const)[refusal.status];
    const doc = problemFor(new PkiError(type, refusal.detail), url.startsWith('/acme/') ? 'acme' : 'api', req.requestId);
    doc.status = refusal.status;
    headers['content-type'] = 'application/problem+json';
    body = JSON.stringify(doc);
    res.locals = { ...res.locals, problem: doc.type };
  }
  headers['content-length'] = Buffer.byteLength(body);
  res.writeHead(refusal.status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  if (refusal.status !== 429) res.once('finish', () => req.destroy());
}
