/**
 * Name constraints are enforced at issuance (RFC 5280 §4.2.1.10): a ceremony
 * makes an issuing CA whose profile permits dNSName example.com and excludes
 * bad.example.com; through the real CLI and `trellis serve`, a leaf inside is
 * issued (201, and OpenSSL verifies the chain), a leaf outside is refused with
 * a 4xx naming the name and the constraint, and nothing is signed for it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cliFor } from '../helpers/cli.js';
import { makeCsr, openssl, tempDir } from '../helpers/openssl.js';

const bin = path.join(import.meta.dirname, '../../bin/trellis.js');
const tmp = tempDir('trellis-nc-');
const data = tmp.file('data');
const passphrase = 'name constraints passphrase 1';
const rootPassphrase = 'name constraints root passphrase 2';

const cli = cliFor(data, passphrase, { TRELLIS_ROOT_PASSPHRASE: rootPassphrase });
const trellis = (...args: string[]) => cli(args);

let server: ChildProcess | undefined;
let url = '';
let token = '';

/** Certificates of the constrained CA in a given status, read from the database file. */
function count(status: string): number {
  const db = new Database(path.join(data, 'trellis.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM "Certificate" WHERE "issuerId" = ? AND "status" = ?').get('issuing-nc', status) as { n: number }).n;
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  const init = await trellis('init', '--yes', '--base-url', 'http://ca.test:8080');
  expect(init.code, init.stderr).toBe(0);
  // The ceremony reads the issuing-CA profile from the instance's profile directory.
  const profileFile = path.join(data, 'profiles', 'issuing-ca.yaml');
  fs.appendFileSync(profileFile, '\nnameConstraints:\n  permitted: { dns: [example.com] }\n  excluded: { dns: [bad.example.com] }\n');
  const ceremony = await trellis('ceremony', 'issuing', '--id', 'issuing-nc', '--cn', 'Constrained Issuing CA', '--parent', 'root');
  expect(ceremony.stderr).toBe('');
  expect(ceremony.code).toBe(0);
  fs.writeFileSync(tmp.file('root.pem'), (await trellis('ca', 'cert', '--ca', 'root')).stdout);
  const created = await trellis('token', 'create', '--role', 'issuer', '--json');
  expect(created.code, created.stderr).toBe(0);
  token = (JSON.parse(created.stdout) as { token: string }).token;
  await new Promise<void>((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, TRELLIS_PASSPHRASE: passphrase, TRELLIS_DATA: data };
    delete env.TRELLIS_ROOT_PASSPHRASE;
    const child = spawn(process.execPath, [bin, 'serve', '--port', '0'], { env });
    server = child;
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      const m = /serving on (http:\/\/\S+)/.exec(err);
      if (m) {
        url = m[1]!;
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  tmp.cleanup();
});

const issue = (csr: string) =>
  fetch(`${url}/api/v1/certificates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ profile: 'server', csr, ca: 'issuing-nc' }),
  });

describe('name constraints at issuance', () => {
  test('the ceremony wrote them into the issuing CA, critical', async () => {
    fs.writeFileSync(tmp.file('issuing-nc.pem'), (await trellis('ca', 'cert', '--ca', 'issuing-nc')).stdout);
    const text = await openssl('x509', '-in', tmp.file('issuing-nc.pem'), '-noout', '-ext', 'nameConstraints');
    expect(text).toMatch(/Name Constraints: critical/);
    expect(text).toMatch(/Permitted:\s+DNS:example\.com/);
    expect(text).toMatch(/Excluded:\s+DNS:bad\.example\.com/);
  });

  test('a leaf inside the permitted subtree: 201, and OpenSSL verifies the chain', async () => {
    const { csrPem } = await makeCsr(tmp.dir, 'inside', '/CN=www.example.com', { sans: 'DNS:www.example.com,DNS:example.com' });
    const res = await issue(csrPem);
    expect(res.status).toBe(201);
    fs.writeFileSync(tmp.file('inside-chain.pem'), await res.text());
    await expect(openssl('verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', tmp.file('root.pem'), '-untrusted', tmp.file('inside-chain.pem'), tmp.file('inside-chain.pem'))).resolves.toMatch(/: OK$/m);
  });

  test.each([
    ['a name outside every permitted subtree', 'DNS:www.other.test', 'www.other.test', /not within the permitted dNSName subtrees.*example\.com/],
    ['a name that only ends like the permitted one', 'DNS:notexample.com', 'notexample.com', /not within the permitted dNSName subtrees.*example\.com/],
    ['the excluded subtree itself', 'DNS:bad.example.com', 'bad.example.com', /excluded dNSName subtree bad\.example\.com/],
    ['a name below the excluded subtree', 'DNS:www.bad.example.com', 'www.bad.example.com', /excluded dNSName subtree bad\.example\.com/],
    ['a wildcard that covers the excluded subtree', 'DNS:*.example.com', '*.example.com', /excluded dNSName subtree bad\.example\.com/],
  ])('rejects: %s (4xx naming it, nothing signed)', async (_what, sans, name, why) => {
    const valid = count('valid');
    const rows = count('valid') + count('pending') + count('failed');
    const { csrPem } = await makeCsr(tmp.dir, `outside-${name.replace(/\W/g, '_')}`, `/CN=${name}`, { sans });
    const res = await issue(csrPem);
    expect(res.status).toBe(400);
    const problem = (await res.json()) as { type: string; detail: string };
    expect(problem.type).toBe('urn:trellis:problem:rejectedIdentifier');
    expect(problem.detail).toContain(`"${name}"`);
    expect(problem.detail).toMatch(why);
    expect(problem.detail).toContain('Constrained Issuing CA');
    expect(count('valid')).toBe(valid);
    // Refused before the intent is recorded: no row at all.
    expect(count('valid') + count('pending') + count('failed')).toBe(rows);
  });
});
