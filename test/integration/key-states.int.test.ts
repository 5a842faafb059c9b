/**
 * CA key states (NIST SP 800-57, issue 11) from the CLI, as an operator runs
 * them: `trellis key list`, suspend (signs nothing), activate, deactivate
 * (no certificates, still CRLs), compromise of an issuing CA (its certificate
 * revoked as cACompromise on the root's CRL, read back with OpenSSL) and
 * destroy (the key is wiped and cannot come back; the CA's certificate stays).
 * init and the first `key list` run the compiled CLI in a child process; the
 * rest runs the same command modules in this process (no Node start per call:
 * cli.int.test.ts covers issue, crl and ca as a process).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { keystoreFor, openInstance } from '../../src/cmd/instance.js';
import { isPkiError } from '../../src/errors/pki-error.js';
import * as ca from '../../src/cmd/commands/ca.js';
import * as crl from '../../src/cmd/commands/crl.js';
import * as issueCommand from '../../src/cmd/commands/issue.js';
import * as key from '../../src/cmd/commands/key.js';
import { cliFor, type CliEnv } from '../helpers/cli.js';
import { runInProcess } from '../helpers/cli-in-process.js';
import { makeCsr, openssl, tempDir } from '../helpers/openssl.js';

const tmp = tempDir('trellis-key-states-');
const data = tmp.file('data');
const passphrase = 'online passphrase for key states';
const processCli = cliFor(data, passphrase, { TRELLIS_ROOT_PASSPHRASE: undefined });
const modules = { ca, crl, issue: issueCommand, key } as const;
/** `trellis <command> …` run in this process, with the child's environment. */
const trellis = (args: string[], env: CliEnv = {}) => {
  const [name, ...rest] = args as [keyof typeof modules, ...string[]];
  return runInProcess(name, modules[name], rest, { TRELLIS_DATA: data, TRELLIS_PASSPHRASE: passphrase, TRELLIS_ROOT_PASSPHRASE: undefined, ...env });
};
let rootPassphrase: string;
let csrPath: string;

