/**
 * `ceremony root-rollover` from a root whose key is in a PKCS#11 token
 * (issue 11, docs/hsm.md), against two SoftHSM2 tokens in a temp dir: the
 * old root's key opens with the root token's PIN; the new root is made in
 * the root token (the default trellis.json gives), or in software under its
 * own passphrase. OpenSSL judges the chains: with either root alone as the
 * trust anchor, a leaf under the old root and a leaf under the new root both
 * verify through the cross certificates, and neither does without them.
 * The commands run in this process (the TypeScript source, no build), as in
 * hsm.int.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as cliCa from '../../src/cmd/commands/ca.js';
import * as cliCeremony from '../../src/cmd/commands/ceremony.js';
import * as cliInit from '../../src/cmd/commands/init.js';
import * as cliIssue from '../../src/cmd/commands/issue.js';
import { openInstance } from '../../src/cmd/instance.js';
import { toPem } from '../../src/pki/pem.js';
import { runInProcess } from '../helpers/cli-in-process.js';
import { makeCsr, openssl, opensslRun, tempDir } from '../helpers/openssl.js';
import { haveSoftHsm, parseObjectList, pkcs11Tool, removeSoftHsm, caAndRootTokens, type SoftHsmToken } from '../helpers/softhsm.js';

const available = haveSoftHsm();
const tmp = tempDir('trellis-hsm-rollover-');
const data = tmp.file('data');
const passphrase = 'online passphrase for the hsm rollover test';
const newRootPassphrase = 'passphrase of the software root made by a rollover';
let caToken: SoftHsmToken;
let rootToken: SoftHsmToken;
let pinFile: string;
let rootPinFile: string;

/** Environment of every command: the online passphrase; no PIN or root secret unless a call gives one. */
const baseEnv = { TRELLIS_DATA: data, TRELLIS_PASSPHRASE: passphrase, TRELLIS_ROOT_PASSPHRASE: undefined, TRELLIS_NEW_ROOT_PASSPHRASE: undefined, TRELLIS_PKCS11_PIN: undefined, TRELLIS_PKCS11_ROOT_PIN: undefined };
const run = (name: string, command: Parameters<typeof runInProcess>[1], args: string[], env: Record<string, string | undefined> = {}) => runInProcess(name, command, args, { ...baseEnv, ...env });
const pins = () => ['--pkcs11-pin-file', pinFile, '--pkcs11-root-pin-file', rootPinFile];

/** The CA's certificate written to a PEM file, and its keyRef. */
async function caOf(id: string): Promise<{ pem: string; keyRef: { type: string; token?: string; keyId: string; offline?: boolean } }> {
  const instance = await openInstance(data);
  try {
    const ca = instance.cas.find((c) => c.id === id)!;
    const pem = tmp.file(`${id}.pem`);
    fs.writeFileSync(pem, toPem('CERTIFICATE', ca.certDer));
    return { pem, keyRef: JSON.parse(ca.keyRef) };
  } finally {
    await instance.close();
  }
}

/** A server leaf from issuing CA `ca`, signed in the CA token. */
async function leafOf(ca: string): Promise<string> {
  const { csrPath } = await makeCsr(tmp.dir, `leaf-${ca}`, `/CN=${ca}.example.test`, { sans: `DNS:${ca}.example.test` });
  const out = tmp.file(`leaf-${ca}.pem`);
  const r = await run('issue', cliIssue, ['--profile', 'server', '--csr', csrPath, '--ca', ca, '--out', out], { TRELLIS_PKCS11_PIN: caToken.pin });
  expect(r.code, r.stderr).toBe(0);
  return out;
}

/** `openssl verify -CAfile anchor -untrusted (the concatenation of untrusted) leaf`: its stdout and exit code. */
async function verifyWith(anchor: string, untrusted: string[], leaf: string) {
  const bundle = tmp.file(`untrusted-${path.basename(anchor)}-${path.basename(leaf)}-${untrusted.length}.pem`);
  fs.writeFileSync(bundle, untrusted.map((f) => fs.readFileSync(f, 'utf8')).join(''));
  return opensslRun(['verify', '-CAfile', anchor, '-untrusted', bundle, leaf]);
}

beforeAll(() => {
  if (!available) return;
  ({ caToken, rootToken, pinFile, rootPinFile } = caAndRootTokens(tmp, 'trellis-rollover'));
});
afterAll(() => {
  tmp.cleanup();
  removeSoftHsm();
});

