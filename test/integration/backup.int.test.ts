/**
 * The backup drill: an instance with over a thousand certificates, one revoked,
 * CRLs published; `trellis backup create`; the instance directory deleted;
 * `trellis backup restore` into a new directory; then a new certificate
 * (openssl verify against the root), the earlier revocation still revoked over
 * OCSP (openssl ocsp against the served instance), CRL numbers above the old
 * ones, no serial reused. A tampered byte, a truncated file and a wrong
 * passphrase are refused with nothing written; a non-empty directory or
 * database is refused. The same restore into PostgreSQL.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readBackupHeader } from '../../src/backup/import.js';
import { run } from '../../src/cmd/commands/backup.js';
import { crlPublisher } from '../../src/cmd/crl-publishing.js';
import { serve } from '../../src/cmd/server.js';
import { unlockIssuers, keystoreFor, openInstance, registrationAuthority, type Instance } from '../../src/cmd/instance.js';
import { publishCrlFiles } from '../../src/crl/files.js';
import { isPkiError } from '../../src/errors/pki-error.js';
import { silentLogger } from '../../src/http/log.js';
import { toPem } from '../../src/pki/pem.js';
import { RevocationAuthority } from '../../src/ra/revoke.js';
import { createToken } from '../../src/tokens/tokens.js';
import { makeCsr, openssl, opensslRun, tempDir } from '../helpers/openssl.js';
import { freshPgDatabase, pgAvailable } from '../helpers/postgres.js';
import { testPassphrase, testPki, testRootPassphrase, type TestPki } from '../helpers/test-pki.js';

// Three pages of certificates (store/backup-tables.ts reads 500 rows a page) and
// more of audit events: the export's and the restore's paging is crossed at
// least twice per table, in about half the time 3000 took.
const bulk = 1100;
const tmp = tempDir('trellis-backup-');
const backupFile = tmp.file('instance.trellis-backup');
let pki: TestPki;
let revoked: Awaited<ReturnType<TestPki['issue']>>;
let good: Awaited<ReturnType<TestPki['issue']>>;
let serialsBefore: Set<string>;
let crlNumbersBefore: Map<string, bigint>;
let rowsBefore: number;
/** The revoked certificate's record as the lost instance stored it (every type of column: text, octets, times, integers). */
let revokedRecord: unknown;

/** Runs `trellis backup …` in this process with the root passphrase in the environment. */
async function backup(args: string[], rootPassphrase = testRootPassphrase): Promise<number> {
  const saved = process.env.TRELLIS_ROOT_PASSPHRASE;
  process.env.TRELLIS_ROOT_PASSPHRASE = rootPassphrase;
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return await run(args);
  } finally {
    process.stdout.write = write;
    if (saved === undefined) delete process.env.TRELLIS_ROOT_PASSPHRASE;
    else process.env.TRELLIS_ROOT_PASSPHRASE = saved;
  }
}

async function refused(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a refusal');
}

