/**
 * A small RFC 8555 client for protocol tests, built on node:crypto only, so
 * that it judges the server independently of the code under test. Every
 * request can be made to misbehave on purpose (another key or algorithm,
 * protected header members overridden, omitted or added, a tampered
 * signature, a reused nonce, a raw body), and every call returns the raw
 * response (status, headers, parsed JSON) rather than throwing, so tests
 * assert on the exact problem document. `assertOk()` turns a response into
 * its JSON for the happy path.
 *
 * Also here: CSRs built in DER by hand, the RFC 9773 certificate id, and
 * http-01 / tls-alpn-01 (RFC 8737, RFC 8738) responders.
 */
import crypto, { type KeyObject } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';

// ---- base64url, DER ----------------------------------------------------------

/** base64url without padding (RFC 7515 §2). */
export function b64u(data: Buffer | string): string {
  return (typeof data === 'string' ? Buffer.from(data, 'utf8') : data).toString('base64url');
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const der = {
  seq: (...p: Buffer[]) => tlv(0x30, ...p),
  set: (...p: Buffer[]) => tlv(0x31, ...p),
  octets: (b: Buffer) => tlv(0x04, b),
  bits: (b: Buffer) => tlv(0x03, Buffer.from([0]), b),
  bool: (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0])),
  null: () => Buffer.from([0x05, 0x00]),
  utf8: (s: string) => tlv(0x0c, Buffer.from(s, 'utf8')),
  /** A non-negative INTEGER from big-endian magnitude bytes (a 0x00 is prepended when the top bit is set). */
  uint(b: Buffer | number): Buffer {
    let bytes = typeof b === 'number' ? Buffer.from([b]) : b;
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0 && !(bytes[i + 1]! & 0x80)) i++;
    bytes = bytes.subarray(i);
    return tlv(0x02, bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
  },
  oid(dotted: string): Buffer {
    const arcs = dotted.split('.').map(Number);
    const out = [40 * arcs[0]! + arcs[1]!];
    for (const arc of arcs.slice(2)) {
      const chunk = [arc & 0x7f];
      for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
      out.push(...chunk);
    }
    return tlv(0x06, Buffer.from(out));
  },
  /** UTCTime until 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
  time(d: Date): Buffer {
    const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
    return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
  },
  explicit: (n: number, ...p: Buffer[]) => tlv(0xa0 + n, ...p),
};

interface Tlv {
  tag: number;
  /** Offset of the first content byte. */
  start: number;
  /** Offset just past the content. */
  end: number;
}

function readTlv(buf: Buffer, off: number): Tlv {
  const tag = buf[off]!;
  let p = off + 1;
  let len = buf[p++]!;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
  }
  if (p + len > buf.length) throw new Error(`DER: element at ${off} runs past the end`);
  return { tag, start: p, end: p + len };
}

function childrenOf(buf: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = t.start; p < t.end; ) {
    const c = readTlv(buf, p);
    out.push(c);
    p = c.end;
  }
  return out;
}

