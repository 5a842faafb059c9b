/**
 * Rotation and rollover (issue 11) from the CLI, in process, judged by
 * OpenSSL: `ca rotate` now (new certificates from the successor, the old CA
 * deactivated but still signing its CRL and answering OCSP for what it
 * issued, trellis.json retargeted), `ca rotate --at` a few seconds ahead
 * (the old CA issues until then), `ceremony root-rollover` (chains under
 * either root verify with the other root alone, through the cross
 * certificates), and `ca renew` (same key: certificates issued before and
 * after verify against the renewed chain).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as ca from '../../src/cmd/commands/ca.js';
import * as ceremony from '../../src/cmd/commands/ceremony.js';
import * as crl from '../../src/cmd/commands/crl.js';
import * as issue from '../../src/cmd/commands/issue.js';
import * as key from '../../src/cmd/commands/key.js';
import * as revoke from '../../src/cmd/commands/revoke.js';
import { initInstance } from '../../src/cmd/init-instance.js';
import { serve, type Serving } from '../../src/cmd/server.js';
import { unlockIssuers, keystoreFor, openInstance, profile } from '../../src/cmd/instance.js';
import { silentLogger } from '../../src/http/log.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { createToken } from '../../src/tokens/tokens.js';
import { derFromPemOrDer, toPem } from '../../src/pki/pem.js';
import { runInProcess } from '../helpers/cli-in-process.js';
import { makeCsr, openssl, opensslRun, tempDir } from '../helpers/openssl.js';
import { testPassphrase, testRootPassphrase } from '../helpers/test-pki.js';

const tmp = tempDir('trellis-rotation-');
const dataDir = tmp.file('data');
const newRootPassphrase = 'the second root of trust, offline';
const base = { TRELLIS_DATA: dataDir, TRELLIS_PASSPHRASE: testPassphrase, TRELLIS_ROOT_PASSPHRASE: testRootPassphrase, TRELLIS_NEW_ROOT_PASSPHRASE: undefined };
const cli = {
  ca: (args: string[], env = {}) => runInProcess('ca', ca, args, { ...base, ...env }),
  ceremony: (args: string[], env = {}) => runInProcess('ceremony', ceremony, args, { ...base, ...env }),
  crl: (args: string[], env = {}) => runInProcess('crl', crl, args, { ...base, ...env }),
  issue: (args: string[], env = {}) => runInProcess('issue', issue, args, { ...base, ...env }),
  key: (args: string[], env = {}) => runInProcess('key', key, args, { ...base, ...env }),
  revoke: (args: string[], env = {}) => runInProcess('revoke', revoke, args, { ...base, ...env }),
};
const json = (r: { code: number; stdout: string; stderr: string }) => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
};

let csrPath: string;
let n = 0;
/** Issues a server certificate; writes the leaf to a file; returns its path, serial and issuing CA. */
async function issueLeaf(extra: string[] = []): Promise<{ pemPath: string; serialHex: string; issuer: string }> {
  const r = json(await cli.issue(['--profile', 'server', '--csr', csrPath, '--json', ...extra]));
  const pemPath = tmp.file(`leaf-${++n}.pem`);
  fs.writeFileSync(pemPath, toPem('CERTIFICATE', derFromPemOrDer(Buffer.from(r.chain), ['CERTIFICATE'], 'leaf')));
  return { pemPath, serialHex: r.serialHex, issuer: r.issuer };
}
/** Writes the current certificate of CA `id` to a file. */
async function caPem(id: string, name = `${id}.pem`): Promise<string> {
  const file = tmp.file(name);
  fs.writeFileSync(file, json(await cli.ca(['cert', '--ca', id, '--json'])).pem);
  return file;
}
const states = async () => Object.fromEntries((json(await cli.key(['list', '--json'])) as { ca: string; state: string }[]).map((k) => [k.ca, k.state]));
const config = () => JSON.parse(fs.readFileSync(path.join(dataDir, 'trellis.json'), 'utf8')) as { defaultIssuer?: string };
const verify = (...args: string[]) => openssl('verify', ...args);

/** How long one `ca rotate` took on this machine (measured by the first test; 5 s until then). */
let rotateMs = 5_000;
/**
 * A takeover time `rotations` rotations' worth from now, kept between `minMs` and `maxMs`: the
 * checks before it get the time they need on a loaded machine, and a fast one waits little.
 */