/** Every serial in an instance's SQLite database, read without Trellis. */
function serialsIn(dataDir: string): Set<string> {
  const db = new Database(path.join(dataDir, 'trellis.db'), { readonly: true });
  try {
    return new Set((db.prepare('SELECT "serialHex" FROM "Certificate"').all() as { serialHex: string }[]).map((r) => r.serialHex));
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  delete process.env.TRELLIS_DATABASE_URL;
  pki = await testPki();
  good = await pki.issue('device', (await makeCsr(pki.dir, 'bk-good', '/serialNumber=bk-good')).csrPem, 'bk-good');
  revoked = await pki.issue('device', (await makeCsr(pki.dir, 'bk-bad', '/serialNumber=bk-bad')).csrPem, 'bk-bad');
  // More than two pages from one CSR: the backup streams them page by page.
  const { csrPem } = await makeCsr(pki.dir, 'bk-bulk', '/serialNumber=bk-bulk');
  for (let i = 0; i < bulk; i += 100) await Promise.all(Array.from({ length: Math.min(100, bulk - i) }, () => pki.ra.requestCertificate({ profile: 'device', csr: csrPem, requestedVia: 'cli', requestedBy: 'test' })));
  const publisher = crlPublisher(pki.instance, pki.issuers.all());
  const ra = new RevocationAuthority({ certificates: pki.instance.store.certificates, audit: pki.instance.audit, clock: pki.instance.clock, listeners: [publisher] });
  await ra.revoke({ serialHex: revoked.serialHex, reason: 'keyCompromise', by: 'test', via: 'cli' });
  await publishCrlFiles(publisher, tmp.file('crl'), { regenerate: true });
  await createToken(pki.instance.store.tokens, 'admin', 'backup-test');
  revokedRecord = await pki.instance.store.certificates.findBySerial('issuing-1', revoked.serialHex);
  expect(revokedRecord).toMatchObject({ status: 'revoked', revocationReason: 1 });
  crlNumbersBefore = new Map();
  for (const ca of pki.instance.cas) for (const c of await pki.instance.store.crls.latestAll(ca.id)) crlNumbersBefore.set(ca.id, c.crlNumber > (crlNumbersBefore.get(ca.id) ?? 0n) ? c.crlNumber : crlNumbersBefore.get(ca.id)!);
  expect(crlNumbersBefore.get('issuing-1')).toBeGreaterThan(0n);
}, 600_000);
afterAll(async () => {
  await pki?.close();
  tmp.cleanup();
});

describe('backup create', () => {
  test('writes a 0600 file whose header says what it is, audited with its SHA-256 and row counts (no secrets)', async () => {
    const started = Date.now();
    expect(await backup(['create', '--out', backupFile, '--data', pki.dataDir])).toBe(0);
    const seconds = (Date.now() - started) / 1000;
    expect(fs.statSync(backupFile).mode & 0o777).toBe(0o600);
    const { header } = readBackupHeader(backupFile);
    expect(header.instance.roots.map((r) => r.id)).toEqual(['root']);
    expect(header.instance.roots[0]!.skiHex).toBe(pki.instance.cas.find((c) => c.role === 'root')!.skiHex);
    expect(header.tokenKeys).toEqual([]);
    const event = (await pki.instance.store.audit.last())!;
    expect(event.type).toBe('backup.created');
    const data = JSON.parse(event.data) as { sha256: string; rows: Record<string, number> };
    expect(data.sha256).toBe(createHash('sha256').update(fs.readFileSync(backupFile)).digest('hex'));
    expect(data.rows.Certificate).toBeGreaterThanOrEqual(bulk + 2);
    expect(data.rows.KeyBlob).toBeGreaterThanOrEqual(3);
    expect(event.data).not.toContain(testRootPassphrase);
    rowsBefore = data.rows.Certificate!;
    // The plaintext never appears: neither a certificate's DER nor a profile's text.
    const bytes = fs.readFileSync(backupFile);
    expect(bytes.includes(good.certDer.subarray(0, 64))).toBe(false);
    expect(bytes.includes(Buffer.from('description: TLS server certificate'))).toBe(false);
    process.stderr.write(`backup of ${rowsBefore} certificates: ${bytes.length} bytes in ${seconds.toFixed(1)} s\n`);
  });

  test('never overwrites a file; a wrong root passphrase makes no backup', async () => {
    expect(isPkiError(await refused(backup(['create', '--out', backupFile, '--data', pki.dataDir])), 'conflict')).toBe(true);
    const other = tmp.file('wrong.trellis-backup');
    expect(isPkiError(await refused(backup(['create', '--out', other, '--data', pki.dataDir], 'not the root passphrase')), 'badPassphrase')).toBe(true);
    expect(fs.existsSync(other)).toBe(false);
  });
});

