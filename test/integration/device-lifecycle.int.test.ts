/**
 * A device's whole life across the parts of issue 10: registered with the
 * CLI, enrolled over EST with its one-time secret, admitted by a TLS gateway
 * using `trellis-pki/verify`; `device disable` shuts it out at the gateway and
 * at `simplereenroll`, `device enable` lets it back, it renews over mutual TLS,
 * and a revocation shuts the renewed certificate out at both again. The
 * `trellis device` and `revoke` commands run in this process (the same modules;
 * device-registry.int.test.ts and cli.int.test.ts run them as a process).
 */
import fs from 'node:fs';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { createDeviceVerifier, type VerifyResult } from '../../src/verify/index.js';
import * as device from '../../src/cmd/commands/device.js';
import * as revoke from '../../src/cmd/commands/revoke.js';
import { runInProcess } from '../helpers/cli-in-process.js';
import { certsOfPkcs7, deviceCsr, estClient } from '../helpers/device.js';
import { freePort } from '../helpers/lego.js';
import { makeCsr } from '../helpers/openssl.js';
import { testPassphrase, testPki, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let plain: Serving;
let secure: Serving;
let gateway: tls.Server;
let gatewayPort: number;
const commands = { device, revoke } as const;
/** `trellis device|revoke …` in this process, with the instance's directory and passphrase. */
const trellis = (args: string[]) => {
  const [name, ...rest] = args as [keyof typeof commands, ...string[]];
  return runInProcess(name, commands[name], rest, { TRELLIS_DATA: pki.dataDir, TRELLIS_PASSPHRASE: testPassphrase });
};
// Every connection asks OCSP again: the test watches status changes arrive.
const verifier = () => createDeviceVerifier({ roots: [pki.rootPem], failClosed: true, maxCacheSeconds: 0 });
let current: ReturnType<typeof verifier>;

beforeAll(async () => {
  // The base URL (OCSP and CRL URLs in certificates) is a plain-HTTP node; EST runs on a second node with --tls, same database.
  const plainPort = await freePort();
  pki = await testPki({ baseUrl: `http://127.0.0.1:${plainPort}` });
  const configPath = `${pki.dataDir}/trellis.json`;
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  fs.writeFileSync(configPath, JSON.stringify({ ...config, revocation: { ...config.revocation, ocspSeconds: 1, crlSeconds: 1 } }));
  plain = await serve({ dataDir: pki.dataDir, host: '127.0.0.1', port: plainPort, passphrase: testPassphrase, log: silentLogger, accessLog: false });
  secure = await serve({ dataDir: pki.dataDir, host: '127.0.0.1', port: 0, tls: true, passphrase: testPassphrase, log: silentLogger, accessLog: false });
  current = verifier();
  const srv = await makeCsr(pki.dir, 'gateway', '/CN=localhost', { sans: 'DNS:localhost' });
  const serverChain = fs.readFileSync((await pki.issue('server', srv.csrPem, 'gateway')).chainPath);
  gateway = tls.createServer({ key: fs.readFileSync(srv.keyPath), cert: serverChain, requestCert: true, rejectUnauthorized: false }, (socket) => {
    void current.verify(socket).then((r) => socket.end(JSON.stringify(r)));
  });
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
  gatewayPort = (gateway.address() as AddressInfo).port;
}, 120_000);

afterAll(async () => {
  gateway?.close();
  await secure?.close();
  await plain?.close();
  await pki?.close();
});

/** What the gateway's verifier says of one connection with this key and chain. */
function atGateway(cred: { keyPath: string; chainPath: string }): Promise<VerifyResult> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: gatewayPort, servername: 'localhost', ca: pki.rootPem, key: fs.readFileSync(cred.keyPath), cert: fs.readFileSync(cred.chainPath) });
    let data = '';
    s.on('data', (d) => (data += d));
    s.on('end', () => resolve(JSON.parse(data) as VerifyResult));
    s.on('error', reject);
  });
}