const takeoverAt = (rotations: number, minMs: number, maxMs: number) => new Date(Date.now() + Math.min(maxMs, Math.max(minMs, rotations * rotateMs)));

let rootPem: string;
let issuing1Pem: string;
let oldGood: { pemPath: string; serialHex: string };
let oldRevoked: { pemPath: string; serialHex: string };

beforeAll(async () => {
  await initInstance({ dataDir, baseUrl: 'http://pki.test:8080', passphrase: testPassphrase, rootPassphrase: testRootPassphrase, actor: 'test' });
  csrPath = (await makeCsr(tmp.dir, 'leaf', '/CN=rotate.example.test', { sans: 'DNS:rotate.example.test' })).csrPath;
  rootPem = await caPem('root');
  issuing1Pem = await caPem('issuing-1');
}, 60_000);
afterAll(() => tmp.cleanup());

describe('trellis ca rotate', () => {
  test('now: the successor issues, the old CA is deactivated, trellis.json names the successor', async () => {
    oldGood = await issueLeaf();
    oldRevoked = await issueLeaf();
    expect(oldGood).toMatchObject({ issuer: 'issuing-1' });
    expect((await cli.revoke(['--serial', oldRevoked.serialHex, '--reason', 'keyCompromise'])).code).toBe(0);
    // The parent (the offline root) signs: without its secret nothing happens.
    const noRoot = await cli.ca(['rotate', '--ca', 'issuing-1'], { TRELLIS_ROOT_PASSPHRASE: undefined });
    expect(noRoot.code).not.toBe(0);
    expect(await states()).toEqual({ 'issuing-1': 'active', root: 'active' });
    const started = Date.now();
    const r = json(await cli.ca(['rotate', '--ca', 'issuing-1', '--json']));
    rotateMs = Date.now() - started;
    expect(r).toMatchObject({ from: 'issuing-1', to: 'issuing-2', state: 'active', config: ['defaultIssuer'] });
    expect(config().defaultIssuer).toBe('issuing-2');
    expect(await states()).toEqual({ 'issuing-1': 'deactivated', 'issuing-2': 'active', root: 'active' });
    const issuing2Pem = await caPem('issuing-2');
    // Same subject, same parent, new key.
    const [c1, c2] = [issuing1Pem, issuing2Pem].map((f) => parseCertificate(derFromPemOrDer(fs.readFileSync(f), ['CERTIFICATE'], 'ca')));
    expect(c2!.subjectDer.equals(c1!.subjectDer)).toBe(true);
    expect(c2!.spkiDer.equals(c1!.spkiDer)).toBe(false);
    const leaf = await issueLeaf();
    expect(leaf.issuer).toBe('issuing-2');
    expect(await verify('-CAfile', rootPem, '-untrusted', issuing2Pem, leaf.pemPath)).toMatch(/: OK$/m);
    expect((await opensslRun(['verify', '-CAfile', rootPem, '-untrusted', issuing1Pem, leaf.pemPath])).code).not.toBe(0);
    // Old certificates still chain to the old CA.
    expect(await verify('-CAfile', rootPem, '-untrusted', issuing1Pem, oldGood.pemPath)).toMatch(/: OK$/m);
    // The old CA cannot issue any more.
    const refused = await cli.issue(['--profile', 'server', '--csr', csrPath, '--ca', 'issuing-1']);
    expect(refused.stderr).toContain('CA "issuing-1" cannot sign certificates: its key is deactivated');
    // ACME (chain by issuer) and EST (issuerFor) hand out the successor's chain.
    const instance = await openInstance(dataDir);
    try {
      const issuers = await unlockIssuers(instance, keystoreFor(instance, testPassphrase));
      expect(issuers.issuerFor(profile(instance, 'server')).chainDer[0]!.equals(c2!.der)).toBe(true);
    } finally {
      await instance.close();
    }
  }, 60_000);

  test("the old CA still signs its CRL and answers OCSP for what it issued", async () => {
    const out = tmp.file('crl-after-rotation');
    const r = await cli.crl(['publish', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const crlFile = path.join(out, 'issuing-1', 'full.crl');
    expect(await openssl('crl', '-inform', 'DER', '-in', crlFile, '-CAfile', issuing1Pem, '-noout')).toContain('verify OK');
    expect(await openssl('crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text')).toContain(`Serial Number: ${oldRevoked.serialHex.toUpperCase()}`);
    let server: Serving | undefined;
    try {
      server = await serve({ dataDir, port: 0, passphrase: testPassphrase, log: silentLogger });
      const ocsp = (cert: string) => opensslRun(['ocsp', '-issuer', issuing1Pem, '-CAfile', rootPem, '-cert', cert, '-url', `${server!.url}/ocsp`, '-no_nonce']);
      const good = await ocsp(oldGood.pemPath);
      expect(good.stdout + good.stderr).toContain('Response verify OK');
      expect(good.stdout).toContain(`${oldGood.pemPath}: good`);
      const revoked = await ocsp(oldRevoked.pemPath);
      expect(revoked.stdout).toContain(`${oldRevoked.pemPath}: revoked`);
      const crlHttp = await fetch(`${server.url}/crl/issuing-1/full.crl`);
      expect(crlHttp.status).toBe(200);
      fs.writeFileSync(tmp.file('served-issuing-1.crl'), Buffer.from(await crlHttp.arrayBuffer()));
      expect(await openssl('crl', '-inform', 'DER', '-in', tmp.file('served-issuing-1.crl'), '-CAfile', issuing1Pem, '-noout')).toContain('verify OK');
    } finally {
      await server?.close();
    }
  }, 60_000);

  test('--at in the future: the old CA issues until then, the successor from then on', async () => {
    // Before `at`: this rotation, a refused one, a key list and an issuance (was a fixed 20 s).
    const at = takeoverAt(5, 6_000, 30_000);
    const r = json(await cli.ca(['rotate', '--ca', 'issuing-2', '--at', at.toISOString(), '--json']));
    expect(r).toMatchObject({ from: 'issuing-2', to: 'issuing-3', state: 'preActivation' });
    expect(await states()).toMatchObject({ 'issuing-2': 'active', 'issuing-3': 'preActivation' });
    expect(config().defaultIssuer).toBe('issuing-2');
    const again = await cli.ca(['rotate', '--ca', 'issuing-2']);
    expect(again.stderr).toContain('already part of a scheduled rotation');
    expect((await issueLeaf()).issuer).toBe('issuing-2');
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, at.getTime() - Date.now()) + 200));
    const after = await issueLeaf();
    expect(after.issuer).toBe('issuing-3');
    expect(await verify('-CAfile', rootPem, '-untrusted', await caPem('issuing-3'), after.pemPath)).toMatch(/: OK$/m);
    expect(await states()).toMatchObject({ 'issuing-2': 'deactivated', 'issuing-3': 'active' });
    expect(config().defaultIssuer).toBe('issuing-3');
    expect(fs.existsSync(path.join(dataDir, 'rotations.json'))).toBe(false);
  }, 60_000);

  test('refusals: a root, an unknown CA, a time in the past or not ISO 8601', async () => {
    expect((await cli.ca(['rotate', '--ca', 'root'])).stderr).toContain('roots roll over');
    expect((await cli.ca(['rotate', '--ca', 'nope'])).stderr).toContain('no CA "nope"');
    expect((await cli.ca(['rotate', '--ca', 'issuing-3', '--at', '2001-01-01T00:00:00Z'])).stderr).toContain('is in the past');
    const bad = await cli.ca(['rotate', '--ca', 'issuing-3', '--at', 'tomorrow']);
    expect(bad.code).toBe(2);
    expect((await cli.ca(['rotate', '--ca', 'issuing-1'])).stderr).toContain('its key is deactivated, not active');
  });
});