function oidText(buf: Buffer, t: Tlv): string {
  const b = buf.subarray(t.start, t.end);
  const arcs = [Math.floor(b[0]! / 40), b[0]! % 40];
  let v = 0;
  for (const byte of b.subarray(1)) {
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  return arcs.join('.');
}

/** DER of the first PEM block in `text` (or `text` itself when it is already DER). */
export function pemToDer(text: string | Buffer): Buffer {
  if (Buffer.isBuffer(text) && text[0] === 0x30) return text;
  const m = /-----BEGIN [^-]+-----([\s\S]+?)-----END [^-]+-----/.exec(text.toString());
  if (!m) throw new Error('no PEM block found');
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

/** PEM text of one DER block. */
export function derToPem(label: string, derBytes: Buffer): string {
  const b64 = derBytes.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Every certificate PEM block in `text`, in order. */
export function splitPemChain(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)?.map((b) => (b.endsWith('\n') ? b : `${b}\n`)) ?? [];
}

// ---- keys and JWS -------------------------------------------------------------

/** The JWS algorithms RFC 8555 servers are asked to support here, plus HS256 for EAB. */
export type JwsAlg = 'ES256' | 'ES384' | 'RS256' | 'EdDSA';

export interface AcmeKey {
  /** The algorithm this key signs with. */
  alg: JwsAlg;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Public JWK with only the RFC 7638 required members. */
  jwk: Record<string, string>;
  /** RFC 7638 SHA-256 thumbprint, base64url. */
  thumbprint: string;
}

/** The RFC 7638 required members of a public JWK, in lexicographic order. */
export function publicJwk(publicKey: KeyObject): Record<string, string> {
  const j = publicKey.export({ format: 'jwk' }) as Record<string, string>;
  switch (j.kty) {
    case 'EC':
      return { crv: j.crv!, kty: 'EC', x: j.x!, y: j.y! };
    case 'RSA':
      return { e: j.e!, kty: 'RSA', n: j.n! };
    case 'OKP':
      return { crv: j.crv!, kty: 'OKP', x: j.x! };
    default:
      throw new Error(`unsupported JWK kty ${j.kty}`);
  }
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url). */
export function jwkThumbprint(jwk: Record<string, string>): string {
  const required = jwk.kty === 'EC' ? ['crv', 'kty', 'x', 'y'] : jwk.kty === 'RSA' ? ['e', 'kty', 'n'] : ['crv', 'kty', 'x'];
  const json = `{${required.map((k) => `${JSON.stringify(k)}:${JSON.stringify(jwk[k])}`).join(',')}}`;
  return b64u(crypto.createHash('sha256').update(json).digest());
}

function algOfKey(publicKey: KeyObject): JwsAlg {
  const t = publicKey.asymmetricKeyType;
  if (t === 'rsa') return 'RS256';
  if (t === 'ed25519') return 'EdDSA';
  if (t === 'ec') {
    const curve = publicKey.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ES256';
    if (curve === 'secp384r1') return 'ES384';
    throw new Error(`unsupported EC curve ${curve}`);
  }
  throw new Error(`unsupported key type ${t}`);
}

/** Wraps an existing private key (KeyObject or PEM) as an account key. */
export function acmeKeyFrom(privateKey: KeyObject | string): AcmeKey {
  const priv = typeof privateKey === 'string' ? crypto.createPrivateKey(privateKey) : privateKey;
  const publicKey = crypto.createPublicKey(priv);
  const jwk = publicJwk(publicKey);
  return { alg: algOfKey(publicKey), privateKey: priv, publicKey, jwk, thumbprint: jwkThumbprint(jwk) };
}

/** A fresh key for `alg` (RS256: RSA-2048; EdDSA: Ed25519). */
export function generateAcmeKey(alg: JwsAlg = 'ES256'): AcmeKey {
  const { privateKey } =
    alg === 'ES256'
      ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'ES384'
        ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' })
        : alg === 'RS256'
          ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
          : crypto.generateKeyPairSync('ed25519');
  return acmeKeyFrom(privateKey);
}

/** Signs `input` the way JWS `alg` wants (ECDSA as IEEE P1363 r||s, RFC 7518 §3.4). */
function jwsSign(key: AcmeKey, input: Buffer): Buffer {
  switch (key.alg) {
    case 'ES256':
      return crypto.sign('sha256', input, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
    case 'ES384':
      return crypto.sign('sha384', input, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
    case 'RS256':
      return crypto.sign('sha256', input, key.privateKey);
    case 'EdDSA':
      return crypto.sign(null, input, key.privateKey);
  }
}

/** A JWS in flattened JSON serialization (RFC 7515 §7.2.2), the only one RFC 8555 §6.2 allows. */
export interface FlattenedJws {
  protected: string;
  payload: string;
  signature: string;
  header?: Record<string, unknown>;
}

export interface SignOptions {
  /** Exact payload text; otherwise `payload` is JSON-encoded ('' for POST-as-GET). */
  payloadRaw?: string;
  /** Exact base64url protected header, bypassing `protectedHeader`. */
  protectedRaw?: string;
  /** Exact base64url signature (e.g. '' with `alg: none`). */
  signature?: string;
  /** Flip one bit of the signature. */
  tamperSignature?: boolean;
  /** An unprotected JWS `header` member (RFC 8555 §6.2 forbids it). */
  unprotected?: Record<string, unknown>;
}

/** JSON text of a payload; `undefined` is the empty payload of POST-as-GET (RFC 8555 §6.3). */
function payloadText(payload: unknown): string {
  return payload === undefined ? '' : JSON.stringify(payload);
}

/** Signs `payload` under `protectedHeader` with `key` (or HMAC-SHA256 with `key.hmac`). */
export function signJws(key: AcmeKey | { hmac: Buffer }, protectedHeader: Record<string, unknown>, payload: unknown, opts: SignOptions = {}): FlattenedJws {
  const p = opts.protectedRaw ?? b64u(JSON.stringify(protectedHeader));
  const body = b64u(opts.payloadRaw ?? payloadText(payload));
  const input = Buffer.from(`${p}.${body}`, 'ascii');
  let sig = 'hmac' in key ? crypto.createHmac('sha256', key.hmac).update(input).digest() : jwsSign(key, input);
  if (opts.tamperSignature) {
    sig = Buffer.from(sig);
    sig[sig.length >> 1] ^= 0x01;
  }
  const jws: FlattenedJws = { protected: p, payload: body, signature: opts.signature ?? b64u(sig) };
  if (opts.unprotected) jws.header = opts.unprotected;
  return jws;
}

/** RFC 8555 §8.1 key authorization: token "." thumbprint of the account key. */
export function keyAuthorization(token: string, key: AcmeKey): string {
  return `${token}.${key.thumbprint}`;
}

// ---- resources ----------------------------------------------------------------------

export interface AcmeIdentifier {
  type: 'dns' | 'ip' | string;
  value: string;
}

export interface AcmeDirectory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
  revokeCert: string;
  keyChange: string;
  newAuthz?: string;
  renewalInfo?: string;
  meta?: { termsOfService?: string; website?: string; caaIdentities?: string[]; externalAccountRequired?: boolean; [k: string]: unknown };
  [k: string]: unknown;
}

export interface AcmeProblem {
  type: string;
  detail?: string;
  status?: number;
  subproblems?: Array<AcmeProblem & { identifier?: AcmeIdentifier }>;
  algorithms?: string[];
  [k: string]: unknown;
}

export interface AcmeAccount {
  status: 'valid' | 'deactivated' | 'revoked';
  contact?: string[];
  termsOfServiceAgreed?: boolean;
  orders?: string;
  externalAccountBinding?: unknown;
  [k: string]: unknown;
}

export interface AcmeOrder {
  status: 'pending' | 'ready' | 'processing' | 'valid' | 'invalid';
  expires?: string;
  identifiers: AcmeIdentifier[];
  notBefore?: string;
  notAfter?: string;
  error?: AcmeProblem;
  authorizations: string[];
  finalize: string;
  certificate?: string;
  replaces?: string;
  [k: string]: unknown;
}

export interface AcmeChallenge {
  type: string;
  url: string;
  status: 'pending' | 'processing' | 'valid' | 'invalid';
  token: string;
  validated?: string;
  error?: AcmeProblem;
  [k: string]: unknown;
}

export interface AcmeAuthorization {
  identifier: AcmeIdentifier;
  status: 'pending' | 'valid' | 'invalid' | 'deactivated' | 'expired' | 'revoked';
  expires?: string;
  challenges: AcmeChallenge[];
  wildcard?: boolean;
  [k: string]: unknown;
}

export interface AcmeRenewalInfo {
  suggestedWindow: { start: string; end: string };
  explanationURL?: string;
  [k: string]: unknown;
}

/** One HTTP exchange with the server, whatever its status. */
export interface AcmeResponse<T = any> {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** Parsed body when the Content-Type is JSON (application/json, problem+json, …). */
  json: T | undefined;
  /** The problem document when the Content-Type is application/problem+json. */
  problem: AcmeProblem | undefined;
  contentType: string | undefined;
  location: string | undefined;
  /** Replay-Nonce, if the response carried one. */
  nonce: string | undefined;
  /** Retry-After in seconds (delta-seconds or HTTP-date). */
  retryAfterSeconds: number | undefined;
  /** Every Link header value, parsed; resolved against the request URL. */
  links: Array<{ url: string; rel: string }>;
  /** What was sent, for messages. */
  request: { method: string; url: string; body?: string };
}

/** URLs of the Link headers with relation `rel`. */
export function linksOf(res: AcmeResponse, rel: string): string[] {
  return res.links.filter((l) => l.rel === rel).map((l) => l.url);
}

/** A response that was not the expected success; its message carries the problem. */
export class AcmeResponseError extends Error {
  constructor(
    readonly response: AcmeResponse,
    what: string,
  ) {
    super(`${what}: HTTP ${response.status} ${response.request.method} ${response.request.url}: ${response.problem ? `${response.problem.type} ${response.problem.detail ?? ''}` : response.text.slice(0, 500)}`);
    this.name = 'AcmeResponseError';
  }
}

/** The JSON of a 2xx response (or of one of `statuses`); throws AcmeResponseError otherwise. */
export function assertOk<T>(res: AcmeResponse<T>, what = 'ACME request', statuses?: number[]): T {
  const ok = statuses ? statuses.includes(res.status) : res.status >= 200 && res.status < 300;
  if (!ok) throw new AcmeResponseError(res, what);
  return res.json as T;
}

function parseLinks(values: string[], base: string): Array<{ url: string; rel: string }> {
  const out: Array<{ url: string; rel: string }> = [];
  for (const v of values) {
    for (const m of v.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]+)*)/g)) {
      const rel = /rel\s*=\s*"?([^";,]+)"?/i.exec(m[2]!)?.[1];
      for (const r of (rel ?? '').split(/\s+/).filter(Boolean)) out.push({ url: new URL(m[1]!, base).toString(), rel: r });
    }
  }
  return out;
}

