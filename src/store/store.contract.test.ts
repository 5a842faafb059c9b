/**
 * One contract for every database flavour: SQLite (a temp file) always, and
 * PostgreSQL whenever TRELLIS_TEST_DATABASE_URL names a server (each run
 * creates its own database there and drops it afterwards). Without that
 * variable the PostgreSQL block is skipped loudly, or fails when
 * TRELLIS_REQUIRE_INTEROP=1.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chainHash } from '../audit/audit-log.js';
import type { AuditBatch } from '../audit/ports.js';
import type { CaRecord, CertificateIntent, NewCaRecord } from '../ca/ports.js';
import type { CrlRecord } from '../crl/ports.js';
import { isPkiError } from '../errors/pki-error.js';
import type { Db } from './client.js';
import { migrationNames, migrationsDirOf } from './migrate.js';
import { pgAuditChain } from './audit-repository.js';
import { openStore, openStoreInternals, parseDatabaseUrl, type Store } from './open.js';
import { contractFlavours, type Flavour, type FreshDatabase } from './testing/flavours.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-store-migrations-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

/** Runs SQL on a database outside the store (to build "old" databases). */
const exec: Record<Flavour['name'], (url: string, sql: string, params?: unknown[]) => Promise<void>> = {
  async sqlite(url, sql, params = []) {
    const target = parseDatabaseUrl(url);
    if (target.kind !== 'sqlite') throw new Error(`not a SQLite URL: ${url}`);
    const db = new Database(target.file);
    try {
      db.prepare(sql).run(...params);
    } finally {
      db.close();
    }
  },
  async postgres(url, sql, params = []) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(sql, params);
    } finally {
      await c.end();
    }
  },
};

const flavours = contractFlavours('store contract').map((f) => ({ ...f, exec: exec[f.name] }));

// ---- fixtures -------------------------------------------------------------

const t0 = new Date('2026-01-02T03:04:05.678Z');
const later = (seconds: number) => new Date(t0.getTime() + seconds * 1000);
const serial = () => randomBytes(16).toString('hex');

function caFixture(id: string, role: CaRecord['role'] = 'issuing'): NewCaRecord {
  return {
    id,
    name: `${id} name`,
    role,
    parentId: null,
    // Small Buffers come from Node's shared pool: a view with an offset.
    certDer: Buffer.from(`cert of ${id}`),
    subject: `CN=${id}`,
    skiHex: randomBytes(20).toString('hex'),
    keyRef: JSON.stringify({ type: 'software', keyId: `key-${id}` }),
    notBefore: t0,
    notAfter: later(86_400 * 365),
  };
}

function intent(issuerId: string, over: Partial<CertificateIntent> = {}): CertificateIntent {
  return {
    issuerId,
    serialHex: serial(),
    profile: 'server',
    subject: 'CN=device.example.test',
    sans: JSON.stringify([{ type: 'dns', value: 'device.example.test' }]),
    notBefore: t0,
    notAfter: later(86_400 * 90),
    lintDer: randomBytes(700),
    crlShard: 3,
    requestedVia: 'api',
    requestedBy: 'token-1',
    keyId: null,
    deviceId: null,
    ...over,
  };
}

const issued = (i: CertificateIntent, at = later(1)) => ({ issuerId: i.issuerId, serialHex: i.serialHex, der: randomBytes(900), issuedAt: at });
/** A completion that appends no audit event (the tests of the certificate rows alone). */
const noAudit: AuditBatch = { drafts: [], chain: chainHash };