describe.skipIf(!available)('ceremony root-rollover with the root in a PKCS#11 token (SoftHSM2)', () => {
  const dir = tmp.file('rollover');

  test('init --keystore pkcs11 with a root token', async () => {
    const r = await run('init', cliInit, [
      '--yes', '--json', '--keystore', 'pkcs11', '--pkcs11-module', caToken.modulePath,
      '--pkcs11-token', caToken.label, '--pkcs11-root-token', rootToken.label, ...pins(),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect((await caOf('root')).keyRef).toMatchObject({ type: 'pkcs11', token: rootToken.label, offline: true });
  });

  test('without the root token PIN the rollover stops before making anything, naming where the PIN comes from', async () => {
    const r = await run('ceremony', cliCeremony, ['root-rollover', '--id', 'root-2', '--cn', 'Trellis Root CA 2', '--out-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TRELLIS_PKCS11_ROOT_PIN');
    const wrong = await run('ceremony', cliCeremony, ['root-rollover', '--id', 'root-2', '--cn', 'Trellis Root CA 2', '--out-dir', dir], { TRELLIS_PKCS11_ROOT_PIN: 'not-the-root-pin' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`wrong PIN for PKCS#11 token "${rootToken.label}"`);
    expect(wrong.stderr).not.toContain('not-the-root-pin');
    expect(fs.existsSync(dir)).toBe(false);
    const instance = await openInstance(data);
    try {
      expect(instance.cas.some((c) => c.id === 'root-2')).toBe(false);
    } finally {
      await instance.close();
    }
  });

  test('a new root in the root token: cross certificates both ways; with either root alone, chains under both verify', async () => {
    const r = await run('ceremony', cliCeremony, ['root-rollover', '--id', 'root-2', '--cn', 'Trellis Root CA 2', '--o', 'Trellis', '--out-dir', dir, '--json', '--pkcs11-root-pin-file', rootPinFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ old: 'root', new: 'root-2' });
    const [newRoot, newByOld, oldByNew] = ['root.pem', 'cross-new-by-old.pem', 'cross-old-by-new.pem'].map((f) => path.join(dir, f)) as [string, string, string];
    const names = (f: string) => openssl('x509', '-in', f, '-noout', '-subject', '-issuer', '-nameopt', 'RFC2253');
    expect(await names(newByOld)).toBe('subject=CN=Trellis Root CA 2,O=Trellis\nissuer=CN=Trellis Root CA,O=Trellis\n');
    expect(await names(oldByNew)).toBe('subject=CN=Trellis Root CA,O=Trellis\nissuer=CN=Trellis Root CA 2,O=Trellis\n');

    const oldRoot = await caOf('root');
    const created = await caOf('root-2');
    expect(created.keyRef).toMatchObject({ type: 'pkcs11', token: rootToken.label, offline: true });
    expect((await openssl('x509', '-in', created.pem, '-noout', '-fingerprint', '-sha256'))).toBe(await openssl('x509', '-in', newRoot, '-noout', '-fingerprint', '-sha256'));

    // A leaf under the old root: the old root alone, and the new root alone through cross-old-by-new.
    const issuing1 = (await caOf('issuing-1')).pem;
    const oldLeaf = await leafOf('issuing-1');
    expect((await verifyWith(oldRoot.pem, [issuing1], oldLeaf)).stdout).toMatch(/: OK$/m);
    expect((await verifyWith(newRoot, [oldByNew, issuing1], oldLeaf)).stdout).toMatch(/: OK$/m);
    expect((await verifyWith(newRoot, [issuing1], oldLeaf)).code).not.toBe(0);

    // A leaf under the new root (an issuing CA it signs in the token): the new root alone, and the old root alone through cross-new-by-old.
    const made = await run('ceremony', cliCeremony, ['issuing', '--id', 'issuing-new', '--cn', 'Trellis Issuing CA N', '--parent', 'root-2', ...pins()]);
    expect(made.code, made.stderr).toBe(0);
    const issuingNew = (await caOf('issuing-new')).pem;
    const newLeaf = await leafOf('issuing-new');
    expect((await verifyWith(newRoot, [issuingNew], newLeaf)).stdout).toMatch(/: OK$/m);
    expect((await verifyWith(oldRoot.pem, [newByOld, issuingNew], newLeaf)).stdout).toMatch(/: OK$/m);
    expect((await verifyWith(oldRoot.pem, [issuingNew], newLeaf)).code).not.toBe(0);

    // Both root keys are in the root token, sensitive and never extractable; the CA token holds no root key.
    const listed = parseObjectList(await pkcs11Tool(rootToken, '--list-objects')).filter((o) => o.kind.startsWith('Private Key Object'));
    expect(listed.map((o) => o.fields.label).sort()).toEqual([oldRoot.keyRef.keyId, created.keyRef.keyId].sort());
    const newKey = listed.find((o) => o.fields.label === created.keyRef.keyId)!;
    expect(newKey.fields.Access).toMatch(/\bsensitive\b/);
    expect(newKey.fields.Access).toMatch(/always sensitive/);
    expect(newKey.fields.Access).toMatch(/never extractable/);
    expect(newKey.fields.Usage).toBe('sign');
    const caKeys = parseObjectList(await pkcs11Tool(caToken, '--list-objects')).map((o) => o.fields.label);
    expect(caKeys).not.toContain(created.keyRef.keyId);
  }, 120_000);

  test('ca renew under the new root in the token (its PIN): the issuing CA keeps its key; its old leaf verifies under the new root alone', async () => {
    const r = await run('ca', cliCa, ['renew', '--ca', 'issuing-1', '--parent', 'root-2', '--json', '--pkcs11-root-pin-file', rootPinFile]);
    expect(r.code, r.stderr).toBe(0);
    const renewed = (await caOf('issuing-1')).pem;
    expect(await openssl('x509', '-in', renewed, '-noout', '-issuer', '-nameopt', 'RFC2253')).toBe('issuer=CN=Trellis Root CA 2,O=Trellis\n');
    expect((await verifyWith(path.join(dir, 'root.pem'), [renewed], tmp.file('leaf-issuing-1.pem'))).stdout).toMatch(/: OK$/m);
  }, 60_000);

  test('--keystore software: the new root is a software key under its own passphrase; the cross certificates verify under each root', async () => {
    const softDir = tmp.file('rollover-software');
    const noPassphrase = await run('ceremony', cliCeremony, ['root-rollover', '--id', 'root-3', '--cn', 'Trellis Root CA 3', '--keystore', 'software', '--out-dir', softDir], { TRELLIS_PKCS11_ROOT_PIN: rootToken.pin });
    expect(noPassphrase.code).toBe(1);
    expect(noPassphrase.stderr).toContain('TRELLIS_NEW_ROOT_PASSPHRASE');
    const r = await run('ceremony', cliCeremony, ['root-rollover', '--id', 'root-3', '--cn', 'Trellis Root CA 3', '--keystore', 'software', '--out-dir', softDir], { TRELLIS_PKCS11_ROOT_PIN: rootToken.pin, TRELLIS_NEW_ROOT_PASSPHRASE: newRootPassphrase });
    expect(r.code, r.stderr).toBe(0);
    const created = await caOf('root-3');
    expect(created.keyRef).toMatchObject({ type: 'software', offline: true });
    const oldRoot = (await caOf('root')).pem;
    const newRoot = path.join(softDir, 'root.pem');
    await expect(openssl('verify', '-CAfile', oldRoot, path.join(softDir, 'cross-new-by-old.pem'))).resolves.toMatch(/: OK$/m);
    await expect(openssl('verify', '-CAfile', newRoot, path.join(softDir, 'cross-old-by-new.pem'))).resolves.toMatch(/: OK$/m);
    expect((await opensslRun(['verify', '-CAfile', newRoot, path.join(softDir, 'cross-new-by-old.pem')])).code).not.toBe(0);
    // The new root's key opens with its passphrase: it signs an issuing CA.
    const made = await run('ceremony', cliCeremony, ['issuing', '--id', 'issuing-3', '--cn', 'Trellis Issuing CA 3', '--parent', 'root-3', '--pkcs11-pin-file', pinFile], { TRELLIS_ROOT_PASSPHRASE: newRootPassphrase });
    expect(made.code, made.stderr).toBe(0);
    await expect(openssl('verify', '-CAfile', newRoot, (await caOf('issuing-3')).pem)).resolves.toMatch(/: OK$/m);
  }, 120_000);
});
