/**
 * The proof of issue 5: Debian's lego, unchanged, against `trellis serve
 * --tls` as users run it (a child process from the CLI), with nothing but the
 * directory URL and our root. Names resolve through pebble-challtestsrv
 * (every A query answers 127.0.0.1); lego's own http-01 and tls-alpn-01
 * servers listen on high loopback ports that `serve` validates against.
 * lego obtains, renews and revokes; openssl verifies the chain and then
 * reports the revocation through our OCSP responder.
 *
 * Without lego this file fails under TRELLIS_REQUIRE_INTEROP=1 (CI) and skips
 * loudly elsewhere.
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startMockDns, type MockDns } from '../helpers/dns.js';
import { interopAvailable } from '../helpers/interop.js';
import { freePort, legoRenew, legoRevoke, legoRun, startTool, stopAllTools, type LegoOptions, type ToolProcess } from '../helpers/lego.js';
import { openssl, opensslRun, tempDir } from '../helpers/openssl.js';

const bin = path.join(import.meta.dirname, '../../bin/trellis.js');
const passphrase = 'lego end to end passphrase';

function haveTools(): boolean {
  const missing = ['lego', 'pebble-challtestsrv'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  return interopAvailable(missing.length === 0, missing.join(', '), 'apt-get install lego pebble');
}

const trellis = (args: string[], data: string) =>
  new Promise<string>((resolve, reject) =>
    execFile(process.execPath, [bin, ...args, '--data', data], { env: { ...process.env, TRELLIS_PASSPHRASE: passphrase } }, (err, stdout, stderr) => (err ? reject(new Error(`trellis ${args.join(' ')}: ${stderr}`)) : resolve(stdout))),
  );

describe.runIf(haveTools())('lego 4.9 against trellis serve --tls', () => {
  const tmp = tempDir('trellis-lego-');
  const data = tmp.file('data');
  let dns: MockDns;
  let server: ToolProcess;
  let directory: string;
  let baseUrl: string;
  let http01Port: number;
  let tlsAlpnPort: number;
  const rootPem = tmp.file('root.pem');
  const issuingPem = tmp.file('issuing.pem');

  beforeAll(async () => {
    dns = await startMockDns();
    const port = await freePort();
    http01Port = await freePort();
    tlsAlpnPort = await freePort();
    baseUrl = `https://localhost:${port}`;
    await trellis(['init', '--yes', '--base-url', baseUrl], data);
    fs.writeFileSync(rootPem, await trellis(['ca', 'cert', '--root'], data));
    fs.writeFileSync(issuingPem, await trellis(['ca', 'cert'], data));
    server = startTool(
      process.execPath,
      [bin, 'serve', '--tls', '--port', String(port), '--data', data, '--acme-http01-port', String(http01Port), '--acme-tlsalpn01-port', String(tlsAlpnPort), '--acme-resolver', dns.address, '--acme-allow-address', '127.0.0.0/8'],
      { env: { ...process.env, TRELLIS_PASSPHRASE: passphrase, TRELLIS_ACCESS_LOG: 'off' } },
    );
    const deadline = Date.now() + 30_000;
    while (!/serving/.test(server.output())) {
      if (!server.running() || Date.now() > deadline) throw new Error(`trellis serve did not start: ${server.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    directory = `${baseUrl}/acme/directory`;
  });

  afterAll(async () => {
    await stopAllTools();
    tmp.cleanup();
  });

  const lego = (domains: string[], challenge: LegoOptions['challenge'], dir: string): LegoOptions => ({ server: directory, caFile: rootPem, path: tmp.file(dir), domains, challenge, timeoutMs: 60_000 });

  async function verifyChain(certPath: string) {
    await expect(openssl('verify', '-purpose', 'sslserver', '-CAfile', rootPem, '-untrusted', certPath, certPath)).resolves.toMatch(/: OK$/m);
  }

  async function ocsp(certPath: string): Promise<string> {
    // lego's .crt is the bundle; openssl ocsp reads the first certificate as the leaf.
    return openssl('ocsp', '-url', `${baseUrl}/ocsp`, '-issuer', issuingPem, '-cert', certPath, '-CAfile', rootPem, '-no_nonce');
  }

  test('http-01: run, renew, revoke; openssl verifies, then OCSP says revoked', async () => {
    const o = lego(['web.lego.test', 'www.lego.test'], { type: 'http-01', port: http01Port }, 'http');
    const first = await legoRun(o);
    await verifyChain(first.certPath);
    await expect(openssl('x509', '-in', first.certPath, '-noout', '-ext', 'subjectAltName')).resolves.toMatch(/DNS:web\.lego\.test[\s\S]*DNS:www\.lego\.test|DNS:www\.lego\.test[\s\S]*DNS:web\.lego\.test/);
    const firstSerial = await openssl('x509', '-in', first.certPath, '-noout', '-serial');

    const renewed = await legoRenew(o);
    await verifyChain(renewed.certPath);
    expect(await openssl('x509', '-in', renewed.certPath, '-noout', '-serial')).not.toBe(firstSerial);
    await expect(ocsp(renewed.certPath)).resolves.toMatch(/: good/);

    await legoRevoke({ ...o, reason: 1 });
    await expect(ocsp(renewed.certPath)).resolves.toMatch(/: revoked[\s\S]*Reason: keyCompromise/);
  });

  test('tls-alpn-01: run; the certificate works in a real TLS handshake trusted by our root', async () => {
    const o = lego(['alpn.lego.test'], { type: 'tls-alpn-01', port: tlsAlpnPort }, 'alpn');
    const got = await legoRun(o);
    await verifyChain(got.certPath);
    // The issued certificate serves TLS: openssl s_server with it, s_client verifying against our root.
    const port = await freePort();
    const srv = startTool('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', got.certPath, '-key', got.keyPath, '-cert_chain', got.certPath, '-www', '-quiet']);
    try {
      await new Promise((r) => setTimeout(r, 300));
      // stdin closed at once: s_client completes the handshake, prints the verdict and leaves.
      const r = await opensslRun(['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'alpn.lego.test', '-verify_hostname', 'alpn.lego.test', '-CAfile', rootPem, '-verify_return_error', '-brief'], '');
      expect(r.stdout + r.stderr).toMatch(/Verification: OK/);
      expect(r.code).toBe(0);
    } finally {
      await srv.stop();
    }
  });
});
