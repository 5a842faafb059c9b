/**
 * Limits of the front (issue 12, "Hostile input"): request rates per client
 * address answered in each protocol's own words, bodies refused with 413
 * before they are read, header size and count, slow clients (slowloris on
 * the headers and on the body) closed by the configured timeouts while a
 * normal client is served, and the connection caps. One `serve` with tight
 * limits in trellis.json; 127.0.0.1 is a trusted proxy, so each check names
 * its own client address in X-Forwarded-For and has its own buckets.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { opensslRun } from '../helpers/openssl.js';
import { testPassphrase, testPki, type TestPki } from '../helpers/test-pki.js';

const limits = {
  maxHeaderBytes: 4096,
  maxHeaders: 20,
  maxConnections: 12,
  maxConnectionsPerAddress: 3,
  headersTimeoutSeconds: 1,
  requestTimeoutSeconds: 2,
  keepAliveTimeoutSeconds: 1,
  // One token per 10 s: a burst used up stays used up however slowly a loaded machine sends it.
  requestsPerSecond: 0.1,
  burstRequests: 4,
  statusRequestsPerSecond: 0.1,
  statusBurstRequests: 6,
  exemptAddresses: [],
};
const bodyLimitBytes = 8192;

let pki: TestPki;
let serving: Serving;
let port: number;
let nextClient = 1;
/** A client address of its own (documentation range, RFC 5737): a fresh set of buckets. */
const newClient = () => `198.51.100.${nextClient++}`;

beforeAll(async () => {
  pki = await testPki();
  const file = path.join(pki.dataDir, 'trellis.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  config.server = { ...config.server, bodyLimitBytes, trustedProxies: ['127.0.0.1'], limits };
  fs.writeFileSync(file, JSON.stringify(config));
  serving = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger, accessLog: false });
  port = Number(new URL(serving.url).port);
}, 60_000);
afterAll(async () => {
  await serving?.close();
  await pki?.close();
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One request on its own connection (no keep-alive pool). With `end: false`
 * the body is left unfinished: the answer must come before the client has
 * sent it all, which shows the server did not wait to read (or buffer) it.
 */
function send(urlPath: string, opts: { method?: string; from?: string; headers?: Record<string, string | number>; body?: Buffer | string; end?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: opts.method ?? 'GET', agent: false, headers: { 'x-forwarded-for': opts.from ?? newClient(), ...opts.headers } }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) });
        req.destroy();
      });
      res.on('error', reject);
    });
    // A write can fail (the server answered and closed) just before the answer is read: only no answer at all is an error.
    req.on('error', (err) => setTimeout(() => answered || reject(err), 500));
    if (opts.body !== undefined) req.write(opts.body);
    if (opts.end !== false) req.end();
  });
}

/** Writes `total` bytes of body in 4 KiB chunks without Content-Length (chunked), never ending it. */
function chunkedWithoutEnd(urlPath: string, headers: Record<string, string>, total: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'POST', agent: false, headers: { 'x-forwarded-for': newClient(), 'transfer-encoding': 'chunked', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) });
        req.destroy();
      });
      res.on('error', reject);
    });
    req.on('error', () => undefined);
    const chunk = Buffer.alloc(4096, 0x41);
    for (let sent = 0; sent < total; sent += chunk.length) req.write(chunk);
  });
}

/** A raw socket; `closed` settles with what the server wrote before closing it. */
function rawSocket(localAddress = '127.0.0.1'): Promise<{ socket: net.Socket; closed: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve({ socket, closed }));
    let received = '';
    socket.on('data', (d) => (received += d));
    const closed = new Promise<string>((r) => socket.once('close', () => r(received)));
    socket.once('error', reject);
  });
}

const waitFor = async (check: () => Promise<boolean>) => {
  for (let i = 0; i < 100 && !(await check()); i++) await new Promise((r) => setTimeout(r, 100));
};

