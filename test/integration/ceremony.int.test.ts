/**
 * Ceremonies: operator-chosen roots and issuing CAs, and the two-step flow for an offline root signed by OpenSSL.
 * The commands run in this process (the same modules as the CLI, no Node start per call; cli.int.test.ts runs
 * init, ceremony, issue, ca and audit as a process).
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as audit from '../../src/cmd/commands/audit.js';
import * as ca from '../../src/cmd/commands/ca.js';
import * as ceremony from '../../src/cmd/commands/ceremony.js';
import * as init from '../../src/cmd/commands/init.js';
import * as issue from '../../src/cmd/commands/issue.js';
import { runInProcess } from '../helpers/cli-in-process.js';
import { makeCsr, openssl, tempDir } from '../helpers/openssl.js';

const tmp = tempDir('trellis-ceremony-');
const data = tmp.file('data');
const passphrase = 'ceremony passphrase 0123';
const rootPassphrase = 'ceremony root passphrase 4567';

const modules = { audit, ca, ceremony, init, issue } as const;
/** `trellis <command> …` run in this process, with the passphrases and data directory in its environment. */
function trellis(name: keyof typeof modules, ...args: string[]) {
  return runInProcess(name, modules[name], args, { TRELLIS_PASSPHRASE: passphrase, TRELLIS_ROOT_PASSPHRASE: rootPassphrase, TRELLIS_DATA: data });
}

beforeAll(async () => {
  expect((await trellis('init', '--yes')).code).toBe(0);
});
afterAll(() => tmp.cleanup());

describe('ceremonies', () => {
  test('a second root with operator choices: P-256, 10 years, path length 1, C and O', async () => {
    const r = await trellis('ceremony', 'root', '--id', 'root-b', '--cn', 'Second Root', '--o', 'Example', '--c', 'DE', '--algorithm', 'ecdsa-p256', '--validity', '10y', '--path-len', '1', '--json');
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ id: 'root-b', role: 'root' });
    fs.writeFileSync(tmp.file('root-b.pem'), (await trellis('ca', 'cert', '--ca', 'root-b')).stdout);
    const text = await openssl('x509', '-in', tmp.file('root-b.pem'), '-noout', '-text');
    expect(text).toMatch(/Subject: C ?= ?DE, O ?= ?Example, CN ?= ?Second Root/);
    expect(text).toMatch(/CA:TRUE, pathlen:1/);
    expect(text).toMatch(/ASN1 OID: prime256v1/);
    await expect(openssl('verify', '-x509_strict', '-CAfile', tmp.file('root-b.pem'), tmp.file('root-b.pem'))).resolves.toMatch(/: OK$/m);
  });

  test('an issuing CA under the second root, then issuance picks it by flag', async () => {
    const r = await trellis('ceremony', 'issuing', '--id', 'issuing-b', '--cn', 'Issuing B', '--parent', 'root-b', '--algorithm', 'ecdsa-p384');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { csrPath } = await makeCsr(tmp.dir, 'b-leaf', '/CN=b.example.test');
    const issued = await trellis('issue', '--profile', 'server', '--csr', csrPath, '--ca', 'issuing-b');
    expect(issued.code).toBe(0);
    fs.writeFileSync(tmp.file('b-chain.pem'), issued.stdout);
    await expect(openssl('verify', '-x509_strict', '-CAfile', tmp.file('root-b.pem'), '-untrusted', tmp.file('b-chain.pem'), tmp.file('b-chain.pem'))).resolves.toMatch(/: OK$/m);
    // the default issuer is unchanged
    const dflt = await trellis('issue', '--profile', 'server', '--csr', csrPath, '--json');
    expect(JSON.parse(dflt.stdout).issuer).toBe('issuing-1');
  });

  test('offline root: CSR out, certificate signed by OpenSSL in; refused unless it chains and carries our key', async () => {
    // The external root, kept by OpenSSL.
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', tmp.file('ext-root.key'), '-subj', '/CN=External Root', '-days', '3650', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', tmp.file('ext-root.pem'));
    const step1 = await trellis('ceremony', 'issuing', '--id', 'issuing-ext', '--cn', 'Issuing Ext', '--csr-out', tmp.file('ext.csr'));
    expect(step1.code).toBe(0);
    await expect(openssl('req', '-in', tmp.file('ext.csr'), '-noout', '-verify')).resolves.toMatch(/verify OK/i);
    fs.writeFileSync(tmp.file('ext.cnf'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
    await openssl('x509', '-req', '-in', tmp.file('ext.csr'), '-CA', tmp.file('ext-root.pem'), '-CAkey', tmp.file('ext-root.key'), '-set_serial', '0x4a3b2c1d0e0f1a2b', '-days', '1825', '-sha384', '-extfile', tmp.file('ext.cnf'), '-out', tmp.file('ext-issuing.pem'));

    // A certificate for another key is refused.
    await openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file('other.key'), '-subj', '/CN=Other', '-out', tmp.file('other.csr'));
    await openssl('x509', '-req', '-in', tmp.file('other.csr'), '-CA', tmp.file('ext-root.pem'), '-CAkey', tmp.file('ext-root.key'), '-set_serial', '0x4a3b2c1d0e0f1a2c', '-days', '30', '-extfile', tmp.file('ext.cnf'), '-out', tmp.file('other-issuing.pem'));
    const wrongKey = await trellis('ceremony', 'issuing', '--id', 'issuing-ext', '--import-cert', tmp.file('other-issuing.pem'), '--root-cert', tmp.file('ext-root.pem'));
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/does not carry the key generated for this CA/);

    // A certificate that does not chain to the given root is refused.
    const wrongRoot = await trellis('ceremony', 'issuing', '--id', 'issuing-ext', '--import-cert', tmp.file('ext-issuing.pem'), '--root-cert', tmp.file('root-b.pem'));
    expect(wrongRoot.code).toBe(1);
    expect(wrongRoot.code).toBe(1);
    expect(wrongRoot.stderr).toMatch(/issuer does not match|does not verify/);

    const ok = await trellis('ceremony', 'issuing', '--id', 'issuing-ext', '--import-cert', tmp.file('ext-issuing.pem'), '--root-cert', tmp.file('ext-root.pem'));
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const { csrPath } = await makeCsr(tmp.dir, 'ext-leaf', '/serialNumber=EXT-1');
    const leaf = await trellis('issue', '--profile', 'device', '--csr', csrPath, '--ca', 'issuing-ext');
    expect(leaf.code).toBe(0);
    fs.writeFileSync(tmp.file('ext-chain.pem'), leaf.stdout);
    await expect(openssl('verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', tmp.file('ext-root.pem'), '-untrusted', tmp.file('ext-chain.pem'), tmp.file('ext-chain.pem'))).resolves.toMatch(/: OK$/m);
  });

  test('ceremony outputs are never overwritten', async () => {
    fs.writeFileSync(tmp.file('exists.csr'), 'keep me');
    const r = await trellis('ceremony', 'issuing', '--id', 'issuing-z', '--cn', 'Z', '--csr-out', tmp.file('exists.csr'));
    expect(r.code).toBe(1);
    expect(fs.readFileSync(tmp.file('exists.csr'), 'utf8')).toBe('keep me');
  });

  test('every ceremony step is in the audit log, and the chain verifies', async () => {
    const r = await trellis('audit', 'verify', '--json');
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true });
  });
});