function parseRetryAfter(v: string | undefined, nowMs: number): number | undefined {
  if (v === undefined) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, (t - nowMs) / 1000);
}

// ---- the client -------------------------------------------------------------------------

/** How a request misbehaves (or just deviates from the client's defaults). */
export interface PostOptions extends SignOptions {
  /** Sign with this key instead of the account key. */
  key?: AcmeKey;
  /** `kid` (the account URL) or `jwk`; default kid once the client has an account. 'both' and 'none' are for negative tests. */
  auth?: 'kid' | 'jwk' | 'both' | 'none';
  /** Protected `alg` override; null omits the member. */
  alg?: string | null;
  /** Protected `nonce` override (e.g. a used one); null omits it and fetches none. */
  nonce?: string | null;
  /** Protected `url` override; null omits it. */
  url?: string | null;
  /** `kid` value override (with auth kid or both). */
  kid?: string;
  /** `jwk` value override (with auth jwk or both). */
  jwk?: Record<string, unknown>;
  /** Extra protected members; they override the computed ones. */
  extra?: Record<string, unknown>;
  /** Raw HTTP body: no JWS is built at all. */
  body?: string | Buffer;
  /** Content-Type of the POST; default application/jose+json. */
  contentType?: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Retries when the server answers badNonce (with the nonce it sent); default the client's setting. */
  badNonceRetries?: number;
}

export interface AcmeClientOptions {
  /** The directory URL; nothing else is configured (RFC 8555 §7.1.1). */
  directoryUrl: string;
  /** CA certificate(s), PEM, trusted for the server's HTTPS. */
  caPem?: string | Buffer;
  /** The account key; default a fresh ES256 key. */
  key?: AcmeKey;
  /** Known account URL (kid) for an existing account. */
  accountUrl?: string;
  /** Retries on badNonce for requests whose nonce the client chose (default 0: tests see every badNonce). */
  badNonceRetries?: number;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
  /** HTTP keep-alive; default true (close() ends the sockets). */
  keepAlive?: boolean;
  userAgent?: string;
  /**
   * Connect to this origin (a proxy or balancer in front of the server)
   * for every request, while URLs and Host stay those the server handed
   * out, as `curl --connect-to` does.
   */
  connectTo?: string;
}

export interface NewAccountOptions {
  contact?: string[];
  termsOfServiceAgreed?: boolean;
  onlyReturnExisting?: boolean;
  /** External account binding (RFC 8555 §7.3.4): an HS256 JWS over the account JWK. */
  eab?: ExternalAccountBinding;
  /** Replace the whole payload (after the members above are set). */
  payload?: Record<string, unknown>;
}

export interface ExternalAccountBinding {
  kid: string;
  /** The MAC key: base64url text as `trellis acme eab create` shows it, or the raw bytes. */
  hmacKey: string | Buffer;
  /** Misbehaviour: protected alg (default HS256), url (default newAccount), extra members, another JWK as payload, a tampered MAC, a nonce (forbidden). */
  alg?: string;
  url?: string;
  nonce?: string;
  extra?: Record<string, unknown>;
  payloadJwk?: Record<string, unknown>;
  tamperSignature?: boolean;
}

export interface KeyChangeOptions {
  /** Misbehaviour of the inner JWS (RFC 8555 §7.3.5): header overrides, its payload, which key signs it. */
  inner?: {
    alg?: string | null;
    url?: string | null;
    jwk?: Record<string, unknown> | null;
    nonce?: string;
    kid?: string;
    extra?: Record<string, unknown>;
    payload?: Record<string, unknown>;
    signWith?: AcmeKey;
    tamperSignature?: boolean;
  };
  outer?: PostOptions;
}

export interface NewOrderOptions {
  identifiers: Array<AcmeIdentifier | string>;
  notBefore?: Date | string;
  notAfter?: Date | string;
  /** RFC 9773 §5: the certificate id of the certificate this order replaces. */
  replaces?: string;
  /** Extra payload members. */
  extra?: Record<string, unknown>;
}

export interface PollOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  /** Never poll faster than this (default 50 ms); a Retry-After above it is honoured. */
  minIntervalMs?: number;
  /** Never wait longer than this between polls even if Retry-After says so (default 10 s). */
  maxIntervalMs?: number;
}

/** The chain from a certificate URL. */
export interface DownloadedCertificate {
  response: AcmeResponse;
  pem: string;
  /** The PEM blocks, leaf first. */
  chain: string[];
  leafDer: Buffer;
  /** Link rel="alternate" URLs (RFC 8555 §7.4.2). */
  alternates: string[];
}

/** "x.example" → dns identifier; a literal IPv4/IPv6 address → ip identifier (RFC 8738). */
export function identifier(value: AcmeIdentifier | string): AcmeIdentifier {
  if (typeof value !== 'string') return value;
  return { type: /^[\d.]+$/.test(value) || value.includes(':') ? 'ip' : 'dns', value };
}

function isoOf(d: Date | string): string {
  return typeof d === 'string' ? d : d.toISOString();
}

/**
 * An RFC 8555 client session: one directory, one account key. Keeps a pool
 * of the nonces the server handed out; `newNonce()` fetches one explicitly
 * for replay tests.
 */
export class AcmeClient {
  directory!: AcmeDirectory;
  key: AcmeKey;
  accountUrl: string | undefined;
  readonly directoryUrl: string;
  private readonly agent: http.Agent;
  private readonly nonces: string[] = [];
  private readonly timeoutMs: number;
  private readonly badNonceRetries: number;
  private readonly userAgent: string;
  private readonly caPem: string | Buffer | undefined;
  private readonly connectTo: URL | undefined;

  private constructor(opts: AcmeClientOptions) {
    this.caPem = opts.caPem;
    this.connectTo = opts.connectTo ? new URL(opts.connectTo) : undefined;
    this.directoryUrl = opts.directoryUrl;
    this.key = opts.key ?? generateAcmeKey('ES256');
    this.accountUrl = opts.accountUrl;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.badNonceRetries = opts.badNonceRetries ?? 0;
    this.userAgent = opts.userAgent ?? 'trellis-test-acme-client';
    const keepAlive = opts.keepAlive ?? true;
    this.agent = (opts.connectTo ?? opts.directoryUrl).startsWith('https:') ? new https.Agent({ keepAlive, ...(opts.caPem ? { ca: opts.caPem } : {}) }) : new http.Agent({ keepAlive });
  }