/** Polls the gateway (no fixed sleep) until `done`, for at most 20 s; the status change reaches OCSP within ocspSeconds. */
async function gatewayUntil(cred: { keyPath: string; chainPath: string }, done: (r: VerifyResult) => boolean): Promise<VerifyResult> {
  const deadline = Date.now() + 20_000;
  let r = await atGateway(cred);
  while (!done(r) && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 200));
    r = await atGateway(cred);
  }
  return r;
}

const est = (cred?: { keyPath: string; chainPath: string }) =>
  estClient({ baseUrl: secure.url, ca: pki.rootPem, ...(cred ? { cert: fs.readFileSync(cred.chainPath, 'utf8'), key: cred.keyPath } : {}) });

/** The certificate of a certs-only answer, with the issuing CA, in a chain file next to its key. */
async function credentialOf(b64: string, keyPath: string, name: string): Promise<{ keyPath: string; chainPath: string; serialHex: string }> {
  const [leaf] = await certsOfPkcs7(pki.dir, b64);
  const chainPath = `${pki.dir}/${name}-chain.pem`;
  fs.writeFileSync(chainPath, leaf! + pki.issuingPem);
  const serialHex = new (await import('node:crypto')).X509Certificate(leaf!).serialNumber.toLowerCase();
  return { keyPath, chainPath, serialHex };
}

test('register, enroll over EST, admitted; disabled: refused at the gateway and at simplereenroll; enabled: renews; revoked: refused again', async () => {
  const reg = await trellis(['device', 'register', '--id', 'life-dev-1', '--json']);
  expect(reg.code).toBe(0);
  const { secret } = JSON.parse(reg.stdout) as { secret: string };

  const first = await deviceCsr(pki.dir, 'life-dev-1');
  const enrolled = await est().simpleenroll(first.csrB64, { user: { id: 'life-dev-1', secret } });
  expect(enrolled.status).toBe(200);
  const cred = await credentialOf(enrolled.text, first.keyPath, 'life-1');
  expect(await atGateway(cred)).toMatchObject({ ok: true, deviceId: 'life-dev-1', serial: cred.serialHex });

  // Disabled in the registry: its certificate goes on hold, so the gateway refuses it, and EST refuses renewal.
  expect((await trellis(['device', 'disable', '--id', 'life-dev-1'])).stdout).toMatch(/1 certificate on hold/);
  expect(await gatewayUntil(cred, (r) => !r.ok)).toEqual({ ok: false, reason: 'revoked: certificateHold' });
  const renewWhileDisabled = await est(cred).simplereenroll((await deviceCsr(pki.dir, 'life-dev-1')).csrB64);
  expect(renewWhileDisabled.status).toBe(403);

  // Enabled again: admitted, and it renews itself over mutual TLS.
  expect((await trellis(['device', 'enable', '--id', 'life-dev-1'])).stdout).toMatch(/life-dev-1 is active; 1 certificate released/);
  expect(await gatewayUntil(cred, (r) => r.ok)).toMatchObject({ ok: true, deviceId: 'life-dev-1' });
  const second = await deviceCsr(pki.dir, 'life-dev-1');
  const renewed = await est(cred).simplereenroll(second.csrB64);
  expect(renewed.status).toBe(200);
  const next = await credentialOf(renewed.text, second.keyPath, 'life-2');
  expect(next.serialHex).not.toBe(cred.serialHex);
  expect(await atGateway(next)).toMatchObject({ ok: true, deviceId: 'life-dev-1', serial: next.serialHex });

  // Revoked: refused at the gateway and at renewal.
  expect((await trellis(['revoke', '--serial', next.serialHex, '--reason', 'keyCompromise'])).code).toBe(0);
  expect(await gatewayUntil(next, (r) => !r.ok)).toEqual({ ok: false, reason: 'revoked: keyCompromise' });
  const renewRevoked = await est(next).simplereenroll((await deviceCsr(pki.dir, 'life-dev-1')).csrB64);
  expect(renewRevoked.status).toBe(403);
});