describe('backup restore refuses, writing nothing', () => {
  const target = tmp.file('refused');
  test.each([
    ['a wrong passphrase', 'badPassphrase', (f: Buffer) => f, 'not the root passphrase'],
    ['one flipped byte in the ciphertext', 'keyIntegrity', (f: Buffer) => ((f[Math.floor(f.length / 2)]! ^= 0x01), f), testRootPassphrase],
    ['one flipped byte in the GCM tag', 'keyIntegrity', (f: Buffer) => ((f[f.length - 1]! ^= 0x80), f), testRootPassphrase],
    ['an edited header (created-at)', 'keyIntegrity', (f: Buffer) => Buffer.from(f.toString('latin1').replace(/"createdAt":"(\d)/, (_m, d: string) => `"createdAt":"${(Number(d) + 1) % 10}`), 'latin1'), testRootPassphrase],
    ['a truncated file', 'keyIntegrity', (f: Buffer) => f.subarray(0, f.length - 1000), testRootPassphrase],
    ['a file that is not a backup', 'malformed', () => Buffer.from('hello'), testRootPassphrase],
  ] as const)('%s', async (_name, type, edit, passphrase) => {
    const file = tmp.file(`edited-${type}-${Math.random()}.bak`);
    fs.writeFileSync(file, edit(Buffer.from(fs.readFileSync(backupFile))));
    const err = await refused(backup(['restore', '--in', file, '--data', target], passphrase));
    expect(isPkiError(err, type), String(err)).toBe(true);
    expect(fs.existsSync(target)).toBe(false);
  });

  test('a directory that is not empty', async () => {
    fs.mkdirSync(tmp.file('full'));
    fs.writeFileSync(tmp.file('full/x'), 'x');
    const err = await refused(backup(['restore', '--in', backupFile, '--data', tmp.file('full')]));
    expect(isPkiError(err, 'conflict')).toBe(true);
    expect(err.message).toMatch(/not empty/);
    expect(fs.readdirSync(tmp.file('full'))).toEqual(['x']);
  });
});

describe('the drill: back up, lose the instance, restore, carry on', () => {
  const restored = tmp.file('restored');
  let instance: Instance;

  beforeAll(async () => {
    await pki.instance.close();
    serialsBefore = serialsIn(pki.dataDir);
    expect(serialsBefore.size).toBe(rowsBefore);
    fs.rmSync(pki.dataDir, { recursive: true, force: true });
    expect(await backup(['restore', '--in', backupFile, '--data', restored])).toBe(0);
    instance = await openInstance(restored);
  }, 300_000);
  afterAll(() => instance?.close());

  test('the restored instance holds every row; the restore is audited and the chain still verifies', async () => {
    const event = (await instance.store.audit.last())!;
    expect(event.type).toBe('backup.restored');
    const data = JSON.parse(event.data) as { rows: Record<string, number>; sha256: string };
    expect(data.rows.Certificate).toBe(rowsBefore);
    expect(data.sha256).toBe(createHash('sha256').update(fs.readFileSync(backupFile)).digest('hex'));
    expect(fs.statSync(path.join(restored, 'trellis.json')).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(restored, 'profiles', 'server.yaml'))).toBe(true);
    expect(instance.cas.map((c) => c.id).sort()).toEqual(['issuing-1', 'root']);
    expect(await instance.store.certificates.findBySerial('issuing-1', revoked.serialHex)).toEqual(revokedRecord);
  });

  test('a new certificate verifies against the old root; its serial was never used', async () => {
    const ra = registrationAuthority(instance, await unlockIssuers(instance, keystoreFor(instance, testPassphrase)));
    const { csrPem } = await makeCsr(tmp.dir, 'after', '/serialNumber=after');
    const issued = await ra.requestCertificate({ profile: 'device', csr: csrPem, requestedVia: 'cli', requestedBy: 'test' });
    fs.writeFileSync(tmp.file('after.pem'), toPem('CERTIFICATE', issued.certDer));
    await expect(openssl('verify', '-CAfile', pki.rootPemPath, '-untrusted', pki.issuingPemPath, tmp.file('after.pem'))).resolves.toMatch(/: OK$/m);
    expect(await instance.store.certificates.findBySerial('issuing-1', issued.serialHex)).toMatchObject({ status: 'valid' });
    expect(serialsBefore.has(issued.serialHex)).toBe(false);
  });

  test('OCSP still says revoked for the earlier revocation, good for the other (openssl ocsp against the served instance)', async () => {
    const server = await serve({ dataDir: restored, port: 0, passphrase: testPassphrase, log: silentLogger });
    try {
      const ocsp = (cert: string) => opensslRun(['ocsp', '-issuer', pki.issuingPemPath, '-CAfile', pki.rootPemPath, '-url', `${server.url}/ocsp`, '-no_nonce', '-cert', cert]);
      const bad = await ocsp(revoked.pemPath);
      expect(bad.stdout + bad.stderr).toMatch(/Response verify OK/);
      expect(bad.stdout).toMatch(/bk-bad\.pem: revoked/);
      expect(bad.stdout).toMatch(/Reason: keyCompromise/);
      expect((await ocsp(good.pemPath)).stdout).toMatch(/bk-good\.pem: good/);
    } finally {
      await server.close();
    }
  });

  test('CRL numbers after the restore are above every number before it (openssl reads them)', async () => {
    const registry = await unlockIssuers(instance, keystoreFor(instance, testPassphrase));
    const written = await publishCrlFiles(crlPublisher(instance, registry.all()), tmp.file('crl-after'), { regenerate: true });
    const full = written.find((w) => w.caId === 'issuing-1' && w.scope === 'full')!;
    expect(full.crlNumber).toBeGreaterThan(crlNumbersBefore.get('issuing-1')!);
    expect(full.crlNumber).toBeGreaterThanOrEqual(BigInt(Date.parse(readBackupHeader(backupFile).header.createdAt)));
    const text = await openssl('crl', '-in', full.pemPath, '-noout', '-text', '-CAfile', pki.issuingPemPath);
    expect(text).toMatch(new RegExp(`X509v3 CRL Number: \\n\\s*(0x)?${full.crlNumber.toString(16).toUpperCase()}|${full.crlNumber}`, 'i'));
    expect(text).toMatch(new RegExp(`Serial Number: ${revoked.serialHex.toUpperCase()}`));
    // The root never drew a number before; its next one is above the floor too.
    expect(await instance.store.crls.nextCrlNumber('root')).toBeGreaterThan(BigInt(Date.parse(readBackupHeader(backupFile).header.createdAt)));
  });

  test('restoring again into the restored directory is refused', async () => {
    expect(isPkiError(await refused(backup(['restore', '--in', backupFile, '--data', restored])), 'conflict')).toBe(true);
  });
});

describe.runIf(pgAvailable())('restore into PostgreSQL', () => {
  test('an empty database takes the backup; a second restore into it is refused; issuance goes on', async () => {
    const db = await freshPgDatabase();
    const dataDir = tmp.file('restored-pg');
    try {
      expect(await backup(['restore', '--in', backupFile, '--data', dataDir, '--database-url', db.url])).toBe(0);
      const instance = await openInstance(dataDir);
      try {
        expect(instance.store.kind).toBe('postgres');
        expect((await instance.store.audit.last())!.type).toBe('backup.restored');
        const ra = registrationAuthority(instance, await unlockIssuers(instance, keystoreFor(instance, testPassphrase)));
        const { csrPem } = await makeCsr(tmp.dir, 'after-pg', '/serialNumber=after-pg');
        // A new row after ids restored explicitly: the id sequences were moved past them.
        const issued = await ra.requestCertificate({ profile: 'device', csr: csrPem, requestedVia: 'cli', requestedBy: 'test' });
        fs.writeFileSync(tmp.file('after-pg.pem'), toPem('CERTIFICATE', issued.certDer));
        await expect(openssl('verify', '-CAfile', pki.rootPemPath, '-untrusted', pki.issuingPemPath, tmp.file('after-pg.pem'))).resolves.toMatch(/: OK$/m);
        expect(await instance.store.certificates.findBySerial('issuing-1', revoked.serialHex)).toEqual(revokedRecord);
        expect(await instance.store.crls.nextCrlNumber('issuing-1')).toBeGreaterThan(crlNumbersBefore.get('issuing-1')!);
      } finally {
        await instance.close();
      }
      const again = await refused(backup(['restore', '--in', backupFile, '--data', tmp.file('restored-pg-2'), '--database-url', db.url]));
      expect(isPkiError(again, 'conflict')).toBe(true);
      expect(again.message).toMatch(/database is not empty/);
      expect(fs.existsSync(tmp.file('restored-pg-2'))).toBe(false);
    } finally {
      await db.drop();
    }
  });
});