describe('connection caps', () => {
  test('a peer over its connection cap is closed unanswered; its open connections and other peers are still served', async () => {
    // 127.0.0.2 is not a trusted proxy: its connections count against its own cap.
    const held = await Promise.all(Array.from({ length: limits.maxConnectionsPerAddress }, () => rawSocket('127.0.0.2')));
    const extra = await rawSocket('127.0.0.2');
    expect(await extra.closed).toBe('');
    // One of the held connections still gets answers.
    held[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: pki.test\r\nConnection: close\r\n\r\n');
    expect(await held[0]!.closed).toMatch(/^HTTP\/1\.1 200 /);
    // Another peer is not affected.
    const other = await rawSocket('127.0.0.3');
    other.socket.write('GET /healthz HTTP/1.1\r\nHost: pki.test\r\nConnection: close\r\n\r\n');
    expect(await other.closed).toMatch(/^HTTP\/1\.1 200 /);
    for (const h of held) h.socket.destroy();
  });

  test(`the process holds at most maxConnections (${limits.maxConnections}): with that many idle sockets open, one more is closed`, async () => {
    // Up to 3 per peer address: 4 addresses fill the 12 connections; the 13th, from a fifth address, is dropped.
    const held: Awaited<ReturnType<typeof rawSocket>>[] = [];
    for (let a = 10; held.length < limits.maxConnections; a++) {
      for (let i = 0; i < limits.maxConnectionsPerAddress && held.length < limits.maxConnections; i++) held.push(await rawSocket(`127.0.0.${a}`));
    }
    const extra = await rawSocket('127.0.0.40');
    expect(await extra.closed).toBe('');
    for (const h of held) h.socket.destroy();
    // Once they are gone, connections are taken again.
    await waitFor(async () => (await send('/healthz').catch(() => ({ status: 0 }))).status === 200);
    expect((await send('/healthz')).status).toBe(200);
  });
});

describe('slow clients', () => {
  test('slowloris: a client dribbling its headers, and one dribbling its body, are cut off by the timeouts (408) while a normal client is served', async () => {
    const slowHeaders = await rawSocket();
    slowHeaders.socket.write('GET /healthz HTTP/1.1\r\nHost: pki.test\r\n');
    const slowBody = await rawSocket();
    // new-account reads its whole body (the JWS) before anything else.
    slowBody.socket.write(`POST /acme/server/new-account HTTP/1.1\r\nHost: pki.test\r\nX-Forwarded-For: ${newClient()}\r\nContent-Type: application/jose+json\r\nContent-Length: 4000\r\n\r\n{`);
    let open = 2;
    const drip = setInterval(() => {
      if (!slowHeaders.socket.destroyed) slowHeaders.socket.write('X');
      if (!slowBody.socket.destroyed) slowBody.socket.write(' ');
    }, 100);
    const served: number[] = [];
    const normal = (async () => {
      while (open > 0) {
        served.push((await send('/healthz')).status);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const [h, b] = await Promise.all([slowHeaders.closed.finally(() => open--), slowBody.closed.finally(() => open--)]);
    clearInterval(drip);
    await normal;
    expect(h).toMatch(/^HTTP\/1\.1 408 /);
    expect(b).toMatch(/^HTTP\/1\.1 408 /);
    expect(served.length).toBeGreaterThan(0);
    expect(new Set(served)).toEqual(new Set([200]));
  });

  test('an idle connection that never sends a byte is closed', async () => {
    const idle = await rawSocket();
    expect(await idle.closed).toMatch(/^(HTTP\/1\.1 408 |$)/);
  });
});

describe('headers', () => {
  test(`more than ${limits.maxHeaders} header fields: 431`, async () => {
    const headers = Object.fromEntries(Array.from({ length: limits.maxHeaders }, (_, i) => [`x-filler-${i}`, 'a']));
    const r = await send('/healthz', { headers });
    expect(r.status).toBe(431);
    expect((await send('/healthz', { headers: { 'x-one': 'a' } })).status).toBe(200);
  });

  test(`headers larger than ${limits.maxHeaderBytes} bytes: 431`, async () => {
    const r = await send('/healthz', { headers: { 'x-big': 'a'.repeat(limits.maxHeaderBytes) } });
    expect(r.status).toBe(431);
  });
});

describe('bodies: refused with 413 before they are read', () => {
  const huge = 100 * 1024 * 1024;
  test.each([
    ['OCSP POST (its own 16 KiB limit)', '/ocsp', 'application/ocsp-request', 413, /^text\/plain/],
    // EST enrolls over TLS only (its 64 KiB limit is checked in est.int.test.ts); over HTTP it refuses at once all the same.
    ['EST simpleenroll over HTTP', '/.well-known/est/simpleenroll', 'application/pkcs10', 403, /^text\/plain/],
    ['ACME new-order (an RFC 8555 problem)', '/acme/server/new-order', 'application/jose+json', 413, /^application\/problem\+json/],
    ['the admin API (an RFC 9457 problem)', '/api/v1/certificates', 'application/json', 413, /^application\/problem\+json/],
    ['the audit checkpoint (GET only)', '/audit/checkpoint', 'application/octet-stream', 413, /^application\/problem\+json/],
    ['a CRL path', '/crl/x/0.crl', 'application/octet-stream', 413, /^text\/plain/],
    ['metrics', '/metrics', 'application/octet-stream', 413, /^application\/problem\+json/],
  ])('%s declaring 100 MiB: answered before the body is sent', async (_name, urlPath, type, status, answerType) => {
    const r = await send(urlPath, { method: 'POST', headers: { 'content-type': type, 'content-length': huge }, body: Buffer.alloc(1024), end: false });
    expect(r.status).toBe(status);
    expect(r.headers['content-type']).toMatch(answerType);
    if (urlPath.startsWith('/acme/')) expect(JSON.parse(r.body.toString())).toMatchObject({ type: 'urn:ietf:params:acme:error:malformed', status: 413 });
    if (urlPath.startsWith('/api/')) expect(JSON.parse(r.body.toString())).toMatchObject({ type: 'urn:trellis:problem:payloadTooLarge', status: 413 });
  });

  test('OCSP POST sent chunked, without a length: 413 once past the limit, before the client has finished', async () => {
    const r = await chunkedWithoutEnd('/ocsp', { 'content-type': 'application/ocsp-request' }, 128 * 1024);
    expect(r.status).toBe(413);
  });

  test('ACME new-account sent chunked, without a length: 413 with an RFC 8555 problem', async () => {
    // express's body parser stops keeping the body at the limit but reads (and drops) the rest before answering,
    // so this client finishes its body; one that never does is cut off by the request timeout (408).
    const r = await send('/acme/server/new-account', { method: 'POST', headers: { 'content-type': 'application/jose+json', 'transfer-encoding': 'chunked' }, body: Buffer.alloc(128 * 1024, 0x20) });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body.toString())).toMatchObject({ type: 'urn:ietf:params:acme:error:malformed', status: 413 });
  });
});

describe('request rates per client address', () => {
  test('OCSP: past the burst, 429 with Retry-After and an OCSP tryLater response; another client is still answered', async () => {
    const client = newClient();
    for (let i = 0; i < limits.statusBurstRequests; i++) {
      const r = await send('/ocsp', { method: 'POST', from: client, headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.from([0x30, 0x00]) });
      expect(r.status).toBe(200);
    }
    const refused = await send('/ocsp', { method: 'POST', from: client, headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.from([0x30, 0x00]) });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.headers['content-type']).toBe('application/ocsp-response');
    const file = path.join(pki.dir, 'try-later.der');
    fs.writeFileSync(file, refused.body);
    // OpenSSL as the oracle: the body is an OCSPResponse saying tryLater.
    const oracle = await opensslRun(['ocsp', '-respin', file, '-resp_text']);
    expect(oracle.stdout + oracle.stderr).toMatch(/Responder Error: trylater \(3\)/);
    expect((await send('/ocsp', { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.from([0x30, 0x00]) })).status).toBe(200);
  });

  test('ACME: past the burst, 429 with Retry-After and the rateLimited problem of RFC 8555', async () => {
    const client = newClient();
    for (let i = 0; i < limits.burstRequests; i++) expect((await send('/acme/directory', { from: client })).status).toBe(200);
    const refused = await send('/acme/directory', { from: client });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(refused.body.toString())).toMatchObject({ type: 'urn:ietf:params:acme:error:rateLimited', status: 429 });
  });

  test('EST, the admin API and health share the general budget; the answer is each one\'s own kind of error', async () => {
    const client = newClient();
    for (let i = 0; i < limits.burstRequests; i++) await send('/healthz', { from: client });
    const est = await send('/.well-known/est/cacerts', { from: client });
    expect(est.status).toBe(429);
    expect(est.headers['content-type']).toMatch(/^text\/plain/);
    expect(est.headers['retry-after']).toBeDefined();
    const api = await send('/api/v1/certificates', { from: client });
    expect(api.status).toBe(429);
    expect(JSON.parse(api.body.toString())).toMatchObject({ type: 'urn:trellis:problem:rateLimited', status: 429 });
    // Status paths (OCSP, CRLs, CA certificates) have their own budget: relying parties are not held up by enrollment traffic.
    expect((await send(`/ca/${pki.instance.cas.find((c) => c.role === 'issuing')!.id}.cer`, { from: client })).status).toBe(200);
  });

  test('behind a trusted proxy each forwarded client has its own budget; the proxy itself is not limited as one client', async () => {
    const a = newClient();
    for (let i = 0; i < limits.burstRequests; i++) await send('/healthz', { from: a });
    expect((await send('/healthz', { from: a })).status).toBe(429);
    expect((await send('/healthz', { from: `203.0.113.9, ${newClient()}` })).status).toBe(200);
  });
});
