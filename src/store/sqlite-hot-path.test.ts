/**
 * The CA's completion on the SQLite hot path: by default it resolves once its
 * commit is on disk; with 'committed' (ACME finalize) at the commit, and the
 * ACME store's durability barrier, which every ACME answer waits for, still
 * waits for that commit's fsync. The fsync is a gate the test opens.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, expect, test } from 'vitest';
import type { CertificateIntent } from '../ca/ports.js';
import { acmeSqliteHotPath } from './acme-sqlite.js';
import { migrationNames, migrationsDirOf, openSqlite } from './migrate.js';
import { sqliteHotPath } from './sqlite-hot-path.js';
import { SerialQueue } from './sqlite-serial.js';
import { WalSync } from './wal-sync.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-hot-'));
  dirs.push(dir);
  const db = openSqlite(path.join(dir, 'db.sqlite'));
  const migrations = migrationsDirOf('sqlite');
  for (const name of migrationNames(migrations)) db.exec(fs.readFileSync(path.join(migrations, name, 'migration.sql'), 'utf8'));
  // The intents name no CA row: this test is about when writes settle, not about the schema's references.
  db.pragma('foreign_keys = OFF');
  const syncs: (() => void)[] = [];
  const wal = new WalSync(path.join(dir, 'db.sqlite-wal'), () => new Promise<void>((r) => syncs.push(r)));
  const queue = new SerialQueue();
  const hot = sqliteHotPath(db, queue, wal);
  const acme = acmeSqliteHotPath(db, queue, wal);
  return { db, syncs, hot, acme };
}

const intent = (serialHex: string): CertificateIntent => ({
  issuerId: 'ca-1',
  serialHex,
  profile: 'server',
  subject: 'CN=a.example.test',
  sans: JSON.stringify([{ type: 'dns', value: 'a.example.test' }]),
  notBefore: new Date(0),
  notAfter: new Date(86_400_000),
  lintDer: randomBytes(64),
  crlShard: 0,
  requestedVia: 'acme',
  requestedBy: 'acct-1',
});
const noAudit = { drafts: [], chain: () => '' };

async function pendingCertificate(s: ReturnType<typeof setup>, serialHex: string): Promise<void> {
  const written = s.hot.insertIntents([intent(serialHex)]);
  await turns();
  s.syncs.shift()!();
  await written;
}

const statusOf = (s: ReturnType<typeof setup>, serialHex: string) => (s.db.prepare(`SELECT "status" FROM "Certificate" WHERE "serialHex"=?`).get(serialHex) as { status: string }).status;

test('a completion resolves only once its commit is on disk', async () => {
  const s = setup();
  await pendingCertificate(s, '01');
  let done = false;
  const completed = s.hot.completeMany([{ issuerId: 'ca-1', serialHex: '01', der: randomBytes(32), issuedAt: new Date(1) }], [], noAudit).then(() => (done = true));
  await turns();
  expect(statusOf(s, '01')).toBe('valid');
  expect(done).toBe(false);
  expect(s.syncs).toHaveLength(1);
  s.syncs.shift()!();
  await completed;
});

test("a 'committed' completion resolves at its commit, and the ACME answers' barrier still waits for its fsync", async () => {
  const s = setup();
  await pendingCertificate(s, '02');
  await s.hot.completeMany([{ issuerId: 'ca-1', serialHex: '02', der: randomBytes(32), issuedAt: new Date(1) }], [], noAudit, 'committed');
  expect(statusOf(s, '02')).toBe('valid');
  let answered = false;
  const barrier = s.acme.nonces.durable!().then(() => (answered = true));
  await turns();
  expect(answered).toBe(false);
  expect(s.syncs).toHaveLength(1);
  s.syncs.shift()!();
  await barrier;
  expect(answered).toBe(true);
});

test('audit events read back through the hot path are the records the append returned', async () => {
  const s = setup();
  expect(await s.hot.lastAudit()).toBeNull();
  expect(await s.hot.auditRange(1, 10)).toEqual([]);
  const at = new Date('2026-12-07T01:02:03.456Z');
  const drafts = ['a', 'b', 'c'].map((actor) => ({ at, type: 'certificate.issued', actor, data: { serialHex: actor.repeat(4) } }));
  const appending = s.hot.appendAudit(drafts, (prev, seq, d, data) => `${prev.slice(0, 8)}-${seq}-${d.actor}-${data.length}`);
  await turns();
  s.syncs.shift()!();
  const appended = await appending;
  expect(appended).toHaveLength(3);
  expect(await s.hot.auditRange(2, 5)).toEqual(appended.slice(1));
  expect(await s.hot.auditRange(1, 2)).toEqual(appended.slice(0, 2));
  expect(await s.hot.lastAudit()).toEqual(appended[2]);
});
