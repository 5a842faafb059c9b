/**
 * A lean RFC 8555 client for the ACME benchmark: ES256 accounts, keep-alive
 * HTTPS through one shared agent, the happy path only (new order →
 * authorization → challenge → finalize → download), every phase timed.
 * The protocol tests use test/helpers/acme-client.ts instead (TypeScript,
 * every misbehaviour); this one stays small so that the client costs little
 * CPU next to the server on a 2-core machine.
 *
 * Also: P-256 CSRs built in DER by hand (no openssl process per order).
 */
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';

const b64u = (buf) => Buffer.from(buf).toString('base64url');

// ---- DER, just enough for a CSR --------------------------------------------------

export function derLength(n) {
  if (n < 0x80) return Buffer.from([n]);
  const bytes = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
export const tlv = (tag, ...parts) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
};
export const seq = (...p) => tlv(0x30, ...p);
// 1.2.840.113549.1.9.14 extensionRequest, 2.5.29.17 subjectAltName, 1.2.840.10045.4.3.2 ecdsa-with-SHA256
const OID_EXTENSION_REQUEST = Buffer.from('06092a864886f70d01090e', 'hex');
const OID_SAN = Buffer.from('0603551d11', 'hex');
export const ALG_ECDSA_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex');

/**
 * A PKCS#10 CSR (RFC 2986) for `dnsNames` with a fresh P-256 key, empty
 * subject, the names in a subjectAltName extension request.
 */
export function p256Csr(dnsNames) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const san = seq(...dnsNames.map((n) => tlv(0x82, Buffer.from(n, 'ascii'))));
  const ext = seq(OID_SAN, tlv(0x04, san));
  const attrs = tlv(0xa0, seq(OID_EXTENSION_REQUEST, tlv(0x31, seq(ext))));
  const info = seq(Buffer.from([0x02, 0x01, 0x00]), seq(), publicKey.export({ type: 'spki', format: 'der' }), attrs);
  const sig = crypto.sign('sha256', info, privateKey);
  return seq(info, ALG_ECDSA_SHA256, tlv(0x03, Buffer.from([0]), sig));
}

// ---- transport ------------------------------------------------------------------

/**
 * One keep-alive agent for every client of a run. `pinLocalhost` answers
 * every name lookup with 127.0.0.1 (the server's TLS name can be localhost
 * while it listens on 127.0.0.1 only), on the next tick as dns.lookup does:
 * node:net expects the lookup callback to run asynchronously.
 */
export function makeAgent({ url, caPem, maxSockets = 256, pinLocalhost = false }) {
  const lookup = (host, opts, cb) => process.nextTick(() => (opts && opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)));
  const common = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, ...(pinLocalhost ? { lookup } : {}) };
  const agent = url.startsWith('https:') ? new https.Agent({ ...common, ca: caPem }) : new http.Agent(common);
  // Counted so that a run can tell how many connections (TLS handshakes) it paid for.
  agent.connectionsOpened = 0;
  const createConnection = agent.createConnection.bind(agent);
  agent.createConnection = (...args) => {
    agent.connectionsOpened++;
    return createConnection(...args);
  };
  return agent;
}

/**
 * One HTTP exchange, failed when it has not ended `timeoutMs` after the call.
 * The deadline covers getting a socket, connecting and the TLS handshake too:
 * req.setTimeout arms only once the socket has emitted 'connect'. One run
 * hung in account creation without any timeout firing: its two sockets had
 * been answered and closed by the server, the answers never read.
 */
