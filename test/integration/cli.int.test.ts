/** The `trellis` command as users run it (compiled, in a child process): init, issue, tokens, failures, restart. */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeCsr, openssl, tempDir } from '../helpers/openssl.js';

const bin = path.join(import.meta.dirname, '../../bin/trellis.js');
const tmp = tempDir('trellis-cli-');
const data = tmp.file('data');
const passphrase = 'a long test passphrase 123';
const rootPassphrase = 'a long root passphrase 456';

function trellis(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, TRELLIS_PASSPHRASE: passphrase, TRELLIS_ROOT_PASSPHRASE: rootPassphrase, TRELLIS_DATA: data, ...env }, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  const r = await trellis(['init', '--yes', '--base-url', 'http://ca.test:8080']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
});
afterAll(() => tmp.cleanup());

describe('trellis CLI', () => {
  test('--help works and needs no instance', async () => {
    const r = await trellis(['--help'], { TRELLIS_DATA: '/nonexistent' });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/trellis <command>/);
  });

  test('init refuses to overwrite an instance', async () => {
    const r = await trellis(['init', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already holds a Trellis instance/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('issue prints the PEM chain leaf first; openssl verifies it against `ca cert --root`', async () => {
    const { csrPath } = await makeCsr(tmp.dir, 'srv', '/CN=svc.example.test', { sans: 'DNS:svc.example.test' });
    const issued = await trellis(['issue', '--profile', 'server', '--csr', csrPath]);
    expect(issued.code).toBe(0);
    expect(issued.stdout.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    fs.writeFileSync(tmp.file('chain.pem'), issued.stdout);
    fs.writeFileSync(tmp.file('root.pem'), (await trellis(['ca', 'cert', '--root'])).stdout);
    await expect(openssl('verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', tmp.file('root.pem'), '-untrusted', tmp.file('chain.pem'), tmp.file('chain.pem'))).resolves.toMatch(/: OK$/m);
  });

  test('issue --format der --out writes DER and never overwrites', async () => {
    const { csrPath } = await makeCsr(tmp.dir, 'der', '/CN=der.example.test');
    const out = tmp.file('leaf.der');
    expect((await trellis(['issue', '--profile', 'server', '--csr', csrPath, '--format', 'der', '--out', out])).code).toBe(0);
    await expect(openssl('x509', '-inform', 'DER', '-in', out, '-noout', '-subject')).resolves.toMatch(/der\.example\.test/);
    const again = await trellis(['issue', '--profile', 'server', '--csr', csrPath, '--format', 'der', '--out', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/never overwrites/);
  });

  test.each([
    ['a wrong passphrase', ['--profile', 'server', '--csr', 'p256-server.csr'], { TRELLIS_PASSPHRASE: 'wrong passphrase!!' }, /wrong online passphrase/],
    ['random bytes', ['--profile', 'server', '--csr', 'random.bin'], {}, /not valid DER/],
    ['RSA 1024', ['--profile', 'server', '--csr', 'rsa1024.csr'], {}, /at least 2048 bits/],
    ['an unknown profile', ['--profile', 'nope', '--csr', 'p256-server.csr'], {}, /unknown profile "nope"/],
    ['a missing file', ['--profile', 'server', '--csr', 'missing.csr'], {}, /cannot read/],
  ] as const)('issue fails with one line on stderr for %s, and stores nothing', async (_name, args, env, message) => {
    const fixtures = path.join(import.meta.dirname, '../fixtures/csr');
    const before = (await trellis(['ca', 'list', '--json'])).code;
    expect(before).toBe(0);
    const r = await trellis(['issue', ...args.map((a) => (a.includes('.') ? path.join(fixtures, a) : a))], env);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });

  test('token create prints the secret once; ca list --json lists both CAs', async () => {
    const t = await trellis(['token', 'create', '--role', 'issuer']);
    expect(t.code).toBe(0);
    expect(t.stdout.trim()).toMatch(/^trellis_[A-Za-z0-9_-]{43}$/);
    const list = JSON.parse((await trellis(['ca', 'list', '--json'])).stdout) as { id: string; role: string }[];
    expect(list.map((c) => [c.id, c.role])).toEqual([['issuing-1', 'issuing'], ['root', 'root']].sort());
  });

  test('revoke says when OCSP and the CRL will show it; twice is alreadyRevoked', async () => {
    const { csrPath } = await makeCsr(tmp.dir, 'rev', '/CN=rev.example.test');
    const issued = JSON.parse((await trellis(['issue', '--profile', 'server', '--csr', csrPath, '--json'])).stdout) as { serialHex: string };
    const r = await trellis(['revoke', '--serial', issued.serialHex, '--reason', 'keyCompromise']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`revoked ${issued.serialHex} \\(keyCompromise\\).*within 5 s.*within 60 s`));
    const again = await trellis(['revoke', '--serial', issued.serialHex, '--reason', 'keyCompromise']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already revoked/);
    const bad = await trellis(['revoke', '--serial', issued.serialHex, '--reason', 'bored']);
    expect(bad.stderr).toMatch(/unknown reason "bored"/);
  });

  test('audit verify reports an intact chain', async () => {
    const r = await trellis(['audit', 'verify']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/audit log intact: \d+ events/);
  });

  test('ceremony root never overwrites a CA', async () => {
    const r = await trellis(['ceremony', 'root', '--id', 'root', '--cn', 'Again']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already exists/);
  });

  test('serve starts, answers /healthz, stops on SIGTERM, and data survives the restart', async () => {
    const { spawn } = await import('node:child_process');
    const startServer = () =>
      new Promise<{ child: import('node:child_process').ChildProcess; url: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [bin, 'serve', '--port', '0'], { env: { ...process.env, TRELLIS_PASSPHRASE: passphrase, TRELLIS_DATA: data } });
        let err = '';
        child.stderr.on('data', (d) => {
          err += d;
          const m = /serving on (http:\/\/\S+)/.exec(err);
          if (m) resolve({ child, url: m[1]! });
        });
        child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
      });
    const before = JSON.parse((await trellis(['ca', 'list', '--json'])).stdout);
    for (let i = 0; i < 2; i++) {
      const { child, url } = await startServer();
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
    expect(JSON.parse((await trellis(['ca', 'list', '--json'])).stdout)).toEqual(before);
  });
});