describe('trellis ceremony root-rollover and ca renew', () => {
  const dir = tmp.file('rollover');
  const withNewRoot = { TRELLIS_ROOT_PASSPHRASE: newRootPassphrase };

  test('a new root and cross certificates: chains under either root verify with the other root alone', async () => {
    const noNew = await cli.ceremony(['root-rollover', '--id', 'root-2', '--cn', 'Trellis Root CA 2', '--out-dir', dir]);
    expect(noNew.code).not.toBe(0);
    const r = json(await cli.ceremony(['root-rollover', '--id', 'root-2', '--cn', 'Trellis Root CA 2', '--o', 'Trellis', '--out-dir', dir, '--json'], { TRELLIS_NEW_ROOT_PASSPHRASE: newRootPassphrase }));
    expect(r).toMatchObject({ old: 'root', new: 'root-2' });
    const [newRoot, newByOld, oldByNew] = ['root.pem', 'cross-new-by-old.pem', 'cross-old-by-new.pem'].map((f) => path.join(dir, f)) as [string, string, string];
    const again = await cli.ceremony(['root-rollover', '--id', 'root-3', '--cn', 'Trellis Root CA 3', '--out-dir', dir], { TRELLIS_NEW_ROOT_PASSPHRASE: newRootPassphrase });
    expect(again.stderr).toContain('ceremonies never overwrite an output');
    // The cross certificates: subject of one root, issuer the other, same key as the subject root.
    const names = async (f: string) => openssl('x509', '-in', f, '-noout', '-subject', '-issuer', '-nameopt', 'RFC2253');
    expect(await names(newByOld)).toBe('subject=CN=Trellis Root CA 2,O=Trellis\nissuer=CN=Trellis Root CA,O=Trellis\n');
    expect(await names(oldByNew)).toBe('subject=CN=Trellis Root CA,O=Trellis\nissuer=CN=Trellis Root CA 2,O=Trellis\n');
    // A leaf under the old root, trusted through the new root alone.
    const current = await caPem('issuing-3');
    const oldLeaf = await issueLeaf();
    fs.writeFileSync(tmp.file('untrusted-old.pem'), fs.readFileSync(oldByNew, 'utf8') + fs.readFileSync(current, 'utf8'));
    expect(await verify('-CAfile', newRoot, '-untrusted', tmp.file('untrusted-old.pem'), oldLeaf.pemPath)).toMatch(/: OK$/m);
    expect((await opensslRun(['verify', '-CAfile', newRoot, '-untrusted', current, oldLeaf.pemPath])).code).not.toBe(0);
    // A leaf under the new root, trusted through the old root alone.
    const made = await cli.ceremony(['issuing', '--id', 'issuing-new', '--cn', 'Trellis Issuing CA N', '--parent', 'root-2'], withNewRoot);
    expect(made.code, made.stderr).toBe(0);
    const newLeaf = await issueLeaf(['--ca', 'issuing-new']);
    fs.writeFileSync(tmp.file('untrusted-new.pem'), fs.readFileSync(newByOld, 'utf8') + fs.readFileSync(await caPem('issuing-new'), 'utf8'));
    expect(await verify('-CAfile', rootPem, '-untrusted', tmp.file('untrusted-new.pem'), newLeaf.pemPath)).toMatch(/: OK$/m);
    expect(await verify('-CAfile', newRoot, '-untrusted', await caPem('issuing-new'), newLeaf.pemPath)).toMatch(/: OK$/m);
    // Each cross certificate is on record under the root that signed it.
    const instance = await openInstance(dataDir);
    try {
      const serialOf = (f: string) => parseCertificate(derFromPemOrDer(fs.readFileSync(f), ['CERTIFICATE'], 'cross')).serialHex;
      expect(await instance.store.certificates.findBySerial('root', serialOf(newByOld))).toMatchObject({ status: 'valid', profile: 'root-ca-cross' });
      expect(await instance.store.certificates.findBySerial('root-2', serialOf(oldByNew))).toMatchObject({ status: 'valid', profile: 'root-ca-cross' });
    } finally {
      await instance.close();
    }
  }, 90_000);

  test('ca renew under the new root: same key and subject, new serial; leaves before and after verify', async () => {
    const before = await issueLeaf();
    expect(before.issuer).toBe('issuing-3');
    const oldCert = parseCertificate(derFromPemOrDer(fs.readFileSync(await caPem('issuing-3', 'issuing-3-before.pem')), ['CERTIFICATE'], 'ca'));
    const r = json(await cli.ca(['renew', '--ca', 'issuing-3', '--parent', 'root-2', '--validity', '3y', '--json'], withNewRoot));
    expect(r).toMatchObject({ ca: 'issuing-3', parent: 'root-2' });
    const renewedPem = await caPem('issuing-3', 'issuing-3-renewed.pem');
    const renewed = parseCertificate(derFromPemOrDer(fs.readFileSync(renewedPem), ['CERTIFICATE'], 'ca'));
    expect(renewed.spkiDer.equals(oldCert.spkiDer)).toBe(true);
    expect(renewed.subjectDer.equals(oldCert.subjectDer)).toBe(true);
    expect(renewed.serialHex).not.toBe(oldCert.serialHex);
    expect(await openssl('x509', '-in', renewedPem, '-noout', '-issuer')).toContain('CN = Trellis Root CA 2');
    const ski = (f: string) => openssl('x509', '-in', f, '-noout', '-ext', 'subjectKeyIdentifier');
    expect(await ski(renewedPem)).toBe(await ski(tmp.file('issuing-3-before.pem')));
    const after = await issueLeaf();
    expect(after.issuer).toBe('issuing-3');
    const newRoot = path.join(dir, 'root.pem');
    for (const leaf of [before, after]) expect(await verify('-CAfile', newRoot, '-untrusted', renewedPem, leaf.pemPath)).toMatch(/: OK$/m);
    // The old certificate stays on record under the old root.
    const instance = await openInstance(dataDir);
    try {
      expect(await instance.store.certificates.findBySerial('root', oldCert.serialHex)).toMatchObject({ status: 'valid' });
      expect(instance.cas.find((c) => c.id === 'issuing-3')).toMatchObject({ parentId: 'root-2' });
    } finally {
      await instance.close();
    }
  }, 60_000);

  test('ca renew by the same parent; a root is not renewed', async () => {
    const before = await caPem('issuing-new', 'issuing-new-before.pem');
    const leaf = await issueLeaf(['--ca', 'issuing-new']);
    json(await cli.ca(['renew', '--ca', 'issuing-new', '--json'], withNewRoot));
    const renewedPem = await caPem('issuing-new', 'issuing-new-renewed.pem');
    expect(fs.readFileSync(renewedPem, 'utf8')).not.toBe(fs.readFileSync(before, 'utf8'));
    expect(await verify('-CAfile', path.join(dir, 'root.pem'), '-untrusted', renewedPem, leaf.pemPath)).toMatch(/: OK$/m);
    expect((await cli.ca(['renew', '--ca', 'root'])).stderr).toContain('is a root');
  }, 60_000);
});