function request(agent, method, url, { body, headers = {}, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, { method, agent, headers: body ? { ...headers, 'content-length': Buffer.byteLength(body) } : headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(deadline);
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('error', (err) => {
        clearTimeout(deadline);
        reject(err);
      });
    });
    const deadline = setTimeout(() => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms (socket ${req.socket ? (req.socket.connecting ? 'connecting' : 'connected') : 'not assigned'})`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(deadline);
      reject(err);
    });
    req.end(body);
  });
}

/** Retry-After in ms (delta-seconds or HTTP-date), or undefined. */
function retryAfterMs(headers) {
  const v = headers['retry-after'];
  if (v === undefined) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

/** An HTTP answer that is not what the flow expected; `phase` names the step. */
export class OrderError extends Error {
  constructor(phase, message) {
    super(`${phase}: ${message}`);
    this.name = 'OrderError';
    this.phase = phase;
  }
}

function describe(res) {
  const text = res.body.toString('utf8').slice(0, 300).replace(/\s+/g, ' ');
  return `HTTP ${res.status} ${text}`;
}

// ---- client ---------------------------------------------------------------------

/**
 * One ACME account with its own nonce chain (the nonce of each answer signs
 * the next request). `stats.badNonce` counts badNonce retries.
 */
export class BenchAcmeClient {
  constructor({ directoryUrl, agent, timeoutMs = 15_000, minPollMs = 10, maxPollMs = 5_000 }) {
    this.directoryUrl = directoryUrl;
    this.agent = agent;
    this.timeoutMs = timeoutMs;
    this.minPollMs = minPollMs;
    this.maxPollMs = maxPollMs;
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    const j = publicKey.export({ format: 'jwk' });
    this.jwk = { crv: j.crv, kty: j.kty, x: j.x, y: j.y };
    this.thumbprint = b64u(crypto.createHash('sha256').update(JSON.stringify(this.jwk)).digest());
    this.kid = undefined;
    this.nonce = undefined;
    this.stats = { badNonce: 0, polls: 0, requests: 0 };
  }

  async init() {
    const res = await request(this.agent, 'GET', this.directoryUrl, { timeoutMs: this.timeoutMs });
    if (res.status !== 200) throw new OrderError('directory', describe(res));
    this.directory = JSON.parse(res.body.toString('utf8'));
    if (!this.directory.newNonce || !this.directory.newOrder) throw new OrderError('directory', `not an ACME directory: ${res.body.toString('utf8').slice(0, 200)}`);
    return this;
  }

  async freshNonce() {
    const res = await request(this.agent, 'HEAD', this.directory.newNonce, { timeoutMs: this.timeoutMs });
    const n = res.headers['replay-nonce'];
    if (!n) throw new OrderError('newNonce', describe(res));
    return n;
  }

  /** A signed POST (payload undefined: POST-as-GET); retries badNonce with the nonce the error carried. */
  async post(phase, url, payload, accept) {
    for (let attempt = 0; ; attempt++) {
      const nonce = this.nonce ?? (await this.freshNonce());
      this.nonce = undefined;
      const header = this.kid ? { alg: 'ES256', kid: this.kid, nonce, url } : { alg: 'ES256', jwk: this.jwk, nonce, url };
      const p = b64u(JSON.stringify(header));
      const body = payload === undefined ? '' : b64u(JSON.stringify(payload));
      const sig = crypto.sign('sha256', Buffer.from(`${p}.${body}`), { key: this.privateKey, dsaEncoding: 'ieee-p1363' });
      const headers = { 'content-type': 'application/jose+json', ...(accept ? { accept } : {}) };
      this.stats.requests++;
      const res = await request(this.agent, 'POST', url, { body: JSON.stringify({ protected: p, payload: body, signature: b64u(sig) }), headers, timeoutMs: this.timeoutMs });
      if (res.headers['replay-nonce']) this.nonce = res.headers['replay-nonce'];
      const ct = res.headers['content-type'] ?? '';
      res.json = /json/.test(ct) && res.body.length ? JSON.parse(res.body.toString('utf8')) : undefined;
      if (res.status === 400 && res.json?.type === 'urn:ietf:params:acme:error:badNonce' && attempt < 5) {
        this.stats.badNonce++;
        continue;
      }
      return res;
    }
  }

  async newAccount() {
    const res = await this.post('newAccount', this.directory.newAccount, { termsOfServiceAgreed: true, contact: ['mailto:bench@example.com'] });
    if (res.status !== 201 && res.status !== 200) throw new OrderError('newAccount', describe(res));
    this.kid = res.headers.location;
    if (!this.kid) throw new OrderError('newAccount', 'no Location');
    return this;
  }

  /** Waits what Retry-After says (at least minPollMs, at most maxPollMs). */
  async pause(res) {
    const ra = retryAfterMs(res.headers);
    await sleep(Math.min(this.maxPollMs, Math.max(this.minPollMs, ra ?? 0)));
  }

  /** POST-as-GET `url` until `done(json)`, honouring Retry-After, within `deadline`. */
  async pollUntil(phase, url, done, deadline) {
    for (;;) {
      this.stats.polls++;
      const res = await this.post(phase, url, undefined);
      if (res.status !== 200) throw new OrderError(phase, describe(res));
      if (done(res.json)) return res.json;
      if (Date.now() > deadline) throw new OrderError(phase, `still ${res.json?.status} at the deadline`);
      await this.pause(res);
    }
  }

  /**
   * One complete order for `name` with `csrDer`; `time(phase, ms)` gets each
   * phase's latency. Resolves with the certificate chain PEM.
   */
  async completeOrder(name, csrDer, time) {
    const deadline = Date.now() + 60_000;
    let t = performance.now();
    const lap = (phase) => {
      const now = performance.now();
      time(phase, now - t);
      t = now;
    };

    const o = await this.post('newOrder', this.directory.newOrder, { identifiers: [{ type: 'dns', value: name }] });
    if (o.status !== 201) throw new OrderError('newOrder', describe(o));
    const orderUrl = o.headers.location;
    let order = o.json;
    lap('newOrder');

    for (const authzUrl of order.authorizations) {
      const a = await this.post('authz', authzUrl, undefined);
      if (a.status !== 200) throw new OrderError('authz', describe(a));
      lap('authz');
      if (a.json.status === 'valid') continue;
      const ch = a.json.challenges.find((c) => c.type === 'http-01') ?? a.json.challenges[0];
      if (!ch) throw new OrderError('challenge', 'authorization without challenges');
      const c = await this.post('challenge', ch.url, {});
      if (c.status !== 200) throw new OrderError('challenge', describe(c));
      if (c.json.status === 'invalid') throw new OrderError('challenge', `invalid: ${JSON.stringify(c.json.error)}`);
      if (c.json.status !== 'valid') {
        await this.pause(c);
        const done = await this.pollUntil('challenge', authzUrl, (j) => j.status !== 'pending', deadline);
        if (done.status !== 'valid') throw new OrderError('challenge', `authorization ${done.status}`);
      }
      lap('challenge');
    }

    // Finalize at once, as lego does; an orderNotReady (the server has not
    // moved the order yet) means poll the order until ready, then again.
    let f = await this.post('finalize', order.finalize, { csr: b64u(csrDer) });
    if (f.status === 403 && f.json?.type === 'urn:ietf:params:acme:error:orderNotReady') {
      await this.pollUntil('finalize', orderUrl, (j) => j.status !== 'pending', deadline);
      f = await this.post('finalize', order.finalize, { csr: b64u(csrDer) });
    }
    if (f.status !== 200) throw new OrderError('finalize', describe(f));
    order = f.json;
    if (order.status === 'processing') {
      await this.pause(f);
      order = await this.pollUntil('finalize', orderUrl, (j) => j.status !== 'processing', deadline);
    }
    if (order.status !== 'valid' || !order.certificate) throw new OrderError('finalize', `order ${order.status}: ${JSON.stringify(order.error ?? null)}`);
    lap('finalize');

    const d = await this.post('download', order.certificate, undefined, 'application/pem-certificate-chain');
    if (d.status !== 200) throw new OrderError('download', describe(d));
    lap('download');
    return d.body.toString('utf8');
  }
}