async function rejectsWith(p: Promise<unknown>, type: 'conflict' | 'notFound' | 'malformed'): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a ${type} PkiError`).toBeDefined();
  expect(isPkiError(err, type), `expected a ${type} PkiError, got ${String(err)}`).toBe(true);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A copy of the flavour's migrations directory, optionally only its first `n` migrations. */
function migrationsCopy(kind: Flavour['name'], n?: number): string {
  const src = migrationsDirOf(kind);
  const dst = fs.mkdtempSync(path.join(tmpRoot, 'migrations-'));
  fs.copyFileSync(path.join(src, 'migration_lock.toml'), path.join(dst, 'migration_lock.toml'));
  for (const name of migrationNames(src).slice(0, n)) fs.cpSync(path.join(src, name), path.join(dst, name), { recursive: true });
  return dst;
}

function addMigration(dir: string, name: string, sql: string): void {
  fs.mkdirSync(path.join(dir, name));
  fs.writeFileSync(path.join(dir, name, 'migration.sql'), sql);
}

// ---- the contract ---------------------------------------------------------

describe.each(flavours)('store contract: $name', (flavour) => {
  let fresh: FreshDatabase;
  let store: Store;
  let db: Db;
  const issuer = caFixture(`ca-${flavour.name}`);
  const other = caFixture(`other-${flavour.name}`);

  beforeAll(async () => {
    fresh = await flavour.fresh();
    ({ store, db } = await openStoreInternals(fresh.url));
    await store.cas.insert(issuer);
    await store.cas.insert(other);
  });
  afterAll(async () => {
    await store?.close();
    await fresh?.drop();
  });

  describe('migrations', () => {
    test('a new database gets every migration; applying again changes nothing', async () => {
      const all = migrationNames(migrationsDirOf(flavour.name));
      expect(await store.migrationStatus()).toEqual({ applied: all, pending: [], failed: [], edited: [], unknown: [] });
      expect(await store.migrate()).toEqual([]);
      const again = await openStore(fresh.url);
      await again.close();
      expect((await store.migrationStatus()).applied).toEqual(all);
    });

    test('an older database is upgraded in place and keeps its rows', async () => {
      const db2 = await flavour.fresh();
      try {
        // Step 1: a database made by the first release (first migration only).
        const dir = migrationsCopy(flavour.name, 1);
        const old = await openStore(db2.url, { migrationsDir: dir });
        expect((await old.migrationStatus()).applied).toHaveLength(1);
        await old.close();
        // Step 2: rows written by that release, with the columns it had.
        const ts = flavour.name === 'sqlite' ? '2026-01-02T03:04:05.678+00:00' : '2026-01-02 03:04:05.678';
        await flavour.exec(db2.url, `INSERT INTO "CertificateAuthority" ("id","name","role","certDer","subject","skiHex","keyRef","notBefore","notAfter","updatedAt") VALUES ('old-ca','Old CA','issuing',$1,'CN=Old','ab','{}','${ts}','${ts}','${ts}')`.replace('$1', flavour.name === 'sqlite' ? "x'3082'" : "'\\x3082'::bytea"));
        await flavour.exec(db2.url, `INSERT INTO "Certificate" ("issuerId","serialHex","profile","subject","sans","notBefore","notAfter","status","crlShard","requestedVia") VALUES ('old-ca','0a0b','server','CN=x','[]','${ts}','${ts}','valid',0,'cli')`);
        // Step 3: every current migration plus one more, made for this test only.
        const upgraded = migrationsCopy(flavour.name);
        addMigration(upgraded, '99990101000000_test_probe', 'CREATE TABLE "UpgradeProbe" ("id" INTEGER NOT NULL PRIMARY KEY);\nALTER TABLE "Certificate" ADD COLUMN "probe" TEXT;\n');
        const now = await openStore(db2.url, { migrationsDir: upgraded, migrate: false });
        const expected = migrationNames(upgraded).slice(1);
        expect((await now.migrationStatus()).pending).toEqual(expected);
        expect(await now.migrate()).toEqual(expected);
        expect(await now.migrate()).toEqual([]);
        // Step 4: the old rows are still there, readable through the repositories.
        expect((await now.cas.findById('old-ca'))?.certDer).toEqual(Buffer.from([0x30, 0x82]));
        const cert = await now.certificates.findBySerial('old-ca', '0a0b');
        expect(cert).toMatchObject({ status: 'valid', notBefore: t0, keyId: null, revokedBy: null });
        await now.close();
      } finally {
        await db2.drop();
      }
    });

    test('status reports edited, unknown and failed migrations; a failed one blocks the next migrate', async () => {
      const db2 = await flavour.fresh();
      try {
        const dir = migrationsCopy(flavour.name);
        const s = await openStore(db2.url, { migrationsDir: dir });
        const names = migrationNames(dir);
        fs.appendFileSync(path.join(dir, names[0]!, 'migration.sql'), '\n-- edited\n');
        fs.rmSync(path.join(dir, names.at(-1)!), { recursive: true });
        addMigration(dir, '99990101000000_test_broken', 'CREATE TABLE "Broken" (;\n');
        expect(await s.migrationStatus()).toMatchObject({ edited: [names[0]], unknown: [names.at(-1)], pending: ['99990101000000_test_broken'] });
        await expect(s.migrate()).rejects.toThrow(/migration failed/);
        expect((await s.migrationStatus()).failed).toEqual(['99990101000000_test_broken']);
        await expect(s.migrate()).rejects.toThrow(/failed earlier/);
        await s.close();
      } finally {
        await db2.drop();
      }
    });

    test('concurrent opens of a new database migrate it once', async () => {
      const db2 = await flavour.fresh();
      try {
        const stores = await Promise.all(Array.from({ length: 4 }, () => openStore(db2.url)));
        const status = await stores[0]!.migrationStatus();
        expect(status.applied).toEqual(migrationNames(migrationsDirOf(flavour.name)));
        expect(status.failed).toEqual([]);
        await Promise.all(stores.map((s) => s.close()));
      } finally {
        await db2.drop();
      }
    });
  });

  describe('CAs, keys and tokens round-trip', () => {
    test('CA', async () => {
      const got = await store.cas.findById(issuer.id);
      expect(got).toEqual({ ...issuer, keyState: 'active', keyStateAt: null, createdAt: expect.any(Date) });
      expect(Buffer.isBuffer(got!.certDer)).toBe(true);
      expect(await store.cas.findByName(issuer.name)).toEqual(got);
      expect((await store.cas.list()).map((c) => c.id)).toEqual([issuer.id, other.id].sort());
      await rejectsWith(store.cas.insert(issuer), 'conflict');
      await rejectsWith(store.cas.insert({ ...caFixture('fresh-id'), name: issuer.name }), 'conflict');
      const retiring = caFixture(`retiring-${flavour.name}`);
      await store.cas.insert(retiring);
      expect(await store.cas.findById(retiring.id)).toMatchObject({ keyState: 'active', keyStateAt: null });
      // Key transitions are compare-and-set and recorded.
      expect(await store.cas.transitionKey(retiring.id, 'active', 'suspended', { at: later(1), actor: 'op' })).toBe(true);
      expect(await store.cas.transitionKey(retiring.id, 'active', 'deactivated', { at: later(2), actor: 'op' })).toBe(false);
      expect(await store.cas.transitionKey(retiring.id, 'suspended', 'deactivated', { at: later(3), actor: 'op2', reason: 'rotated' })).toBe(true);
      expect(await store.cas.findById(retiring.id)).toMatchObject({ keyState: 'deactivated', keyStateAt: later(3) });
      expect(await store.cas.keyHistory(retiring.id)).toEqual([
        { caId: retiring.id, from: 'active', to: 'suspended', at: later(1), actor: 'op', reason: null },
        { caId: retiring.id, from: 'suspended', to: 'deactivated', at: later(3), actor: 'op2', reason: 'rotated' },
      ]);
      expect((await store.cas.keyStates()).find((k) => k.id === retiring.id)).toEqual({ id: retiring.id, keyState: 'deactivated' });
      expect(await store.cas.transitionKey('no-such-ca', 'active', 'suspended', { at: later(4), actor: 'op' })).toBe(false);
      await store.cas.insert({ ...caFixture(`pre-${flavour.name}`), keyState: 'preActivation' });
      expect(await store.cas.findById(`pre-${flavour.name}`)).toMatchObject({ keyState: 'preActivation' });
      expect(await store.cas.findById('no-such-ca')).toBeNull();
    });

    test('a CA renewed: its record points at the new certificate and parent; the rest stays', async () => {
      const id = `renewed-${flavour.name}`;
      await store.cas.insert(caFixture(id));
      const before = (await store.cas.findById(id))!;
      const cert = { certDer: Buffer.from(`renewed cert of ${id}`), parentId: 'root-2', notBefore: later(10), notAfter: later(86_400 * 730) };
      await store.cas.setCertificate(id, cert);
      expect(await store.cas.findById(id)).toEqual({ ...before, ...cert });
      await rejectsWith(store.cas.setCertificate('no-such-ca', cert), 'notFound');
    });

    test('key blob', async () => {
      const blob = { id: `k-${serial()}`, algorithm: 'ECDSA-P256', envelope: JSON.stringify({ v: 1, ct: 'abc' }) };
      await store.keyBlobs.insert(blob);
      expect(await store.keyBlobs.find(blob.id)).toEqual({ ...blob, state: 'active', createdAt: expect.any(Date) });
      await rejectsWith(store.keyBlobs.insert({ ...blob, envelope: 'other' }), 'conflict');
      expect((await store.keyBlobs.find(blob.id))?.envelope).toBe(blob.envelope);
      await store.keyBlobs.setState(blob.id, 'destroyed');
      expect((await store.keyBlobs.find(blob.id))?.state).toBe('destroyed');
      expect(await store.keyBlobs.find('nope')).toBeNull();
    });

    test('API token', async () => {
      const token = { id: `t-${serial()}`, name: 'ci', role: 'issuer' as const, hashHex: serial() + serial() };
      await store.tokens.insert(token);
      expect(await store.tokens.findByHash(token.hashHex)).toEqual({ ...token, profiles: null, createdAt: expect.any(Date), expiresAt: null, lastUsedAt: null, revokedAt: null });
      await rejectsWith(store.tokens.insert({ ...token, id: `t-${serial()}` }), 'conflict');
      await store.tokens.revoke(token.id, later(60));
      expect((await store.tokens.findByHash(token.hashHex))?.revokedAt).toEqual(later(60));
      expect((await store.tokens.list()).map((t) => t.id)).toContain(token.id);
      await rejectsWith(store.tokens.revoke('no-such-token', t0), 'notFound');
    });

    test('API token: a revocation or expiry written by another process (another connection) shows on the very next lookup (nothing cached)', async () => {
      const sqlTime = (d: Date) => (flavour.name === 'sqlite' ? d.toISOString().replace('Z', '+00:00') : d.toISOString().replace('T', ' ').replace('Z', ''));
      const token = { id: `t-${serial()}`, name: 'cli', role: 'enrollment' as const, hashHex: serial() + serial() };
      await store.tokens.insert(token);
      expect((await store.tokens.findByHash(token.hashHex))?.revokedAt).toBeNull();
      await flavour.exec(fresh.url, `UPDATE "ApiToken" SET "revokedAt" = '${sqlTime(later(5))}', "expiresAt" = '${sqlTime(later(7))}' WHERE "id" = '${token.id}'`);
      expect(await store.tokens.findByHash(token.hashHex)).toMatchObject({ id: token.id, role: 'enrollment', revokedAt: later(5), expiresAt: later(7) });
      expect(await store.tokens.findByHash(serial() + serial())).toBeNull();
    });

    test('API token: profiles and expiry round-trip; a second revoke keeps the first time; lastUsedAt only when stale', async () => {
      const token = { id: `t-${serial()}`, name: null, role: 'issuer' as const, hashHex: serial() + serial(), profiles: ['server', 'client'], expiresAt: later(3600) };
      await store.tokens.insert(token);
      expect(await store.tokens.findByHash(token.hashHex)).toEqual({ ...token, createdAt: expect.any(Date), lastUsedAt: null, revokedAt: null });
      await store.tokens.touch(token.id, later(10), later(-50));
      await store.tokens.touch(token.id, later(20), later(-40)); // lastUsedAt (10) is after -40: left alone
      expect((await store.tokens.findByHash(token.hashHex))?.lastUsedAt).toEqual(later(10));
      await store.tokens.touch(token.id, later(80), later(20)); // 10 is not after 20: written
      expect((await store.tokens.findByHash(token.hashHex))?.lastUsedAt).toEqual(later(80));
      expect(await store.tokens.revoke(token.id, later(100))).toMatchObject({ alreadyRevoked: false, token: { id: token.id, revokedAt: later(100) } });
      expect(await store.tokens.revoke(token.id, later(200))).toMatchObject({ alreadyRevoked: true, token: { revokedAt: later(100) } });
    });
  });

  describe('certificates', () => {
    test('intent → issued round-trips every field', async () => {
      const a = intent(issuer.id, { keyId: 'key-a', requestedBy: null, deviceId: 'dev-a' });
      const b = intent(issuer.id);
      await store.certificates.insertIntents([a, b]);
      const pending = await store.certificates.findBySerial(issuer.id, a.serialHex);
      expect(pending).toEqual({
        ...a,
        id: expect.any(Number),
        status: 'pending',
        der: null,
        revokedAt: null,
        revocationReason: null,
        invalidityDate: null,
        revokedBy: null,
        holdReleasedAt: null,
        createdAt: expect.any(Date),
        issuedAt: null,
      });
      expect(Buffer.isBuffer(pending!.lintDer)).toBe(true);
      const done = [issued(a, later(2)), issued(b, later(3))];
      await store.certificates.completeMany({ issued: done, failed: [] }, noAudit);
      const valid = await store.certificates.findBySerial(issuer.id, a.serialHex);
      expect(valid).toMatchObject({ status: 'valid', der: done[0]!.der, issuedAt: later(2), lintDer: a.lintDer, notAfter: a.notAfter });
      expect(Buffer.isBuffer(valid!.der)).toBe(true);
      // findBySerial (SQLite: prepared statement) and findBySerialAnyIssuer (Prisma) map a row alike.
      expect(valid).toEqual((await store.certificates.findBySerialAnyIssuer(a.serialHex))[0]);
      // A device's valid, unexpired certificates (reprovisioning policy).
      expect((await store.certificates.validForDevice('dev-a', later(10))).map((c) => c.serialHex)).toEqual([a.serialHex]);
      expect(await store.certificates.validForDevice('dev-a', later(86_400 * 91))).toEqual([]);
      expect(await store.certificates.validForDevice('dev-b', later(10))).toEqual([]);
      expect((await store.certificates.findBySerial(issuer.id, b.serialHex))?.issuedAt).toEqual(later(3));
      expect(await store.certificates.findBySerial(other.id, a.serialHex)).toBeNull();
    });

    test('one batch may span issuers; findBySerialAnyIssuer finds both', async () => {
      const s = serial();
      const batch = [intent(issuer.id, { serialHex: s }), intent(other.id, { serialHex: s })];
      await store.certificates.insertIntents(batch);
      await store.certificates.completeMany({ issued: batch.map((i) => issued(i)), failed: [] }, noAudit);
      const found = await store.certificates.findBySerialAnyIssuer(s);
      expect(found.map((c) => [c.issuerId, c.status]).sort()).toEqual([
        [issuer.id, 'valid'],
        [other.id, 'valid'],
      ].sort());
      expect(await store.certificates.findBySerialAnyIssuer(serial())).toEqual([]);
    });

    test('latestHeld: the valid certificate of a profile with a held key that expires last', async () => {
      const ca = caFixture(`held-${flavour.name}`);
      await store.cas.insert(ca);
      expect(await store.certificates.latestHeld(ca.id, 'ocsp-responder')).toBeNull();
      const older = intent(ca.id, { profile: 'ocsp-responder', keyId: 'k-old', notAfter: later(3600) });
      const newer = intent(ca.id, { profile: 'ocsp-responder', keyId: 'k-new', notAfter: later(7200) });
      const keyless = intent(ca.id, { profile: 'ocsp-responder', keyId: null, notAfter: later(9000) });
      const otherProfile = intent(ca.id, { profile: 'audit-signer', keyId: 'k-audit', notAfter: later(9000) });
      const pending = intent(ca.id, { profile: 'ocsp-responder', keyId: 'k-pending', notAfter: later(9900) });
      await store.certificates.insertIntents([older, newer, keyless, otherProfile, pending]);
      await store.certificates.completeMany({ issued: [older, newer, keyless, otherProfile].map((i) => issued(i)), failed: [] }, noAudit);
      const held = await store.certificates.latestHeld(ca.id, 'ocsp-responder');
      expect([held?.serialHex, held?.keyId, held?.status, held?.notAfter.toISOString()]).toEqual([newer.serialHex, 'k-new', 'valid', later(7200).toISOString()]);
      expect(held?.der?.length).toBe(900);
    });

    test('(issuer, serial) is unique and a conflicting batch writes nothing', async () => {
      const existing = intent(issuer.id);
      await store.certificates.insertIntents([existing]);
      const before = await store.certificates.count();
      const batch = Array.from({ length: 50 }, () => intent(issuer.id));
      batch[37] = intent(issuer.id, { serialHex: existing.serialHex });
      await rejectsWith(store.certificates.insertIntents(batch), 'conflict');
      const twice = intent(issuer.id);
      await rejectsWith(store.certificates.insertIntents([twice, intent(issuer.id), { ...twice }]), 'conflict');
      expect(await store.certificates.count()).toBe(before);
      for (const i of [batch[0]!, batch[49]!, twice]) expect(await store.certificates.findBySerial(issuer.id, i.serialHex)).toBeNull();
    });

    test('an unknown issuer is notFound', async () => {
      await rejectsWith(store.certificates.insertIntents([intent('no-such-ca')]), 'notFound');
    });

    test('a completion is all-or-none; it fails only pending certificates', async () => {
      const [a, b, c] = [intent(issuer.id), intent(issuer.id), intent(issuer.id)];
      await store.certificates.insertIntents([a, b, c]);
      await store.certificates.completeMany({ issued: [issued(a)], failed: [] }, noAudit);
      // a is no longer pending: the whole batch is refused, b stays pending.
      await rejectsWith(store.certificates.completeMany({ issued: [issued(b), issued(a)], failed: [] }, noAudit), 'conflict');
      expect((await store.certificates.findBySerial(issuer.id, b.serialHex))?.status).toBe('pending');
      await store.certificates.completeMany({ issued: [], failed: [b, a].map(({ issuerId, serialHex }) => ({ issuerId, serialHex })) }, noAudit);
      expect((await store.certificates.findBySerial(issuer.id, a.serialHex))?.status).toBe('valid');
      expect((await store.certificates.findBySerial(issuer.id, b.serialHex))?.status).toBe('failed');
      expect((await store.certificates.findBySerial(issuer.id, c.serialHex))?.status).toBe('pending');
      await store.certificates.completeMany({ issued: [], failed: [c] }, noAudit);
    });

    test('count filters by issuer and status', async () => {
      const total = await store.certificates.count();
      const mine = await store.certificates.count({ issuerId: other.id });
      const valid = await store.certificates.count({ status: 'valid' });
      const i = intent(other.id);
      await store.certificates.insertIntents([i]);
      expect(await store.certificates.count()).toBe(total + 1);
      expect(await store.certificates.count({ issuerId: other.id })).toBe(mine + 1);
      expect(await store.certificates.count({ issuerId: other.id, status: 'pending' })).toBe(1);
      await store.certificates.completeMany({ issued: [issued(i)], failed: [] }, noAudit);
      expect(await store.certificates.count({ status: 'valid' })).toBe(valid + 1);
      expect(await store.certificates.count({ issuerId: other.id, status: 'pending' })).toBe(0);
    });

    test('revocation: revoke, hold and release, status, CRL entries, changes', async () => {
      const ca = caFixture(`rev-${flavour.name}`);
      await store.cas.insert(ca);
      const [a, b] = [intent(ca.id, { crlShard: 1 }), intent(ca.id, { crlShard: 2 })];
      await store.certificates.insertIntents([a, b]);
      await store.certificates.completeMany({ issued: [issued(a), issued(b)], failed: [] }, noAudit);
      const since = later(5);
      expect(await store.certificates.revoke(ca.id, a.serialHex, { reason: 1, revokedAt: later(10), invalidityDate: later(8), revokedBy: 'admin' })).toBe('revoked');
      expect(await store.certificates.revoke(ca.id, a.serialHex, { reason: 4, revokedAt: later(11), invalidityDate: null, revokedBy: 'admin' })).toBe('alreadyRevoked');
      expect(await store.certificates.revoke(ca.id, serial(), { reason: 1, revokedAt: later(10), invalidityDate: null, revokedBy: 'admin' })).toBe('notFound');
      expect(await store.certificates.statusOf(ca.id, a.serialHex)).toEqual({ status: 'revoked', revokedAt: later(10), revocationReason: 1, notAfter: a.notAfter });
      expect(await store.certificates.statusOf(ca.id, serial())).toBeNull();
      // certificateHold (6), then released.
      expect(await store.certificates.revoke(ca.id, b.serialHex, { reason: 6, revokedAt: later(12), invalidityDate: null, revokedBy: 'admin' })).toBe('revoked');
      const entries = [];
      for await (const page of store.certificates.revokedEntries(ca.id, null, { notAfterAfter: t0, pageSize: 1 })) entries.push(...page);
      expect(entries).toEqual(
        [
          { serialHex: a.serialHex, revokedAt: later(10), reason: 1, invalidityDate: later(8) },
          { serialHex: b.serialHex, revokedAt: later(12), reason: 6, invalidityDate: null },
        ].sort((x, y) => x.serialHex.localeCompare(y.serialHex)),
      );
      const shard2 = [];
      for await (const page of store.certificates.revokedEntries(ca.id, 2, { notAfterAfter: t0 })) shard2.push(...page);
      expect(shard2.map((e) => e.serialHex)).toEqual([b.serialHex]);
      expect(await store.certificates.releaseHold(ca.id, b.serialHex, later(20))).toBe('released');
      expect(await store.certificates.releaseHold(ca.id, b.serialHex, later(21))).toBe('notOnHold');
      expect(await store.certificates.releaseHold(ca.id, serial(), later(21))).toBe('notFound');
      expect((await store.certificates.statusOf(ca.id, b.serialHex))?.status).toBe('valid');
      const changes = await store.certificates.changedSince(ca.id, null, since);
      expect(changes).toEqual({ revoked: [{ serialHex: a.serialHex, revokedAt: later(10), reason: 1, invalidityDate: later(8) }], released: [b.serialHex] });
      // One shard (incremental shard CRLs), and strictly after `since`.
      expect(await store.certificates.changedSince(ca.id, 1, since)).toEqual({ revoked: [{ serialHex: a.serialHex, revokedAt: later(10), reason: 1, invalidityDate: later(8) }], released: [] });
      expect(await store.certificates.changedSince(ca.id, 2, since)).toEqual({ revoked: [], released: [b.serialHex] });
      expect(await store.certificates.changedSince(ca.id, 1, later(10))).toEqual({ revoked: [], released: [] });
      expect(await store.certificates.changedSince(`${ca.id}-other`, null, since)).toEqual({ revoked: [], released: [] });
      const changed = await store.certificates.statusChangedSince(since, 100);
      expect(changed.filter((c) => c.issuerId === ca.id).sort((x, y) => x.at.getTime() - y.at.getTime())).toEqual([
        { issuerId: ca.id, serialHex: a.serialHex, at: later(10) },
        { issuerId: ca.id, serialHex: b.serialHex, at: later(20) },
      ]);
    });
  });

    test('statusChangedSince: ordered by change time; a page never ends inside a run of equal times, so its last time is a cursor that skips nothing', async () => {
      const ca = caFixture(`chg-${flavour.name}`);
      await store.cas.insert(ca);
      const certs = Array.from({ length: 30 }, () => intent(ca.id));
      await store.certificates.insertIntents(certs);
      await store.certificates.completeMany({ issued: certs.map((c) => issued(c)), failed: [] }, noAudit);
      const base = 50_000; // after every other change in this database
      const revokeAt = (c: CertificateIntent, s: number, reason = 1) => store.certificates.revoke(ca.id, c.serialHex, { reason, revokedAt: later(base + s), invalidityDate: null, revokedBy: 't' });
      // 3 changes at distinct times, then 12 in one millisecond (a bulk revocation), 10 more, 5 holds lifted.
      for (let i = 0; i < 3; i++) await revokeAt(certs[i]!, i + 1);
      for (let i = 3; i < 15; i++) await revokeAt(certs[i]!, 10);
      for (let i = 15; i < 25; i++) await revokeAt(certs[i]!, 11 + (i % 4));
      for (let i = 25; i < 30; i++) await revokeAt(certs[i]!, 5, 6);
      for (let i = 25; i < 30; i++) await store.certificates.releaseHold(ca.id, certs[i]!.serialHex, later(base + 20 + i));
      const expected = new Map(certs.map((c, i) => [c.serialHex, i < 3 ? later(base + i + 1) : i < 15 ? later(base + 10) : i < 25 ? later(base + 11 + (i % 4)) : later(base + 20 + i)]));

      const first = await store.certificates.statusChangedSince(later(base), 5);
      expect(first.map((c) => c.at)).toEqual([...first.map((c) => c.at)].sort((x, y) => x.getTime() - y.getTime()));
      expect(first).toHaveLength(15); // 3, then all 12 of the millisecond the fifth falls in
      const seen = new Map<string, Date>();
      let cursor = later(base);
      for (let pages = 0; pages < 20; pages++) {
        const page = await store.certificates.statusChangedSince(cursor, 5);
        for (let i = 1; i < page.length; i++) expect(page[i]!.at.getTime()).toBeGreaterThanOrEqual(page[i - 1]!.at.getTime());
        for (const c of page) {
          expect(c.issuerId).toBe(ca.id);
          expect(seen.has(c.serialHex)).toBe(false);
          seen.set(c.serialHex, c.at);
        }
        if (page.length < 5) break;
        cursor = page[page.length - 1]!.at;
      }
      expect(seen).toEqual(expected);
      expect(await store.certificates.statusChangedSince(later(base + 48), 5)).toEqual([{ issuerId: ca.id, serialHex: certs[29]!.serialHex, at: later(base + 49) }]);
    });

  describe('CRLs and OCSP responses round-trip', () => {
    test('CRL numbers grow per CA; CRLs are stored, read back and pruned', async () => {
      const caId = `crl-${flavour.name}`;
      const numbers = await Promise.all(Array.from({ length: 10 }, () => store.crls.nextCrlNumber(caId)));
      expect(numbers.map(Number).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(await store.crls.nextCrlNumber(`${caId}-b`)).toBe(1n);
      const crl = (n: bigint, scope = 'full') => ({ caId, scope, crlNumber: n, baseCrlNumber: scope === 'delta' ? 1n : null, thisUpdate: t0, nextUpdate: later(3600), entries: 2, der: randomBytes(300) });
      for (const n of [1n, 2n, 3n]) await store.crls.insert(crl(n));
      await store.crls.insert(crl(4n, 'delta'));
      await rejectsWith(store.crls.insert(crl(2n)), 'conflict');
      const third = crl(3n);
      expect(await store.crls.latest(caId, 'full')).toEqual({ ...third, der: expect.any(Buffer) });
      expect((await store.crls.latestAll(caId)).map((c) => [c.scope, c.crlNumber]).sort()).toEqual([
        ['delta', 4n],
        ['full', 3n],
      ]);
      // A superseded CRL still stored is read by its number (a worker serves the one it holds until it polls the newer).
      const many = await store.crls.loadMany(caId, [{ scope: 'full', crlNumber: 3n }, { scope: 'delta', crlNumber: 4n }, { scope: 'shard-9', crlNumber: 5n }, { scope: 'full', crlNumber: 2n }, { scope: 'delta', crlNumber: 3n }]);
      expect(many.map((c) => [c.scope, c.crlNumber, c.der.length]).sort()).toEqual([['delta', 4n, 300], ['full', 2n, 300], ['full', 3n, 300]]);
      expect(await store.crls.prune(caId, 1)).toBe(2);
      expect(await store.crls.latest(caId, 'shard-9')).toBeNull();
    });

    test('a CRL of a million entries (read in slices on PostgreSQL) loads byte for byte, beside a small one of the same CA', async () => {
      const caId = `crl-slices-${flavour.name}`;
      // 9 MiB + 1 octet: three slices and one octet more on PostgreSQL; compressible like a real CRL (random serials, equal dates).
      const der = Buffer.alloc(9 * 1024 * 1024 + 1);
      for (let o = 0; o + 40 <= der.length; o += 40) randomBytes(16).copy(der, o);
      const big = { caId, scope: 'full', crlNumber: 1n, baseCrlNumber: null, thisUpdate: t0, nextUpdate: later(3600), entries: 1_000_000, der };
      const small = { ...big, scope: 'shard-0', crlNumber: 2n, entries: 3, der: randomBytes(200) };
      await store.crls.insert(big);
      await store.crls.insert(small);
      const got = await store.crls.loadMany(caId, [{ scope: 'full', crlNumber: 1n }, { scope: 'shard-0', crlNumber: 2n }, { scope: 'shard-1', crlNumber: 3n }]);
      // Buffers compared with equals(): a deep equality over 9 MiB takes minutes.
      const strip = ({ der: _, ...meta }: CrlRecord) => meta;
      expect(got.map((c) => strip(c)).sort((a, b) => a.scope.localeCompare(b.scope))).toEqual([strip(big), strip(small)]);
      expect(got.find((c) => c.scope === 'full')!.der.equals(der)).toBe(true);
      expect(got.find((c) => c.scope === 'shard-0')!.der.equals(small.der)).toBe(true);
    });

    test('the CRL publishing lease: one holder at a time, renewed by its holder, taken over once expired, given up on release', async () => {
      const caId = `lease-${flavour.name}`;
      const at = (s: number) => later(100_000 + s);
      expect(await store.crls.acquireLease(caId, 1, at(0), at(30))).toBe(true);
      expect(await store.crls.acquireLease(caId, 2, at(1), at(31))).toBe(false);
      expect(await store.crls.acquireLease(caId, 1, at(10), at(40))).toBe(true); // renewed
      expect(await store.crls.acquireLease(caId, 2, at(39), at(69))).toBe(false);
      expect(await store.crls.acquireLease(caId, 2, at(40), at(70))).toBe(true); // expired at 40
      expect(await store.crls.acquireLease(caId, 1, at(41), at(71))).toBe(false);
      await store.crls.releaseLease(caId, 1); // not the holder: nothing happens
      expect(await store.crls.acquireLease(caId, 1, at(42), at(72))).toBe(false);
      await store.crls.releaseLease(caId, 2);
      expect(await store.crls.acquireLease(caId, 1, at(43), at(73))).toBe(true);
      expect(await store.crls.acquireLease(`${caId}-other`, 2, at(43), at(73))).toBe(true); // per CA
      // Many processes at once: exactly one wins.
      const race = `${caId}-race`;
      const won = await Promise.all(Array.from({ length: 10 }, (_, i) => store.crls.acquireLease(race, i + 1, at(0), at(30))));
      expect(won.filter(Boolean)).toHaveLength(1);
      // The CA's CRL numbers are a different row.
      expect(await store.crls.nextCrlNumber(caId)).toBe(1n);
      await rejectsWith(store.crls.acquireLease(caId, 2 ** 21, at(0), at(1)), 'malformed');
    });

    test('a large CRL round-trips byte for byte, with numbers past 2^53, and Prisma reads its metadata', async () => {
      const caId = `crl-big-${flavour.name}`;
      const der = randomBytes(3 * 1024 * 1024);
      const rec = { caId, scope: 'shard-3', crlNumber: 2n ** 60n + 7n, baseCrlNumber: null, thisUpdate: t0, nextUpdate: later(86_400), entries: 62_500, der };
      await store.crls.insert(rec);
      await rejectsWith(store.crls.insert({ ...rec, der: randomBytes(10) }), 'conflict');
      const back = await store.crls.latest(caId, 'shard-3');
      expect(back).toEqual({ ...rec, der: expect.any(Buffer) });
      expect(back!.der.equals(der)).toBe(true);
      expect(await store.crls.latestAll(caId)).toEqual([{ caId, scope: 'shard-3', crlNumber: rec.crlNumber, baseCrlNumber: null, thisUpdate: t0, nextUpdate: later(86_400), entries: 62_500 }]);
      const delta = { ...rec, scope: 'full-delta', crlNumber: rec.crlNumber + 1n, baseCrlNumber: rec.crlNumber, der: randomBytes(100) };
      await store.crls.insert(delta);
      expect((await store.crls.latest(caId, 'full-delta'))!.baseCrlNumber).toBe(rec.crlNumber);
      expect(await store.crls.prune(caId, 1)).toBe(0);
    });

    // Defined for SQLite only (not skipped elsewhere): PostgreSQL stores CRLs through Prisma by design.
    if (flavour.name === 'sqlite') test('SQLite: CRLs are written and read without Prisma (the DER never goes through its transport)', async () => {
      const caId = 'crl-no-prisma';
      const model = db.crl as unknown as Record<string, unknown>;
      const saved = { create: model.create, findFirst: model.findFirst };
      model.create = model.findFirst = () => Promise.reject(new Error('CRL DER went through Prisma'));
      try {
        await store.crls.insert({ caId, scope: 'full', crlNumber: 1n, baseCrlNumber: null, thisUpdate: t0, nextUpdate: later(60), entries: 0, der: randomBytes(64) });
        expect((await store.crls.latest(caId, 'full'))!.crlNumber).toBe(1n);
      } finally {
        Object.assign(model, saved);
      }
    });

    test('OCSP responses are replaced, listed when expiring, deleted', async () => {
      const r = (serialHex: string, next: Date) => ({ issuerId: issuer.id, serialHex, der: randomBytes(200), thisUpdate: t0, nextUpdate: next });
      const [x, y] = [r(serial(), later(100)), r(serial(), later(200))];
      await store.ocspResponses.putMany([x, y]);
      const x2 = r(x.serialHex, later(300));
      await store.ocspResponses.putMany([x2]);
      expect(await store.ocspResponses.get(issuer.id, x.serialHex)).toEqual(x2);
      expect(await store.ocspResponses.expiring(later(250), 10)).toEqual([{ issuerId: issuer.id, serialHex: y.serialHex }]);
      await store.ocspResponses.delete(issuer.id, y.serialHex);
      expect(await store.ocspResponses.get(issuer.id, y.serialHex)).toBeNull();
    });

    test('OCSP responses: a batch of any size is stored whole (written 32 upserts per transaction)', async () => {
      const rows = Array.from({ length: 71 }, () => ({ issuerId: issuer.id, serialHex: serial(), der: randomBytes(200), thisUpdate: t0, nextUpdate: later(100) }));
      await store.ocspResponses.putMany(rows);
      for (const row of rows) expect(await store.ocspResponses.get(issuer.id, row.serialHex)).toEqual(row);
    });
  });

  describe('audit chain', () => {
    test('concurrent appenders, in this process and through a second store, get seq 1..N with every back-link', async () => {
      const second = await openStore(fresh.url, { migrate: false });
      const drafts = (i: number) => [{ at: later(i), type: 'test.event', actor: `actor-${i}`, data: { i, nested: { ok: true } } }];
      await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? second : store).audit.append(drafts(i), chainHash)));
      // A batch of three stays contiguous.
      const batch = await store.audit.append([0, 1, 2].map((i) => drafts(100 + i)[0]!), chainHash);
      expect(batch.map((r) => r.seq)).toEqual([41, 42, 43]);
      await second.close();
      const all = await store.audit.range(1, 1000);
      expect(all.map((r) => r.seq)).toEqual(Array.from({ length: 43 }, (_, i) => i + 1));
      let prev = '0'.repeat(64);
      for (const r of all) {
        expect(r.prevHash).toBe(prev);
        expect(r.hash).toBe(chainHash(prev, r.seq, r, r.data));
        prev = r.hash;
      }
      expect(await store.audit.last()).toEqual(all.at(-1));
      expect((await store.audit.range(10, 5)).map((r) => r.seq)).toEqual([10, 11, 12, 13, 14]);
      expect(JSON.parse(all[0]!.data)).toMatchObject({ nested: { ok: true } });
    });

    test('among concurrent appends, one whose hashing throws fails alone', async () => {
      const before = await store.audit.last();
      const boom = () => {
        throw new Error('boom');
      };
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => store.audit.append([{ at: later(200 + i), type: 'test.grouped', actor: 'a', data: { i } }], i === 3 ? boom : chainHash)),
      );
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      const appended = await store.audit.range((before?.seq ?? 0) + 1, 100);
      expect(appended.map((r) => JSON.parse(r.data).i).sort()).toEqual([0, 1, 2, 4, 5]);
      let prev = before?.hash ?? '0'.repeat(64);
      for (const r of appended) {
        expect(r.prevHash).toBe(prev);
        expect(r.hash).toBe(chainHash(prev, r.seq, r, r.data));
        prev = r.hash;
      }
    });

    if (flavour.name === 'postgres') test('an append that waited for the lock chains onto the event its holder committed meanwhile', async () => {
      // Another node holds the chain lock and appends an event; this store's append waits, then must read that event as the head.
      const c = new pg.Client({ connectionString: fresh.url });
      await c.connect();
      try {
        const before = await store.audit.last();
        const seq = (before?.seq ?? 0) + 1;
        const draft = { at: later(300), type: 'test.other_node', actor: 'node-b', data: {} };
        const hash = chainHash(before?.hash ?? '0'.repeat(64), seq, draft, '{}');
        await c.query('BEGIN');
        await c.query(`SELECT pg_advisory_xact_lock(${0x5452454c4c4953n})`);
        await c.query(`INSERT INTO "AuditEvent" ("seq","at","type","actor","data","prevHash","hash") VALUES ($1, $2::timestamp(3), $3, $4, '{}', $5, $6)`, [
          seq, draft.at.toISOString(), draft.type, draft.actor, before?.hash ?? '0'.repeat(64), hash,
        ]);
        const waiting = store.audit.append([{ at: later(301), type: 'test.this_node', actor: 'node-a', data: {} }], chainHash);
        await sleep(300);
        await c.query('COMMIT');
        const [rec] = await waiting;
        expect(rec).toMatchObject({ seq: seq + 1, prevHash: hash });
      } finally {
        await c.end();
      }
    });

    if (flavour.name === 'postgres') describe('the connection fails with the INSERT and COMMIT', () => {
      /**
       * A pool over the test database whose INSERT-and-COMMIT query fails once as a dropped connection:
       * 'after' the server ran it (committed), or 'before' it was sent; `check` false makes every later connect fail.
       */
      function droppingPool(url: string, when: 'after' | 'before', check = true) {
        const pool = new pg.Pool({ connectionString: url, max: 2 });
        let armed = true;
        let dropped = false;
        const wrapped = {
          async connect() {
            if (dropped && !check) throw new Error('connect ECONNREFUSED (test)');
            const client = await pool.connect();
            const query = async (sql: string) => {
              if (armed && sql.startsWith('INSERT INTO "AuditEvent"') && sql.endsWith('; COMMIT')) {
                armed = false;
                if (when === 'after') await client.query(sql);
                (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
                dropped = true;
                throw new Error('Connection terminated unexpectedly');
              }
              return client.query(sql);
            };
            return new Proxy(client, { get: (t, k) => (k === 'query' ? query : typeof Reflect.get(t, k) === 'function' ? Reflect.get(t, k).bind(t) : Reflect.get(t, k)) });
          },
        };
        return { chain: pgAuditChain(wrapped as unknown as pg.Pool), end: () => pool.end() };
      }
      const draft = (type: string) => [{ at: later(400), type, actor: 'node-a', data: { type } }];
      const ofType = async (type: string) => (await store.audit.range(1, 100_000)).filter((r) => r.type === type);

      test('after the server committed: the append succeeds, its event is in the chain once', async () => {
        const { chain, end } = droppingPool(fresh.url, 'after');
        try {
          const [rec] = await chain.append(draft('test.committed_then_dropped'), chainHash);
          expect(await ofType('test.committed_then_dropped')).toEqual([rec]);
          const [next] = await store.audit.append(draft('test.after_drop'), chainHash);
          expect(next).toMatchObject({ seq: rec!.seq + 1, prevHash: rec!.hash });
        } finally {
          await end();
        }
      });

      test('before it was sent: the append fails and writes nothing; the next one chains on', async () => {
        const before = await store.audit.last();
        const { chain, end } = droppingPool(fresh.url, 'before');
        try {
          await expect(chain.append(draft('test.dropped_before'), chainHash)).rejects.toThrow('Connection terminated');
          expect(await ofType('test.dropped_before')).toEqual([]);
          expect(await store.audit.last()).toEqual(before);
          const [rec] = await chain.append(draft('test.after_drop_before'), chainHash);
          expect(rec).toMatchObject({ seq: before!.seq + 1, prevHash: before!.hash });
        } finally {
          await end();
        }
      });

      test('when the outcome cannot be checked, the caller is told so and not run again', async () => {
        const { chain, end } = droppingPool(fresh.url, 'after', false);
        try {
          await expect(chain.append(draft('test.unknown_outcome'), chainHash)).rejects.toThrow('could not be checked');
          // It did commit; it was not appended a second time.
          expect(await ofType('test.unknown_outcome')).toHaveLength(1);
        } finally {
          await end();
        }
      });
    });

    test('an append whose hashing throws writes nothing', async () => {
      const before = await store.audit.last();
      const boom = () => {
        throw new Error('boom');
      };
      await expect(store.audit.append([{ at: t0, type: 'x', actor: 'y', data: {} }], boom)).rejects.toThrow('boom');
      expect(await store.audit.last()).toEqual(before);
    });
  });

  describe('transactions and concurrency', () => {
    test('an interactive transaction that throws rolls back', async () => {
      const ca = caFixture(`tx-${flavour.name}`);
      await expect(
        db.$transaction(async (tx) => {
          await tx.certificateAuthority.create({ data: { ...ca, certDer: new Uint8Array(ca.certDer) } });
          expect(await tx.certificateAuthority.count({ where: { id: ca.id } })).toBe(1);
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      expect(await store.cas.findById(ca.id)).toBeNull();
    });

    test('500 concurrent issuance flows, interleaved with transactions that roll back, store exactly 500 certificates', async () => {
      const ca = caFixture(`conc-${flavour.name}`);
      await store.cas.insert(ca);
      const flow = async () => {
        const i = intent(ca.id);
        await store.certificates.insertIntents([i]);
        await sleep(Math.random() * 5);
        await store.certificates.completeMany({ issued: [issued(i)], failed: [] }, noAudit);
      };
      // Each writes a certificate of the same CA, waits (other requests run
      // meanwhile) and rolls back. None of the flows' writes may be swept
      // into it, and none of its rows may survive.
      const doomed = async (k: number) =>
        db
          .$transaction(async (tx) => {
            await tx.certificate.create({ data: { ...intent(ca.id), serialHex: `doomed-${k}`, lintDer: new Uint8Array(8), keyId: null } });
            await sleep(5);
            await tx.certificate.create({ data: { ...intent(ca.id), serialHex: `doomed-${k}-b`, lintDer: new Uint8Array(8), keyId: null } });
            throw new Error('rolled back on purpose');
          })
          .catch((err: unknown) => {
            if (!String(err).includes('rolled back on purpose')) throw err;
          });
      const work: Promise<void>[] = [];
      for (let k = 0; k < 500; k++) {
        work.push(flow());
        if (k % 25 === 0) work.push(doomed(k));
      }
      await Promise.all(work);
      expect(await store.certificates.count({ issuerId: ca.id })).toBe(500);
      expect(await store.certificates.count({ issuerId: ca.id, status: 'valid' })).toBe(500);
      expect(await db.certificate.count({ where: { issuerId: ca.id, serialHex: { startsWith: 'doomed' } } })).toBe(0);
    });

    test('batches of 500 intents and completions', async () => {
      const ca = caFixture(`batch-${flavour.name}`);
      await store.cas.insert(ca);
      const batches = Array.from({ length: 4 }, () => Array.from({ length: 500 }, () => intent(ca.id)));
      await Promise.all(
        batches.map(async (b) => {
          await store.certificates.insertIntents(b);
          await store.certificates.completeMany({ issued: b.map((i) => issued(i)), failed: [] }, noAudit);
        }),
      );
      expect(await store.certificates.count({ issuerId: ca.id, status: 'valid' })).toBe(2000);
    });
  });

  // Last in this block: it appends audit events, and the audit chain test above counts from seq 1.
  describe('crash leftovers: a completion commits with its audit events; stale intents fail', () => {
    const ca = caFixture(`leftover-${flavour.name}`);
    /** A time as each flavour stores it (SQLite: Prisma's ISO text; PostgreSQL: timestamp(3) in UTC). */
    const sqlTime = (d: Date) => (flavour.name === 'sqlite' ? d.toISOString().replace('Z', '+00:00') : d.toISOString().replace('T', ' ').replace('Z', ''));
    /** Backdates when intents were recorded, as if an older process had left them. */
    const recordedAt = (serials: string[], at: Date) =>
      flavour.exec(fresh.url, `UPDATE "Certificate" SET "createdAt" = '${sqlTime(at)}' WHERE "issuerId" = '${ca.id}' AND "serialHex" IN (${serials.map((s) => `'${s}'`).join(',')})`);
    const events = (...types: string[]): AuditBatch => ({ drafts: types.map((type, i) => ({ at: later(500 + i), type, actor: 'test', data: { i } })), chain: chainHash });
    const statuses = async (...list: CertificateIntent[]) => Promise.all(list.map(async (i) => (await store.certificates.findBySerial(i.issuerId, i.serialHex))?.status));
    const ref = ({ issuerId, serialHex }: CertificateIntent) => ({ issuerId, serialHex });
    const bySerialHex = (x: { serialHex: string }, y: { serialHex: string }) => x.serialHex.localeCompare(y.serialHex);

    beforeAll(async () => {
      await store.cas.insert(ca);
      // The database itself refuses audit events of type 'test.refused', mid-transaction.
      const refuse =
        flavour.name === 'sqlite'
          ? [`CREATE TRIGGER "test_refuse_audit" BEFORE INSERT ON "AuditEvent" WHEN NEW."type" = 'test.refused' BEGIN SELECT RAISE(ABORT, 'audit append refused by a test trigger'); END`]
          : [
              `CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW."type" = 'test.refused' THEN RAISE EXCEPTION 'audit append refused by a test trigger'; END IF; RETURN NEW; END $$`,
              `CREATE TRIGGER test_refuse_audit BEFORE INSERT ON "AuditEvent" FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()`,
            ];
      for (const sql of refuse) await flavour.exec(fresh.url, sql);
    });

    test('issued certificates become valid, failed ones failed, and the audit events are chained on, together', async () => {
      const [a, b, c] = [intent(ca.id), intent(ca.id), intent(ca.id)];
      await store.certificates.insertIntents([a, b, c]);
      const before = await store.audit.last();
      await store.certificates.completeMany({ issued: [issued(a), issued(b)], failed: [ref(c)] }, events('certificate.issued', 'certificate.issued', 'certificate.sign_failed'));
      expect(await statuses(a, b, c)).toEqual(['valid', 'valid', 'failed']);
      const appended = await store.audit.range((before?.seq ?? 0) + 1, 10);
      expect(appended.map((r) => r.type)).toEqual(['certificate.issued', 'certificate.issued', 'certificate.sign_failed']);
      expect(appended[0]!.prevHash).toBe(before?.hash ?? '0'.repeat(64));
      for (const r of appended) expect(r.hash).toBe(chainHash(r.prevHash, r.seq, r, r.data));
    });

    test('an audit append the database refuses leaves every certificate of the batch pending', async () => {
      const [a, b] = [intent(ca.id), intent(ca.id)];
      await store.certificates.insertIntents([a, b]);
      const before = await store.audit.last();
      await expect(store.certificates.completeMany({ issued: [issued(a)], failed: [ref(b)] }, events('certificate.issued', 'test.refused'))).rejects.toThrow();
      expect(await statuses(a, b)).toEqual(['pending', 'pending']);
      expect(await store.audit.last()).toEqual(before);
      // A hashing failure (in the process, after the rows were updated) undoes them too.
      const boom: AuditBatch = { ...events('certificate.issued'), chain: () => { throw new Error('boom'); } };
      await expect(store.certificates.completeMany({ issued: [issued(a)], failed: [ref(b)] }, boom)).rejects.toThrow('boom');
      expect(await statuses(a, b)).toEqual(['pending', 'pending']);
      expect(await store.audit.last()).toEqual(before);
      await store.certificates.completeMany({ issued: [issued(a)], failed: [ref(b)] }, events('certificate.issued', 'certificate.sign_failed'));
      expect(await statuses(a, b)).toEqual(['valid', 'failed']);
    });

    test('a certificate that is no longer pending refuses the whole completion, audit events included', async () => {
      const [a, b] = [intent(ca.id), intent(ca.id)];
      await store.certificates.insertIntents([a, b]);
      await store.certificates.completeMany({ issued: [issued(a)], failed: [] }, events('certificate.issued'));
      const before = await store.audit.last();
      await rejectsWith(store.certificates.completeMany({ issued: [issued(b), issued(a)], failed: [] }, events('certificate.issued', 'certificate.issued')), 'conflict');
      expect(await statuses(a, b)).toEqual(['valid', 'pending']);
      expect(await store.audit.last()).toEqual(before);
    });

    test('failStalePending fails the intents recorded before the cut-off in one audited event; their serials stay used', async () => {
      const [old1, old2, oldValid, young] = [intent(ca.id), intent(ca.id, { requestedVia: 'acme', requestedBy: null }), intent(ca.id), intent(ca.id)];
      await store.certificates.insertIntents([old1, old2, oldValid, young]);
      await store.certificates.completeMany({ issued: [issued(oldValid)], failed: [] }, noAudit);
      await recordedAt([old1, old2, oldValid].map((i) => i.serialHex), new Date('2001-01-01T00:00:00.000Z'));
      const cut = new Date('2001-06-01T00:00:00.000Z');
      const before = await store.audit.last();
      let seen: { issuerId: string; serialHex: string }[] = [];
      const failed = await store.certificates.failStalePending(cut, (f) => {
        seen = f;
        return events('certificate.intents_abandoned');
      });
      const abandoned = ({ issuerId, serialHex, requestedVia, requestedBy }: CertificateIntent) => ({ issuerId, serialHex, requestedVia, requestedBy });
      expect([...failed].sort(bySerialHex)).toEqual([abandoned(old1), abandoned(old2)].sort(bySerialHex));
      expect(seen).toEqual(failed);
      expect(await statuses(old1, old2, oldValid, young)).toEqual(['failed', 'failed', 'valid', 'pending']);
      const appended = await store.audit.range((before?.seq ?? 0) + 1, 10);
      expect(appended.map((r) => r.type)).toEqual(['certificate.intents_abandoned']);
      // Nothing left: no change and no event.
      expect(await store.certificates.failStalePending(cut, () => events('certificate.intents_abandoned'))).toEqual([]);
      expect((await store.audit.last())?.seq).toBe(appended[0]!.seq);
      // A failed intent keeps its serial: the issuer can never use it again.
      await rejectsWith(store.certificates.insertIntents([intent(ca.id, { serialHex: old1.serialHex })]), 'conflict');
    });

    test('failStalePending whose audit append is refused fails nothing', async () => {
      const stale = intent(ca.id);
      await store.certificates.insertIntents([stale]);
      await recordedAt([stale.serialHex], new Date('2001-02-01T00:00:00.000Z'));
      const before = await store.audit.last();
      await expect(store.certificates.failStalePending(new Date('2001-06-01T00:00:00.000Z'), () => events('test.refused'))).rejects.toThrow();
      expect(await statuses(stale)).toEqual(['pending']);
      expect(await store.audit.last()).toEqual(before);
    });
  });
});

test('database URLs: file paths, PostgreSQL, and refusals', () => {
  expect(parseDatabaseUrl('file:/var/lib/trellis/db.sqlite')).toEqual({ kind: 'sqlite', file: '/var/lib/trellis/db.sqlite' });
  expect(parseDatabaseUrl('file:///var/lib/trellis/db.sqlite')).toEqual({ kind: 'sqlite', file: '/var/lib/trellis/db.sqlite' });
  expect(parseDatabaseUrl('file:rel.db')).toEqual({ kind: 'sqlite', file: path.resolve('rel.db') });
  expect(parseDatabaseUrl('postgres://u@h/db')).toEqual({ kind: 'postgres', url: 'postgres://u@h/db' });
  expect(() => parseDatabaseUrl('file::memory:')).toThrow(/in-memory/);
  expect(() => parseDatabaseUrl('mysql://h/db')).toThrow(/file: \(SQLite\) or postgresql/);
});
