/**
 * `trellis-pki/verify` at a real gateway: a running Trellis (behind a tiny
 * counting proxy that can take OCSP or CRLs down), a Node TLS server with
 * requestCert that asks the verifier, a TLS client with a device certificate.
 */
import fs from 'node:fs';
import http from 'node:http';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { createDeviceVerifier, type DeviceVerifier, type DeviceVerifierOptions, type VerifyResult } from '../../src/verify/index.js';
import * as revoke from '../../src/cmd/commands/revoke.js';
import { cliFor } from '../helpers/cli.js';
import { runInProcess } from '../helpers/cli-in-process.js';
import { makeCsr, openssl } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

type Mode = 'up' | 'down' | 'hang' | 'huge';

/** Forwards to Trellis; counts requests per kind; answers 503 ('down'), never ('hang') or 2 MiB of zeros ('huge') for a kind when told. */
class Proxy {
  target = '';
  mode: Record<'ocsp' | 'crl', Mode> = { ocsp: 'up', crl: 'up' };
  count = { ocsp: 0, crl: 0 };
  private hung: http.ServerResponse[] = [];
  readonly server = http.createServer((req, res) => {
    const kind = req.url?.startsWith('/ocsp') ? 'ocsp' : req.url?.startsWith('/crl/') ? 'crl' : null;
    if (kind) this.count[kind]++;
    const mode = kind ? this.mode[kind] : 'up';
    if (mode === 'down') {
      res.writeHead(503).end();
      return;
    }
    if (mode === 'huge') {
      res.writeHead(200, { 'content-type': 'application/ocsp-response' });
      res.end(Buffer.alloc(2 * 1024 * 1024));
      return;
    }
    if (mode === 'hang') {
      this.hung.push(res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      fetch(this.target + req.url, { method: req.method, headers: { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' }, ...(req.method === 'POST' ? { body: Buffer.concat(chunks) } : {}) })
        .then(async (r) => {
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/octet-stream' });
          res.end(Buffer.from(await r.arrayBuffer()));
        })
        .catch(() => res.writeHead(502).end());
    });
  });
  async close(): Promise<void> {
    for (const r of this.hung) r.destroy();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

let pki: TestPki;
let trellis: Serving;
const proxy = new Proxy();
let gateway: tls.Server;
let gatewayPort: number;
/** The verifier the gateway uses for the next connection. */
let verifier: DeviceVerifier;
let device: { keyPath: string; chainPath: string; serialHex: string };
let serverKey: Buffer;
let serverChain: Buffer;

const newVerifier = (o: Partial<DeviceVerifierOptions> = {}) => createDeviceVerifier({ roots: [pki.rootPem], failClosed: true, ...o });

/** One connection to the gateway with a client certificate (or none); resolves what the gateway's verifier said. */
function connect(client: { keyPath: string; chainPath: string } | null): Promise<VerifyResult> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: gatewayPort, servername: 'localhost', ca: pki.rootPem, ...(client ? { key: fs.readFileSync(client.keyPath), cert: fs.readFileSync(client.chainPath) } : {}) });
    let data = '';
    s.on('data', (d) => (data += d));
    s.on('end', () => resolve(JSON.parse(data) as VerifyResult));
    s.on('error', reject);
  });
}

async function issueDevice(name: string) {
  const csr = await makeCsr(pki.dir, name, `/serialNumber=${name}`);
  const c = await pki.issue('device', csr.csrPem, name);
  return { keyPath: csr.keyPath, chainPath: c.chainPath, serialHex: c.serialHex };
}

/** Polls (no fixed sleep) until the gateway's answer satisfies `done`, for at most `seconds`. */
async function until(seconds: number, client: { keyPath: string; chainPath: string }, done: (r: VerifyResult) => boolean): Promise<VerifyResult> {
  const deadline = Date.now() + seconds * 1000;
  let r = await connect(client);
  while (!done(r) && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 100));
    r = await connect(client);
  }
  return r;
}

beforeAll(async () => {
  await new Promise<void>((r) => proxy.server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
  pki = await testPki({ baseUrl: base });
  const configPath = `${pki.dataDir}/trellis.json`;
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  fs.writeFileSync(configPath, JSON.stringify({ ...config, revocation: { ocspSeconds: 1, crlSeconds: 1, crlValiditySeconds: 86_400, ocspValiditySeconds: 86_400 } }));
  trellis = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger });
  proxy.target = trellis.url;
  const srv = await makeCsr(pki.dir, 'gateway', '/CN=localhost', { sans: 'DNS:localhost' });
  serverKey = fs.readFileSync(srv.keyPath);
  serverChain = fs.readFileSync((await pki.issue('server', srv.csrPem, 'gateway')).chainPath);
  device = await issueDevice('gw-dev-1');
  // No `ca`: the verifier alone decides which chains are trusted.
  gateway = tls.createServer({ key: serverKey, cert: serverChain, requestCert: true, rejectUnauthorized: false }, (socket) => {
    void verifier.verify(socket).then((r) => socket.end(JSON.stringify(r)));
  });
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
  gatewayPort = (gateway.address() as AddressInfo).port;
});

afterAll(async () => {
  gateway?.close();
  await trellis?.close();
  await proxy.close();
  await pki?.close();
});