/** An API token of the issuer role, made in the instance (serve not running yet). */
async function issuerToken(name: string): Promise<string> {
  const instance = await openInstance(dataDir);
  try {
    return (await createToken(instance.store.tokens, 'issuer', name)).secret;
  } finally {
    await instance.close();
  }
}

/**
 * Posts the server CSR to a running serve; the leaf goes to a file. Returns
 * the file and the issuing CA certificate (PEM) served with it, or null when
 * the CA chosen refused with 403 naming its deactivated key.
 */
async function postLeaf(server: Serving, token: string): Promise<{ file: string; issuerPem: string } | null> {
  const res = await fetch(`${server.url}/api/v1/certificates`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ profile: 'server', csr: fs.readFileSync(csrPath, 'utf8') }) });
  const text = await res.text();
  if (res.status === 403 && /its key is deactivated/.test(text)) return null;
  expect(res.status, text).toBe(201);
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g)!;
  const file = tmp.file(`served-${++n}.pem`);
  fs.writeFileSync(file, blocks[0]!);
  return { file, issuerPem: blocks[1]! };
}

describe('a takeover carried out by serve', () => {
  test('serve starts with the waiting successor, issues from the old CA until --at, then from the successor', async () => {
    const withNewRoot = { TRELLIS_ROOT_PASSPHRASE: newRootPassphrase };
    // Before `at`: this rotation, a token, serve's start and one issuance over HTTP (was a fixed 25 s).
    const at = takeoverAt(8, 8_000, 50_000);
    const r = json(await cli.ca(['rotate', '--ca', 'issuing-3', '--at', at.toISOString(), '--json'], withNewRoot));
    expect(r).toMatchObject({ from: 'issuing-3', to: 'issuing-4', state: 'preActivation' });
    const token = await issuerToken('rotation');
    let server: Serving | undefined;
    try {
      server = await serve({ dataDir, port: 0, passphrase: testPassphrase, log: silentLogger });
      const post = async () => (await postLeaf(server!, token))!;
      const before = await post();
      expect(Date.now()).toBeLessThan(at.getTime());
      expect(before.issuerPem).toBe(fs.readFileSync(await caPem('issuing-3', 'issuing-3-served.pem'), 'utf8'));
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, at.getTime() - Date.now()) + 1500));
      const after = await post();
      const issuing4Pem = await caPem('issuing-4');
      expect(after.issuerPem).toBe(fs.readFileSync(issuing4Pem, 'utf8'));
      expect(await verify('-CAfile', path.join(tmp.file('rollover'), 'root.pem'), '-untrusted', issuing4Pem, after.file)).toMatch(/: OK$/m);
      expect(await states()).toMatchObject({ 'issuing-3': 'deactivated', 'issuing-4': 'active' });
      expect(config().defaultIssuer).toBe('issuing-4');
      // Both CAs answer OCSP for what they issued.
      const ocsp = (issuerPem: string, cert: string) => opensslRun(['ocsp', '-issuer', issuerPem, '-CAfile', path.join(tmp.file('rollover'), 'root.pem'), '-cert', cert, '-url', `${server!.url}/ocsp`, '-no_nonce']);
      const good = await ocsp(issuing4Pem, after.file);
      expect(good.stdout + good.stderr).toContain('Response verify OK');
      expect(good.stdout).toContain(`${after.file}: good`);
      const old = await ocsp(tmp.file('issuing-3-served.pem'), before.file);
      expect(old.stdout + old.stderr).toContain('Response verify OK');
      expect(old.stdout).toContain(`${before.file}: good`);
    } finally {
      await server?.close();
    }
  }, 120_000);

  test('serve picks up a rotation made by another process after it started, and one scheduled after it started', async () => {
    const withNewRoot = { TRELLIS_ROOT_PASSPHRASE: newRootPassphrase };
    const token = await issuerToken('rotation-live');
    const rootPem = path.join(tmp.file('rollover'), 'root.pem');
    let server: Serving | undefined;
    /** What serve logged as errors (a CA it could not pick up says why here). */
    const errors: Record<string, unknown>[] = [];
    try {
      server = await serve({ dataDir, port: 0, passphrase: testPassphrase, log: (e) => void (e.level === 'error' && errors.push(e)) });
      const post = () => postLeaf(server!, token);
      /**
       * Posts until the served certificate comes from `caId`, at most 30 s: serve reads CA changes made elsewhere every
       * second, and until it has, the old CA refuses with 403 naming its deactivated key.
       */
      const servedBy = async (caId: string) => {
        const want = fs.readFileSync(await caPem(caId, `${caId}-live.pem`), 'utf8');
        const deadline = Date.now() + 30_000;
        for (;;) {
          const got = await post();
          if (got?.issuerPem === want) return got;
          if (Date.now() > deadline) throw new Error(`serve still issues from another CA than ${caId}; it logged ${JSON.stringify(errors)}`);
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      };
      expect((await post())?.issuerPem).toBe(fs.readFileSync(await caPem('issuing-4', 'issuing-4-live.pem'), 'utf8'));
      // Another process rotates now: serve has never seen issuing-5.
      expect(json(await cli.ca(['rotate', '--ca', 'issuing-4', '--json'], withNewRoot))).toMatchObject({ from: 'issuing-4', to: 'issuing-5', state: 'active' });
      const fromNew = await servedBy('issuing-5');
      expect(await verify('-CAfile', rootPem, '-untrusted', tmp.file('issuing-5-live.pem'), fromNew.file)).toMatch(/: OK$/m);
      // The new CA answers OCSP through a responder serve issued for it.
      const ocsp = await opensslRun(['ocsp', '-issuer', tmp.file('issuing-5-live.pem'), '-CAfile', rootPem, '-cert', fromNew.file, '-url', `${server.url}/ocsp`, '-no_nonce']);
      expect(ocsp.stdout + ocsp.stderr).toContain('Response verify OK');
      expect(ocsp.stdout).toContain(`${fromNew.file}: good`);
      // A takeover scheduled after the start happens at its time, carried out by serve.
      // Before `at`: this rotation only (was a fixed 8 s, which a loaded machine overran).
      const at = takeoverAt(3, 4_000, 30_000);
      expect(json(await cli.ca(['rotate', '--ca', 'issuing-5', '--at', at.toISOString(), '--json'], withNewRoot))).toMatchObject({ from: 'issuing-5', to: 'issuing-6', state: 'preActivation' });
      await servedBy('issuing-6');
      expect(Date.now()).toBeGreaterThanOrEqual(at.getTime());
      expect(await states()).toMatchObject({ 'issuing-5': 'deactivated', 'issuing-6': 'active' });
      expect(errors).toEqual([]);
    } finally {
      await server?.close();
    }
  }, 120_000);
});
