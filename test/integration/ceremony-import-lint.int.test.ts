/**
 * An issuing-CA certificate signed by an external root is linted before it is
 * accepted (defence in depth, as Boulder does): without basicConstraints cA,
 * without keyCertSign, or with a non-critical basicConstraints it is refused with the rule ids,
 * the refusal is audited, and nothing is stored; a good one is then accepted.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cliFor } from '../helpers/cli.js';
import { openssl, tempDir } from '../helpers/openssl.js';

const tmp = tempDir('trellis-import-lint-');
const data = tmp.file('data');
const passphrase = 'import lint passphrase 0123';
const rootPassphrase = 'import lint root passphrase 4567';

const cli = cliFor(data, passphrase, { TRELLIS_ROOT_PASSPHRASE: rootPassphrase });
const trellis = (...args: string[]) => cli(args);

/** Audit events of one type, read from the database file. */
function auditEvents(type: string): { data: Record<string, unknown> }[] {
  const db = new Database(path.join(data, 'trellis.db'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT * FROM "AuditEvent" WHERE "type" = ? ORDER BY "seq"').all(type) as { data: string }[]).map((r) => ({ data: JSON.parse(r.data) as Record<string, unknown> }));
  } finally {
    db.close();
  }
}

let serial = 0x20;
/** Has the external root sign the pending CSR with these extensions (and digest). */
async function signByRoot(name: string, extensions: string, digest = '-sha384'): Promise<string> {
  fs.writeFileSync(tmp.file(`${name}.cnf`), `${extensions}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`);
  await openssl('x509', '-req', '-in', tmp.file('ext.csr'), '-CA', tmp.file('ext-root.pem'), '-CAkey', tmp.file('ext-root.key'), '-set_serial', `0x4a3b2c1d0e0f1a${(serial++).toString(16)}`, '-days', '1825', digest, '-extfile', tmp.file(`${name}.cnf`), '-out', tmp.file(`${name}.pem`));
  return tmp.file(`${name}.pem`);
}
const importCert = (file: string) => trellis('ceremony', 'issuing', '--id', 'issuing-ext', '--import-cert', file, '--root-cert', tmp.file('ext-root.pem'));

beforeAll(async () => {
  const init = await trellis('init', '--yes');
  expect(init.code, init.stderr).toBe(0);
  // The external root, kept by OpenSSL.
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', tmp.file('ext-root.key'), '-subj', '/CN=External Root', '-days', '3650', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', tmp.file('ext-root.pem'));
  const step1 = await trellis('ceremony', 'issuing', '--id', 'issuing-ext', '--cn', 'Issuing Ext', '--csr-out', tmp.file('ext.csr'));
  expect(step1.code, step1.stderr).toBe(0);
});
afterAll(() => tmp.cleanup());

describe('importing an issuing-CA certificate: linted before it is accepted', () => {
  test.each([
    ['without basicConstraints', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature', '-sha384', /e_ca_certificate_invalid \(no basicConstraints: not a CA certificate\)/, 'e_ca_certificate_invalid'],
    ['with basicConstraints cA FALSE', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyCertSign,cRLSign', '-sha384', /e_ca_certificate_invalid \(basicConstraints cA is not TRUE\)/, 'e_ca_certificate_invalid'],
    ['without keyCertSign', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,cRLSign,digitalSignature', '-sha384', /e_ca_certificate_invalid \(keyUsage without keyCertSign\)/, 'e_ca_certificate_invalid'],
    ['with a non-critical basicConstraints', 'basicConstraints=CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign', '-sha384', /e_ca_certificate_invalid \(basicConstraints MUST be critical/, 'e_ca_certificate_invalid'],
  ])('refused: %s (lintFailed with the rule id, audited, nothing stored)', async (name, exts, digest, message, rule) => {
    const before = auditEvents('ceremony.issuing.import_refused').length;
    const file = await signByRoot(name.replace(/\W+/g, '-'), exts, digest);
    const r = await importCert(file);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the certificate for issuing CA "issuing-ext" fails the CA certificate lints: /);
    expect(r.stderr).toMatch(message);
    const refused = auditEvents('ceremony.issuing.import_refused');
    expect(refused).toHaveLength(before + 1);
    expect(refused.at(-1)!.data).toMatchObject({ ca: 'issuing-ext', lint: expect.arrayContaining([rule]) });
    expect(JSON.parse((await trellis('ca', 'list', '--json')).stdout).map((c: { id: string }) => c.id)).not.toContain('issuing-ext');
  });

  test('a certificate that passes is accepted, and OpenSSL verifies the chain', async () => {
    const file = await signByRoot('good', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature');
    const r = await importCert(file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse((await trellis('ca', 'list', '--json')).stdout).map((c: { id: string }) => c.id)).toContain('issuing-ext');
    await expect(openssl('verify', '-x509_strict', '-CAfile', tmp.file('ext-root.pem'), file)).resolves.toMatch(/: OK$/m);
  });
});
