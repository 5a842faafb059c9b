/** `trellis serve --tls`: HTTPS with a certificate from its own issuing CA for the base URL's host, and `quickstart`. */
import { spawn } from 'node:child_process';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, expect, test } from 'vitest';
import { serve } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { tempDir } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

const opened: TestPki[] = [];
afterAll(async () => {
  for (const p of opened) await p.close();
});

test('serves HTTPS with a Trellis server certificate for the base URL host; clients trusting the root connect', async () => {
  const pki = await testPki({ baseUrl: 'https://pki.test:8443' });
  opened.push(pki);
  const server = await serve({ dataDir: pki.dataDir, port: 0, tls: true, passphrase: testPassphrase, log: silentLogger });
  try {
    const port = new URL(server.url).port;
    const { status, cert } = await new Promise<{ status: number; cert: tls.PeerCertificate }>((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, path: '/healthz', servername: 'pki.test', ca: pki.rootPem }, (res) => {
        const cert = (res.socket as tls.TLSSocket).getPeerCertificate();
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, cert }));
      });
      req.on('error', reject);
    });
    expect(status).toBe(200);
    expect(cert.subjectaltname).toBe('DNS:pki.test');
    expect(cert.issuer.CN).toBe('Trellis Issuing CA 1');
    const days = (new Date(cert.valid_to).getTime() - new Date(cert.valid_from).getTime()) / 86400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThan(31);
    // A client that does not trust the Trellis root refuses the connection.
    await expect(
      new Promise((resolve, reject) => https.get({ host: '127.0.0.1', port, path: '/healthz', servername: 'pki.test' }, resolve).on('error', reject)),
    ).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
  } finally {
    await server.close();
  }
});

test('quickstart: init with generated online and root passphrases shown once, serve, and restart with the online one', async () => {
  const tmp = tempDir('trellis-qs-');
  const bin = path.join(import.meta.dirname, '../../bin/trellis.js');
  const env: NodeJS.ProcessEnv = { ...process.env, TRELLIS_DATA: tmp.file('data') };
  delete env.TRELLIS_PASSPHRASE;
  delete env.TRELLIS_ROOT_PASSPHRASE;
  const run = (extraEnv: Record<string, string>) =>
    new Promise<{ url: string; stderr: string; stop(): Promise<number | null> }>((resolve, reject) => {
      const child = spawn(process.execPath, [bin, 'quickstart', '--port', '0'], { env: { ...env, ...extraEnv } });
      let stderr = '';
      child.stdout.resume();
      child.stderr.on('data', (d) => {
        stderr += d;
        const m = /serving on (http:\/\/\S+)/.exec(stderr);
        if (m)
          resolve({
            url: m[1]!,
            stderr,
            stop: () => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); }),
          });
      });
      child.on('exit', (code) => reject(new Error(`quickstart exited ${code}: ${stderr}`)));
    });
  try {
    const first = await run({});
    const m = /Online CA key passphrase \(shown once.*\n\n\s+(\S+)\n/.exec(first.stderr);
    const root = /Root key passphrase \(shown once.*\n\n\s+(\S+)\n/.exec(first.stderr);
    expect(m).toBeTruthy();
    expect(root).toBeTruthy();
    const passphrase = m![1]!;
    expect(root![1]).not.toBe(passphrase);
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
    expect(await first.stop()).toBe(0);
    const second = await run({ TRELLIS_PASSPHRASE: passphrase });
    expect(second.stderr).not.toMatch(/shown once/);
    expect((await fetch(`${second.url}/healthz`)).status).toBe(200);
    expect(await second.stop()).toBe(0);
  } finally {
    tmp.cleanup();
  }
});