  /** Fetches the directory and returns a client for it. */
  static async create(opts: AcmeClientOptions): Promise<AcmeClient> {
    const c = new AcmeClient(opts);
    c.directory = assertOk(await c.get<AcmeDirectory>(opts.directoryUrl), 'GET directory');
    return c;
  }

  /** A second client on the same directory and trust (another account key, say). */
  async fork(opts: Partial<Omit<AcmeClientOptions, 'directoryUrl'>> = {}): Promise<AcmeClient> {
    const c = new AcmeClient({ directoryUrl: this.directoryUrl, timeoutMs: this.timeoutMs, badNonceRetries: this.badNonceRetries, userAgent: this.userAgent, ...(this.caPem ? { caPem: this.caPem } : {}), ...(this.connectTo ? { connectTo: this.connectTo.origin } : {}), ...opts });
    c.directory = this.directory;
    return c;
  }

  /** Ends keep-alive sockets. */
  close(): void {
    this.agent.destroy();
  }

  // ---- transport ----

  /** One HTTP request; never throws on an HTTP status. */
  async request<T = any>(method: string, url: string, opts: { body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<AcmeResponse<T>> {
    const u = new URL(url);
    const to = this.connectTo ?? u;
    const mod = to.protocol === 'https:' ? https : http;
    const headers: Record<string, string | number> = { 'user-agent': this.userAgent, ...(this.connectTo ? { host: u.host } : {}), ...opts.headers };
    if (opts.body !== undefined) headers['content-length'] = Buffer.byteLength(opts.body);
    const raw = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; rawHeaders: string[]; body: Buffer }>((resolve, reject) => {
      const target = this.connectTo ? new URL(u.pathname + u.search, this.connectTo) : u;
      const req = mod.request(target, { method, headers, agent: this.agent, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(opts.body);
    });
    const text = raw.body.toString('utf8');
    const contentType = raw.headers['content-type'];
    let json: T | undefined;
    if (contentType && /json/i.test(contentType) && text.length) {
      try {
        json = JSON.parse(text) as T;
      } catch (err) {
        throw new Error(`${method} ${url}: Content-Type ${contentType} but the body is not JSON: ${text.slice(0, 200)}`, { cause: err });
      }
    }
    const nonce = raw.headers['replay-nonce'] as string | undefined;
    if (nonce) this.nonces.push(nonce);
    const linkValues: string[] = [];
    for (let i = 0; i < raw.rawHeaders.length; i += 2) if (raw.rawHeaders[i]!.toLowerCase() === 'link') linkValues.push(raw.rawHeaders[i + 1]!);
    const location = raw.headers.location;
    return {
      status: raw.status,
      headers: raw.headers,
      body: raw.body,
      text,
      json,
      problem: contentType?.startsWith('application/problem+json') ? (json as AcmeProblem | undefined) : undefined,
      contentType,
      location: location ? new URL(location, url).toString() : undefined,
      nonce,
      retryAfterSeconds: parseRetryAfter(raw.headers['retry-after'] as string | undefined, Date.now()),
      links: parseLinks(linkValues, url),
      request: { method, url, ...(typeof opts.body === 'string' ? { body: opts.body } : {}) },
    };
  }

  /** Unauthenticated GET (directory, renewalInfo, or a test of what GET is refused on). */
  get<T = any>(url: string, headers?: Record<string, string>): Promise<AcmeResponse<T>> {
    return this.request<T>('GET', url, headers ? { headers } : {});
  }

  /** A fresh nonce from newNonce (HEAD by default; RFC 8555 §7.2 allows GET too). */
  async newNonce(method: 'HEAD' | 'GET' = 'HEAD'): Promise<string> {
    const res = await this.newNonceResponse(method);
    if (!res.nonce) throw new AcmeResponseError(res, `${method} newNonce gave no Replay-Nonce`);
    this.nonces.splice(this.nonces.indexOf(res.nonce), 1);
    return res.nonce;
  }

  /** The raw newNonce response (status 200 for HEAD, 204 for GET; Cache-Control: no-store). */
  newNonceResponse(method: 'HEAD' | 'GET' = 'HEAD'): Promise<AcmeResponse> {
    return this.request(method, this.directory.newNonce);
  }

  private async takeNonce(): Promise<string> {
    return this.nonces.shift() ?? (await this.newNonce());
  }

  /** The protected header the client would send to `url` (before overrides). */
  private async protectedFor(url: string, opts: PostOptions, key: AcmeKey): Promise<Record<string, unknown>> {
    const h: Record<string, unknown> = {};
    if (opts.alg !== null) h.alg = opts.alg ?? key.alg;
    const auth = opts.auth ?? (this.accountUrl && !opts.key ? 'kid' : 'jwk');
    if (auth === 'jwk' || auth === 'both') h.jwk = opts.jwk ?? key.jwk;
    if (auth === 'kid' || auth === 'both') {
      const kid = opts.kid ?? this.accountUrl;
      if (!kid) throw new Error('no account URL for kid: create or find the account first, or pass kid');
      h.kid = kid;
    }
    if (opts.nonce !== null) h.nonce = opts.nonce ?? (await this.takeNonce());
    if (opts.url !== null) h.url = opts.url ?? url;
    return { ...h, ...opts.extra };
  }

  /**
   * A JWS POST of `payload` to `url` (undefined payload: POST-as-GET).
   * Retries on badNonce only when the client chose the nonce and retries are on.
   */
  async post<T = any>(url: string, payload: unknown, opts: PostOptions = {}): Promise<AcmeResponse<T>> {
    const headers = { 'content-type': opts.contentType ?? 'application/jose+json', ...opts.headers };
    if (opts.body !== undefined) return this.request<T>('POST', url, { body: opts.body, headers });
    const retries = opts.nonce === undefined ? (opts.badNonceRetries ?? this.badNonceRetries) : 0;
    for (let attempt = 0; ; attempt++) {
      const key = opts.key ?? this.key;
      const jws = signJws(key, await this.protectedFor(url, opts, key), payload, opts);
      const res = await this.request<T>('POST', url, { body: JSON.stringify(jws), headers });
      if (attempt < retries && res.problem?.type === 'urn:ietf:params:acme:error:badNonce') continue;
      return res;
    }
  }

  /** POST-as-GET (RFC 8555 §6.3): signed, empty payload. */
  postAsGet<T = any>(url: string, opts: PostOptions = {}): Promise<AcmeResponse<T>> {
    return this.post<T>(url, undefined, opts);
  }

  // ---- accounts ----

  /** newAccount (RFC 8555 §7.3); on 200/201 the client remembers the account URL. */
  async newAccount(opts: NewAccountOptions = {}, post: PostOptions = {}): Promise<AcmeResponse<AcmeAccount>> {
    let payload: Record<string, unknown> = {};
    if (opts.contact) payload.contact = opts.contact;
    if (opts.termsOfServiceAgreed !== undefined) payload.termsOfServiceAgreed = opts.termsOfServiceAgreed;
    if (opts.onlyReturnExisting !== undefined) payload.onlyReturnExisting = opts.onlyReturnExisting;
    const key = post.key ?? this.key;
    if (opts.eab) payload.externalAccountBinding = this.externalAccountBinding(opts.eab, key);
    if (opts.payload) payload = { ...payload, ...opts.payload };
    const res = await this.post<AcmeAccount>(this.directory.newAccount, payload, { auth: 'jwk', ...post });
    if ((res.status === 200 || res.status === 201) && res.location && !post.key) this.accountUrl = res.location;
    return res;
  }

  /** The externalAccountBinding member: a JWS over the account JWK, MACed with the EAB key (RFC 8555 §7.3.4). */
  externalAccountBinding(eab: ExternalAccountBinding, accountKey: AcmeKey = this.key): FlattenedJws {
    const hmac = typeof eab.hmacKey === 'string' ? Buffer.from(eab.hmacKey, 'base64url') : eab.hmacKey;
    const header: Record<string, unknown> = { alg: eab.alg ?? 'HS256', kid: eab.kid, url: eab.url ?? this.directory.newAccount, ...(eab.nonce ? { nonce: eab.nonce } : {}), ...eab.extra };
    return signJws({ hmac }, header, eab.payloadJwk ?? accountKey.jwk, eab.tamperSignature ? { tamperSignature: true } : {});
  }

  /** Looks up the account of this key (onlyReturnExisting) and remembers its URL. */
  findAccount(post: PostOptions = {}): Promise<AcmeResponse<AcmeAccount>> {
    return this.newAccount({ onlyReturnExisting: true }, post);
  }

  /** POST to the account URL with `changes` (contact, status, …); `{}` or undefined payload reads it. */
  updateAccount(changes: Record<string, unknown> | undefined, post: PostOptions = {}): Promise<AcmeResponse<AcmeAccount>> {
    return this.post<AcmeAccount>(this.requireAccount(), changes, post);
  }

  /** Account deactivation (RFC 8555 §7.3.6). */
  deactivateAccount(post: PostOptions = {}): Promise<AcmeResponse<AcmeAccount>> {
    return this.updateAccount({ status: 'deactivated' }, post);
  }

  /**
   * Account key rollover (RFC 8555 §7.3.5): the inner JWS, signed by the new
   * key, carries {account, oldKey}; the outer is signed by the current key.
   * On 200 the client switches to `newKey`.
   */
  async keyChange(newKey: AcmeKey, opts: KeyChangeOptions = {}): Promise<AcmeResponse> {
    const url = this.directory.keyChange;
    const i = opts.inner ?? {};
    const header: Record<string, unknown> = {};
    if (i.alg !== null) header.alg = i.alg ?? (i.signWith ?? newKey).alg;
    if (i.jwk !== null) header.jwk = i.jwk ?? newKey.jwk;
    if (i.url !== null) header.url = i.url ?? url;
    if (i.nonce) header.nonce = i.nonce;
    if (i.kid) header.kid = i.kid;
    Object.assign(header, i.extra);
    const inner = signJws(i.signWith ?? newKey, header, i.payload ?? { account: this.requireAccount(), oldKey: this.key.jwk }, i.tamperSignature ? { tamperSignature: true } : {});
    const res = await this.post(url, inner, opts.outer ?? {});
    if (res.status === 200) this.key = newKey;
    return res;
  }

  private requireAccount(): string {
    if (!this.accountUrl) throw new Error('no account: call newAccount() first');
    return this.accountUrl;
  }

  // ---- orders ----

  /** newOrder (RFC 8555 §7.4); strings become dns or ip identifiers. */
  newOrder(opts: NewOrderOptions, post: PostOptions = {}): Promise<AcmeResponse<AcmeOrder>> {
    const payload: Record<string, unknown> = { identifiers: opts.identifiers.map(identifier) };
    if (opts.notBefore) payload.notBefore = isoOf(opts.notBefore);
    if (opts.notAfter) payload.notAfter = isoOf(opts.notAfter);
    if (opts.replaces) payload.replaces = opts.replaces;
    Object.assign(payload, opts.extra);
    return this.post<AcmeOrder>(this.directory.newOrder, payload, post);
  }

  getOrder(url: string, post: PostOptions = {}): Promise<AcmeResponse<AcmeOrder>> {
    return this.postAsGet<AcmeOrder>(url, post);
  }

  getAuthorization(url: string, post: PostOptions = {}): Promise<AcmeResponse<AcmeAuthorization>> {
    return this.postAsGet<AcmeAuthorization>(url, post);
  }

  /** Every authorization of an order, in order. */
  async getAuthorizations(order: AcmeOrder, post: PostOptions = {}): Promise<AcmeAuthorization[]> {
    const out: AcmeAuthorization[] = [];
    for (const url of order.authorizations) out.push(assertOk(await this.getAuthorization(url, post), `GET authorization ${url}`));
    return out;
  }

  /** Tells the server the challenge is ready (RFC 8555 §7.5.1): POST `{}`. */
  respondToChallenge(url: string, payload: unknown = {}, post: PostOptions = {}): Promise<AcmeResponse<AcmeChallenge>> {
    return this.post<AcmeChallenge>(url, payload, post);
  }

  getChallenge(url: string, post: PostOptions = {}): Promise<AcmeResponse<AcmeChallenge>> {
    return this.postAsGet<AcmeChallenge>(url, post);
  }

  /** Authorization deactivation (RFC 8555 §7.5.2). */
  deactivateAuthorization(url: string, post: PostOptions = {}): Promise<AcmeResponse<AcmeAuthorization>> {
    return this.post<AcmeAuthorization>(url, { status: 'deactivated' }, post);
  }

  /** Polls with POST-as-GET until `done(json)`, honouring Retry-After within [min, max] interval. */
  async poll<T>(url: string, done: (v: T) => boolean, opts: PollOptions = {}): Promise<AcmeResponse<T>> {
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    const min = opts.minIntervalMs ?? 50;
    const max = opts.maxIntervalMs ?? 10_000;
    for (;;) {
      const res = await this.postAsGet<T>(url);
      if (res.status !== 200 || (res.json !== undefined && done(res.json))) return res;
      const waitMs = Math.min(max, Math.max(min, (res.retryAfterSeconds ?? 0) * 1000));
      if (Date.now() + waitMs > deadline) throw new AcmeResponseError(res, `still not done after ${opts.timeoutMs ?? 30_000} ms`);
      await sleep(waitMs);
    }
  }

  /** Polls an authorization until it leaves pending. */
  pollAuthorization(url: string, opts?: PollOptions): Promise<AcmeResponse<AcmeAuthorization>> {
    return this.poll<AcmeAuthorization>(url, (a) => a.status !== 'pending', opts);
  }

  /** Polls an order until it is no longer pending or processing (ready, valid or invalid). */
  pollOrder(url: string, opts?: PollOptions & { until?: Array<AcmeOrder['status']> }): Promise<AcmeResponse<AcmeOrder>> {
    const until = opts?.until ?? ['ready', 'valid', 'invalid'];
    return this.poll<AcmeOrder>(url, (o) => until.includes(o.status), opts);
  }

  /** finalize (RFC 8555 §7.4) with a DER CSR. */
  finalize(finalizeUrl: string, csrDer: Buffer, post: PostOptions = {}): Promise<AcmeResponse<AcmeOrder>> {
    return this.post<AcmeOrder>(finalizeUrl, { csr: b64u(csrDer) }, post);
  }

  /** Downloads the PEM chain (POST-as-GET, Accept application/pem-certificate-chain) and its alternates. */
  async downloadCertificate(url: string, post: PostOptions = {}): Promise<DownloadedCertificate> {
    const response = await this.postAsGet(url, { ...post, headers: { accept: 'application/pem-certificate-chain', ...post.headers } });
    assertOk(response, `download certificate ${url}`);
    const chain = splitPemChain(response.text);
    if (!chain.length) throw new AcmeResponseError(response, 'certificate download has no PEM certificate');
    return { response, pem: response.text, chain, leafDer: pemToDer(chain[0]!), alternates: linksOf(response, 'alternate') };
  }

  /**
   * revokeCert (RFC 8555 §7.6): signed by the account (kid) or, with
   * `certKey`, by the certificate's own key (jwk).
   */
  revokeCert(cert: Buffer | string, opts: { reason?: number; certKey?: AcmeKey } = {}, post: PostOptions = {}): Promise<AcmeResponse> {
    const payload: Record<string, unknown> = { certificate: b64u(pemToDer(cert)) };
    if (opts.reason !== undefined) payload.reason = opts.reason;
    return this.post(this.directory.revokeCert, payload, opts.certKey ? { key: opts.certKey, auth: 'jwk', ...post } : post);
  }

  /** RFC 9773 renewalInfo: unauthenticated GET of `{renewalInfo}/{certificate id}`. */
  renewalInfo(certOrId: Buffer | string): Promise<AcmeResponse<AcmeRenewalInfo>> {
    if (!this.directory.renewalInfo) throw new Error('the directory has no renewalInfo');
    const id = typeof certOrId === 'string' && !certOrId.includes('-----BEGIN') ? certOrId : ariCertId(certOrId);
    return this.get<AcmeRenewalInfo>(`${this.directory.renewalInfo.replace(/\/$/, '')}/${id}`);
  }

  // ---- the whole flow ----

  /**
   * new order → authorizations → challenge of `challengeType` answered by
   * `respond` → poll → finalize with `csr` (default a fresh P-256 CSR for the
   * identifiers) → poll → download. Throws AcmeResponseError on any failure.
   */
  async obtainCertificate(opts: {
    identifiers: Array<AcmeIdentifier | string>;
    challengeType: 'http-01' | 'tls-alpn-01' | string;
    /** Makes the key authorization available to the server (e.g. `responder.set`). */
    respond: (authz: AcmeAuthorization, challenge: AcmeChallenge, keyAuthorization: string) => void | Promise<void>;
    csr?: { csrDer: Buffer; privateKey?: KeyObject };
    order?: Omit<NewOrderOptions, 'identifiers'>;
    poll?: PollOptions;
  }): Promise<{ order: AcmeOrder; orderUrl: string; certificate: DownloadedCertificate; privateKey: KeyObject | undefined }> {
    const orderRes = await this.newOrder({ identifiers: opts.identifiers, ...opts.order });
    let order = assertOk(orderRes, 'newOrder', [201]);
    const orderUrl = orderRes.location;
    if (!orderUrl) throw new AcmeResponseError(orderRes, 'newOrder without Location');
    for (const url of order.authorizations) {
      const authz = assertOk(await this.getAuthorization(url), 'GET authorization');
      if (authz.status === 'valid') continue;
      const ch = authz.challenges.find((c) => c.type === opts.challengeType);
      if (!ch) throw new Error(`authorization ${url} offers no ${opts.challengeType}: ${authz.challenges.map((c) => c.type).join(', ')}`);
      await opts.respond(authz, ch, keyAuthorization(ch.token, this.key));
      const chRes = await this.respondToChallenge(ch.url);
      const chJson = assertOk(chRes, 'respond to challenge');
      if (chJson.status === 'invalid') throw new AcmeResponseError(chRes, 'challenge invalid');
      if (chJson.status !== 'valid') {
        if (chRes.retryAfterSeconds !== undefined) await sleep(Math.min(10_000, chRes.retryAfterSeconds * 1000));
        const done = assertOk(await this.pollAuthorization(url, opts.poll), 'poll authorization');
        if (done.status !== 'valid') throw new Error(`authorization ${url} ended ${done.status}: ${JSON.stringify(done.challenges.map((c) => c.error ?? null))}`);
      }
    }
    if (order.status === 'pending') order = assertOk(await this.pollOrder(orderUrl, opts.poll), 'poll order to ready');
    if (order.status !== 'ready') throw new Error(`order ${orderUrl} is ${order.status}, not ready: ${JSON.stringify(order.error ?? null)}`);
    const csr = opts.csr ?? buildCsr({ identifiers: opts.identifiers });
    const finRes = await this.finalize(order.finalize, csr.csrDer);
    order = assertOk(finRes, 'finalize');
    if (order.status === 'processing') order = assertOk(await this.pollOrder(orderUrl, opts.poll), 'poll order to valid');
    if (order.status !== 'valid' || !order.certificate) throw new Error(`order ${orderUrl} is ${order.status} after finalize: ${JSON.stringify(order.error ?? null)}`);
    const certificate = await this.downloadCertificate(order.certificate);
    return { order, orderUrl, certificate, privateKey: csr.privateKey };
  }
}

// ---- CSRs --------------------------------------------------------------------------

const oids = {
  commonName: '2.5.4.3',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
  authorityKeyIdentifier: '2.5.29.35',
  acmeIdentifier: '1.3.6.1.5.5.7.1.31',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  ed25519: '1.3.101.112',
};

/** AlgorithmIdentifier and hash for signing with `key` (RFC 5758 §3.2, RFC 4055, RFC 8410). */
function signatureAlgorithmFor(key: KeyObject): { algId: Buffer; hash: string | null } {
  const t = key.asymmetricKeyType;
  if (t === 'ed25519') return { algId: der.seq(der.oid(oids.ed25519)), hash: null };
  if (t === 'rsa') return { algId: der.seq(der.oid(oids.sha256WithRsa), der.null()), hash: 'sha256' };
  if (t === 'ec') {
    const p384 = key.asymmetricKeyDetails?.namedCurve === 'secp384r1';
    return { algId: der.seq(der.oid(p384 ? oids.ecdsaWithSha384 : oids.ecdsaWithSha256)), hash: p384 ? 'sha384' : 'sha256' };
  }
  throw new Error(`no signature algorithm for key type ${t}`);
}

/** IPv4 or IPv6 text → 4 or 16 bytes. */
export function ipBytes(text: string): Buffer {
  if (!text.includes(':')) {
    const parts = text.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${text}`);
    return Buffer.from(parts);
  }
  let s = text;
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    tail = [...ipBytes(v4[1]!)];
    s = `${s.slice(0, -v4[1]!.length)}0:0`;
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill('0'), ...r];
  if (groups.length !== 8) throw new Error(`not an IPv6 address: ${text}`);
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (tail.length) Buffer.from(tail).copy(out, 12);
  return out;
}

/** GeneralNames for dns (dNSName [2]) and ip (iPAddress [7]) identifiers. */
function generalNames(ids: AcmeIdentifier[]): Buffer {
  return der.seq(...ids.map((id) => (id.type === 'ip' ? tlv(0x87, ipBytes(id.value)) : tlv(0x82, Buffer.from(id.value, 'ascii')))));
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return der.seq(der.oid(oid), ...(critical ? [der.bool(true)] : []), der.octets(value));
}

export type CsrKeyType = 'p256' | 'p384' | 'rsa2048' | 'ed25519';

/** A fresh private key of `type`. */
export function generateKey(type: CsrKeyType = 'p256'): KeyObject {
  switch (type) {
    case 'p256':
      return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'p384':
      return crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    case 'rsa2048':
      return crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    case 'ed25519':
      return crypto.generateKeyPairSync('ed25519').privateKey;
  }
}

export interface CsrOptions {
  /** SAN entries; strings become dns or ip identifiers. */
  identifiers: Array<AcmeIdentifier | string>;
  /** The key (or a type for a fresh one; default p256). */
  key?: KeyObject | CsrKeyType;
  /** Subject CN; default none (RFC 8555 §7.4 puts names in the SAN). */
  commonName?: string;
  /** Extra DER-encoded Extension elements for the extensionRequest. */
  extraExtensions?: Buffer[];
  /** Flip a bit in the signature (badCSR tests). */
  tamperSignature?: boolean;
}

/**
 * A PKCS#10 CSR in DER, built by hand (RFC 2986 §4):
 *
 *   CertificationRequestInfo ::= SEQUENCE { version INTEGER { v1(0) }, subject Name,
 *     subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT SET OF Attribute }
 *   CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
 */
export function buildCsr(opts: CsrOptions): { csrDer: Buffer; csrPem: string; privateKey: KeyObject; keyPem: string } {
  const privateKey = opts.key === undefined || typeof opts.key === 'string' ? generateKey(opts.key) : opts.key;
  const publicKey = crypto.createPublicKey(privateKey);
  const ids = opts.identifiers.map(identifier);
  const subject = opts.commonName ? der.seq(der.set(der.seq(der.oid(oids.commonName), der.utf8(opts.commonName)))) : der.seq();
  const exts = [...(ids.length ? [extension(oids.subjectAltName, false, generalNames(ids))] : []), ...(opts.extraExtensions ?? [])];
  const attributes = tlv(0xa0, ...(exts.length ? [der.seq(der.oid(oids.extensionRequest), der.set(der.seq(...exts)))] : []));
  const info = der.seq(der.uint(0), subject, publicKey.export({ type: 'spki', format: 'der' }), attributes);
  const { algId, hash } = signatureAlgorithmFor(privateKey);
  const sig = Buffer.from(crypto.sign(hash, info, privateKey));
  if (opts.tamperSignature) sig[sig.length >> 1] ^= 0x01;
  const csrDer = der.seq(info, algId, der.bits(sig));
  return { csrDer, csrPem: derToPem('CERTIFICATE REQUEST', csrDer), privateKey, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

// ---- certificate fields, RFC 9773 id ---------------------------------------------------

/** Serial (DER content octets) and AKI keyIdentifier of a certificate. */
export function certificateIds(cert: Buffer | string): { serialDer: Buffer; akiKeyId: Buffer | undefined } {
  const d = pemToDer(cert);
  const top = readTlv(d, 0);
  const tbs = readTlv(d, top.start);
  const fields = childrenOf(d, tbs);
  let i = 0;
  if (fields[0]!.tag === 0xa0) i++; // [0] EXPLICIT version
  const serial = fields[i]!;
  let akiKeyId: Buffer | undefined;
  const extsField = fields.find((f) => f.tag === 0xa3);
  if (extsField) {
    const exts = readTlv(d, extsField.start);
    for (const ext of childrenOf(d, exts)) {
      const parts = childrenOf(d, ext);
      if (oidText(d, parts[0]!) !== oids.authorityKeyIdentifier) continue;
      const value = parts[parts.length - 1]!; // OCTET STRING
      const aki = readTlv(d, value.start); // AuthorityKeyIdentifier SEQUENCE
      const keyId = childrenOf(d, aki).find((c) => c.tag === 0x80); // [0] IMPLICIT KeyIdentifier
      if (keyId) akiKeyId = Buffer.from(d.subarray(keyId.start, keyId.end));
    }
  }
  return { serialDer: Buffer.from(d.subarray(serial.start, serial.end)), akiKeyId };
}

/** RFC 9773 §4.1 certificate id: base64url(AKI keyIdentifier) "." base64url(serial DER content octets). */
export function ariCertId(cert: Buffer | string): string {
  const { serialDer, akiKeyId } = certificateIds(cert);
  if (!akiKeyId) throw new Error('certificate has no authorityKeyIdentifier keyIdentifier');
  return `${b64u(akiKeyId)}.${b64u(serialDer)}`;
}

// ---- challenge responders ----------------------------------------------------------------

export interface Http01Responder {
  host: string;
  port: number;
  /** Serves `keyAuthorization` (or a custom answer) at /.well-known/acme-challenge/{token}. */
  set(token: string, answer: string | { status?: number; body?: string | Buffer; headers?: Record<string, string>; redirect?: string; delayMs?: number }): void;
  delete(token: string): void;
  /** Every request seen (path and Host header), for assertions on what the validator fetched. */
  requests: Array<{ path: string; host: string | undefined; method: string }>;
  close(): Promise<void>;
}

/** An http-01 responder (RFC 8555 §8.3) on `host:port` (port 0: the kernel picks). */
export async function startHttp01Responder(opts: { host?: string; port?: number } = {}): Promise<Http01Responder> {
  const host = opts.host ?? '127.0.0.1';
  const answers = new Map<string, Parameters<Http01Responder['set']>[1]>();
  const requests: Http01Responder['requests'] = [];
  const prefix = '/.well-known/acme-challenge/';
  const server = http.createServer((req, res) => {
    const p = req.url ?? '';
    requests.push({ path: p, host: req.headers.host, method: req.method ?? '' });
    const a = p.startsWith(prefix) ? answers.get(p.slice(prefix.length)) : undefined;
    if (a === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such token\n');
      return;
    }
    if (typeof a === 'string') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(a);
      return;
    }
    if (a.redirect) {
      res.writeHead(a.status ?? 302, { location: a.redirect, ...a.headers }).end();
      return;
    }
    const answer = () => res.writeHead(a.status ?? 200, { 'content-type': 'application/octet-stream', ...a.headers }).end(a.body ?? '');
    if (a.delayMs) setTimeout(answer, a.delayMs);
    else answer();
  });
  await listenOn(server, host, opts.port ?? 0);
  const sockets = trackSockets(server);
  return {
    host,
    port: (server.address() as AddressInfo).port,
    set: (token, answer) => void answers.set(token, answer),
    delete: (token) => void answers.delete(token),
    requests,
    close: () => closeServer(server, sockets),
  };
}

export interface TlsAlpnMisbehaviour {
  /** The acmeIdentifier extension is critical unless false (RFC 8737 §3 requires critical). */
  critical?: boolean;
  /** Replace the SHA-256 digest of the key authorization. */
  digest?: Buffer;
  /** Leave the acmeIdentifier extension out. */
  omitAcmeIdentifier?: boolean;
  /** SAN entries instead of the identifier itself. */
  san?: Array<AcmeIdentifier | string>;
}

export interface TlsAlpn01Responder {
  host: string;
  port: number;
  /** Answers the handshake for `id` (SNI: the name, or the reverse-DNS name of an IP, RFC 8738 §6) with an RFC 8737 certificate. */
  set(id: AcmeIdentifier | string, keyAuthorization: string, misbehave?: TlsAlpnMisbehaviour): void;
  delete(id: AcmeIdentifier | string): void;
  /** SNI names seen in handshakes. */
  serverNames: string[];
  close(): Promise<void>;
}

/** RFC 8738 §6: the SNI for an IP identifier is its reverse-DNS name. */
export function reverseDnsName(ip: string): string {
  const b = ipBytes(ip);
  if (b.length === 4) return `${[...b].reverse().join('.')}.in-addr.arpa`;
  return `${[...b.toString('hex')].reverse().join('.')}.ip6.arpa`;
}

function sniFor(id: AcmeIdentifier): string {
  return id.type === 'ip' ? reverseDnsName(id.value) : id.value.toLowerCase();
}

/**
 * A self-signed certificate for tls-alpn-01 (RFC 8737 §3): SAN the
 * identifier, critical id-pe-acmeIdentifier holding
 *
 *   Authorization ::= OCTET STRING (SIZE (32))   -- SHA-256 of the key authorization
 */
export function tlsAlpn01Certificate(id: AcmeIdentifier | string, keyAuth: string, misbehave: TlsAlpnMisbehaviour = {}): { certPem: string; keyPem: string; certDer: Buffer } {
  const ident = identifier(id);
  const privateKey = generateKey('p256');
  const publicKey = crypto.createPublicKey(privateKey);
  const digest = misbehave.digest ?? crypto.createHash('sha256').update(keyAuth).digest();
  const exts = [extension(oids.subjectAltName, false, generalNames((misbehave.san ?? [ident]).map(identifier)))];
  if (!misbehave.omitAcmeIdentifier) exts.push(extension(oids.acmeIdentifier, misbehave.critical !== false, der.octets(digest)));
  const { algId, hash } = signatureAlgorithmFor(privateKey);
  const name = der.seq(der.set(der.seq(der.oid(oids.commonName), der.utf8('acme tls-alpn-01 responder'))));
  const now = Date.now();
  const tbs = der.seq(
    der.explicit(0, der.uint(2)),
    der.uint(Buffer.concat([Buffer.from([0x01]), crypto.randomBytes(15)])),
    algId,
    name,
    der.seq(der.time(new Date(now - 3600_000)), der.time(new Date(now + 7 * 86400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    der.explicit(3, der.seq(...exts)),
  );
  const certDer = der.seq(tbs, algId, der.bits(crypto.sign(hash, tbs, privateKey)));
  return { certDer, certPem: derToPem('CERTIFICATE', certDer), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** A tls-alpn-01 responder (RFC 8737) on `host:port`, offering only ALPN `acme-tls/1` unless told otherwise. */
export async function startTlsAlpn01Responder(opts: { host?: string; port?: number; alpnProtocols?: string[] } = {}): Promise<TlsAlpn01Responder> {
  const host = opts.host ?? '127.0.0.1';
  const contexts = new Map<string, tls.SecureContext>();
  const serverNames: string[] = [];
  const fallback = tlsAlpn01Certificate('responder.invalid', 'none');
  const server = tls.createServer({
    key: fallback.keyPem,
    cert: fallback.certPem,
    ALPNProtocols: opts.alpnProtocols ?? ['acme-tls/1'],
    SNICallback: (name, cb) => {
      serverNames.push(name);
      cb(null, contexts.get(name.toLowerCase()));
    },
  });
  // The validator closes the connection once it has the certificate: that is no error here.
  server.on('tlsClientError', () => undefined);
  server.on('secureConnection', (s) => {
    s.on('error', () => undefined);
    s.end();
  });
  await listenOn(server, host, opts.port ?? 0);
  const sockets = trackSockets(server);
  return {
    host,
    port: (server.address() as AddressInfo).port,
    set(id, keyAuth, misbehave) {
      const ident = identifier(id);
      const c = tlsAlpn01Certificate(ident, keyAuth, misbehave);
      contexts.set(sniFor(ident), tls.createSecureContext({ key: c.keyPem, cert: c.certPem }));
    },
    delete: (id) => void contexts.delete(sniFor(identifier(id))),
    serverNames,
    close: () => closeServer(server, sockets),
  };
}

function listenOn(server: http.Server | tls.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function trackSockets(server: http.Server | tls.Server): Set<import('node:net').Socket> {
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s: import('node:net').Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return sockets;
}

function closeServer(server: http.Server | tls.Server, sockets: Set<import('node:net').Socket>): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
  });
}