describe('createDeviceVerifier at a TLS gateway', () => {
  test('a valid device certificate: ok with its device id and serial; the second connection is answered from the cache', async () => {
    verifier = newVerifier();
    const before = proxy.count.ocsp;
    expect(await connect(device)).toEqual({ ok: true, deviceId: 'gw-dev-1', serial: device.serialHex });
    expect(proxy.count.ocsp).toBe(before + 1);
    expect(await connect(device)).toEqual({ ok: true, deviceId: 'gw-dev-1', serial: device.serialHex });
    expect(proxy.count.ocsp).toBe(before + 1);
    // maxCacheSeconds 0: every connection asks again.
    verifier = newVerifier({ maxCacheSeconds: 0 });
    await connect(device);
    await connect(device);
    expect(proxy.count.ocsp).toBe(before + 3);
  });

  test('no client certificate is refused', async () => {
    verifier = newVerifier();
    expect(await connect(null)).toEqual({ ok: false, reason: 'no client certificate' });
  });

  test('a chain that does not lead to the given roots is refused', async () => {
    const keyPath = `${pki.dir}/rogue.key`;
    const chainPath = `${pki.dir}/rogue.pem`;
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath, '-out', chainPath, '-subj', '/serialNumber=gw-dev-1', '-days', '1', '-addext', 'extendedKeyUsage=clientAuth', '-addext', 'basicConstraints=critical,CA:FALSE');
    verifier = newVerifier();
    expect(await connect({ keyPath, chainPath })).toEqual({ ok: false, reason: 'untrusted chain' });
    // The real device is still fine with the same verifier, and a verifier trusting another root refuses it.
    expect((await connect(device)).ok).toBe(true);
    verifier = createDeviceVerifier({ roots: [fs.readFileSync(chainPath, 'utf8')] });
    expect(await connect(device)).toEqual({ ok: false, reason: 'untrusted chain' });
  });

  test('OCSP down, hanging or answering too much: the CRL decides', async () => {
    try {
      proxy.mode.ocsp = 'down';
      verifier = newVerifier();
      const crls = proxy.count.crl;
      expect(await connect(device)).toEqual({ ok: true, deviceId: 'gw-dev-1', serial: device.serialHex });
      expect(proxy.count.crl).toBe(crls + 1);
      // The CRL is cached until its nextUpdate.
      expect((await connect(device)).ok).toBe(true);
      expect(proxy.count.crl).toBe(crls + 1);
      proxy.mode.ocsp = 'hang';
      verifier = newVerifier({ timeoutMs: 300 });
      expect(await connect(device)).toEqual({ ok: true, deviceId: 'gw-dev-1', serial: device.serialHex });
      expect(proxy.count.crl).toBe(crls + 2);
      proxy.mode.ocsp = 'huge';
      const told: string[] = [];
      verifier = newVerifier({ onUnusable: (e) => told.push(e.detail) });
      expect(await connect(device)).toEqual({ ok: true, deviceId: 'gw-dev-1', serial: device.serialHex });
      expect(told).toEqual([expect.stringMatching(/answer larger than 1048576 bytes$/)]);
    } finally {
      proxy.mode.ocsp = 'up';
    }
  });

  test('OCSP and CRL both down: refused when failing closed, allowed with a reason otherwise', async () => {
    try {
      proxy.mode = { ocsp: 'down', crl: 'down' };
      const told: { source: string; detail: string }[] = [];
      verifier = newVerifier({ onUnusable: (e) => told.push({ source: e.source, detail: e.detail }) });
      expect(await connect(device)).toEqual({ ok: false, reason: 'status unavailable' });
      expect(told).toEqual([expect.objectContaining({ source: 'ocsp', detail: expect.stringMatching(/HTTP 503$/) }), expect.objectContaining({ source: 'crl', detail: expect.stringMatching(/HTTP 503$/) })]);
      verifier = newVerifier({ failClosed: false });
      expect(await connect(device)).toEqual({ ok: true, deviceId: 'gw-dev-1', serial: device.serialHex, reason: 'status unavailable' });
    } finally {
      proxy.mode = { ocsp: 'up', crl: 'up' };
    }
  });

  test('after `trellis revoke`: refused as revoked through OCSP, and through the CRL when OCSP is down', async () => {
    const d = await issueDevice('gw-dev-2');
    verifier = newVerifier({ maxCacheSeconds: 0 });
    expect(await connect(d)).toMatchObject({ ok: true, deviceId: 'gw-dev-2' });
    const r = await cliFor(pki.dataDir, testPassphrase)(['revoke', '--serial', d.serialHex, '--reason', 'keyCompromise']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // ocspSeconds is 1 in this instance's config; poll well beyond it.
    expect(await until(30, d, (x) => !x.ok)).toEqual({ ok: false, reason: 'revoked: keyCompromise' });
    try {
      proxy.mode.ocsp = 'down';
      // crlSeconds is 1: the shard CRL lists it soon.
      expect(await until(30, d, (x) => !x.ok)).toEqual({ ok: false, reason: 'revoked: keyCompromise' });
    } finally {
      proxy.mode.ocsp = 'up';
    }
    // Other devices are unaffected.
    expect((await connect(device)).ok).toBe(true);
  });

  test('a certificate on hold is refused, and let in again once the hold is lifted', async () => {
    const d = await issueDevice('gw-dev-3');
    verifier = newVerifier({ maxCacheSeconds: 0 });
    // `trellis revoke` in this process (the test above runs it as a process).
    const cli = (args: string[]) => runInProcess('revoke', revoke, args.slice(1), { TRELLIS_DATA: pki.dataDir, TRELLIS_PASSPHRASE: testPassphrase });
    expect((await cli(['revoke', '--serial', d.serialHex, '--reason', 'certificateHold'])).code).toBe(0);
    expect(await until(30, d, (x) => !x.ok)).toEqual({ ok: false, reason: 'revoked: certificateHold' });
    expect((await cli(['revoke', '--serial', d.serialHex, '--reason', 'removeFromCRL'])).code).toBe(0);
    expect(await until(30, d, (x) => x.ok)).toEqual({ ok: true, deviceId: 'gw-dev-3', serial: d.serialHex });
  });
});