const issue = () => trellis(['issue', '--profile', 'server', '--csr', csrPath, '--ca', 'issuing-1']);
const keyList = async (run = trellis) => {
  const r = await run(['key', 'list', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { ca: string; state: string; where: string; algorithm: string }[];
};
const stateOf = async (caId: string, run = trellis) => (await keyList(run)).find((k) => k.ca === caId)!.state;

beforeAll(async () => {
  const r = await processCli(['init', '--yes', '--json']);
  expect(r.code, r.stderr).toBe(0);
  rootPassphrase = JSON.parse(r.stdout).generatedRootPassphrase;
  csrPath = (await makeCsr(tmp.dir, 'leaf', '/CN=keys.example.test', { sans: 'DNS:keys.example.test' })).csrPath;
}, 60_000);
afterAll(() => tmp.cleanup());

describe('trellis key', () => {
  test('list: every CA key with its algorithm, where it lives and its state', async () => {
    const keys = await keyList(processCli);
    expect(keys.map((k) => [k.ca, k.state])).toEqual([
      ['issuing-1', 'active'],
      ['root', 'active'],
    ]);
    expect(keys.find((k) => k.ca === 'root')).toMatchObject({ algorithm: 'ecdsa-p384', where: 'software, offline (root passphrase)' });
    expect(keys.find((k) => k.ca === 'issuing-1')).toMatchObject({ algorithm: 'ecdsa-p256', where: 'software, online' });
  });

  test('a transition needs the secret of the keystore holding the key; the table refuses the rest', async () => {
    const wrong = await trellis(['key', 'suspend', '--ca', 'issuing-1'], { TRELLIS_PASSPHRASE: 'not the passphrase' });
    expect(wrong.code).not.toBe(0);
    expect(await stateOf('issuing-1')).toBe('active');
    const bad = await trellis(['key', 'activate', '--ca', 'issuing-1']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('the key of CA "issuing-1" is already active');
    // The root is a root operation: the online passphrase is not enough.
    const root = await trellis(['key', 'suspend', '--ca', 'root']);
    expect(root.code).not.toBe(0);
    expect(await stateOf('root')).toBe('active');
  });

  test('suspended signs nothing, with an error naming the state; activated signs again', async () => {
    expect((await trellis(['key', 'suspend', '--ca', 'issuing-1', '--reason', 'audit finding'])).code).toBe(0);
    expect(await stateOf('issuing-1')).toBe('suspended');
    const refused = await issue();
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('CA "issuing-1" cannot sign certificates: its key is suspended');
    const crl = await trellis(['crl', 'publish', '--out', tmp.file('crl-suspended')]);
    expect(crl.code, crl.stderr).toBe(0);
    expect(crl.stderr).toContain('CA "issuing-1" skipped: its key is suspended, it signs no CRL');
    expect(fs.existsSync(tmp.file('crl-suspended/issuing-1'))).toBe(false);
    expect((await trellis(['key', 'activate', '--ca', 'issuing-1'])).code).toBe(0);
    const ok = await issue();
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('-----BEGIN CERTIFICATE-----');
  });

  test('deactivated: no new certificates, but CRLs still signed (OpenSSL verifies them)', async () => {
    expect((await trellis(['key', 'deactivate', '--ca', 'issuing-1'])).code).toBe(0);
    const refused = await issue();
    expect(refused.stderr).toContain('CA "issuing-1" cannot sign certificates: its key is deactivated');
    const out = tmp.file('crl-deactivated');
    const crl = await trellis(['crl', 'publish', '--out', out]);
    expect(crl.code, crl.stderr).toBe(0);
    const crlFile = path.join(out, 'issuing-1', 'full.crl');
    expect(fs.existsSync(crlFile)).toBe(true);
    fs.writeFileSync(tmp.file('issuing.pem'), (await trellis(['ca', 'cert', '--ca', 'issuing-1'])).stdout);
    expect(await openssl('crl', '-inform', 'DER', '-in', crlFile, '-CAfile', tmp.file('issuing.pem'), '-noout')).toContain('verify OK');
  });

  test('compromise of an issuing CA is a root operation: its certificate is revoked (cACompromise) on the root CRL', async () => {
    const noRoot = await trellis(['key', 'compromise', '--ca', 'issuing-1']);
    expect(noRoot.code).not.toBe(0);
    expect(await stateOf('issuing-1')).toBe('deactivated');
    const r = await trellis(['key', 'compromise', '--ca', 'issuing-1', '--json'], { TRELLIS_ROOT_PASSPHRASE: rootPassphrase });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ca: 'issuing-1', from: 'deactivated', to: 'compromised' });
    const crl = await trellis(['crl', 'publish', '--root', '--out', tmp.file('arl')], { TRELLIS_ROOT_PASSPHRASE: rootPassphrase });
    expect(crl.code, crl.stderr).toBe(0);
    const text = await openssl('crl', '-inform', 'DER', '-in', path.join(tmp.file('arl'), 'root', 'full.crl'), '-noout', '-text');
    expect(text).toContain(`Serial Number: ${JSON.parse(r.stdout).revokedCertificate.toUpperCase()}`);
    expect(text).toContain('CA Compromise');
    // A compromised key signs nothing, not even CRLs.
    const issuingCrl = await trellis(['crl', 'publish', '--out', tmp.file('crl-compromised')]);
    expect(issuingCrl.stderr).toContain('CA "issuing-1" skipped: its key is compromised, it signs no CRL');
  });

  test('destroy wipes the key: it cannot come back from the live instance; the CA certificate stays', async () => {
    const r = await trellis(['key', 'destroy', '--ca', 'issuing-1']);
    expect(r.code, r.stderr).toBe(0);
    expect(await stateOf('issuing-1')).toBe('destroyed');
    const instance = await openInstance(data);
    try {
      const ca = instance.cas.find((c) => c.id === 'issuing-1')!;
      const keyId = JSON.parse(ca.keyRef).keyId as string;
      const blob = await instance.store.keyBlobs.find(keyId);
      expect(blob?.state).toBe('destroyed');
      expect(blob?.envelope).toBe('');
      const err = await keystoreFor(instance, passphrase).load(keyId).catch((e: unknown) => e);
      expect(isPkiError(err)).toBe(true);
      expect(ca.certDer.length).toBeGreaterThan(0);
      const history = await instance.store.cas.keyHistory('issuing-1');
      expect(history.map((h) => h.to)).toEqual(['suspended', 'active', 'deactivated', 'compromised', 'destroyed']);
      expect(history[0]).toMatchObject({ from: 'active', reason: 'audit finding' });
    } finally {
      await instance.close();
    }
    expect((await issue()).stderr).toContain('CA "issuing-1" cannot sign certificates: its key is destroyed');
    const again = await trellis(['key', 'activate', '--ca', 'issuing-1']);
    expect(again.stderr).toContain('cannot go from destroyed to active (destroyed is final)');
  });
});
