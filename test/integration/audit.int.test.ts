/** The audit log is tamper-evident: editing, deleting or reordering an event breaks the chain. */
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { testPki, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki | undefined;
afterEach(async () => {
  await pki?.close();
  pki = undefined;
});

test.each([
  ['an edited event', `UPDATE "AuditEvent" SET "data" = '{"forged":true}' WHERE "seq" = 2`, 2, /modified/],
  ['a deleted event', `DELETE FROM "AuditEvent" WHERE "seq" = 3`, 3, /missing/],
  ['a re-chained edit', `UPDATE "AuditEvent" SET "hash" = (CASE WHEN substr("hash", 1, 2) = 'ab' THEN 'cd' ELSE 'ab' END) || substr("hash", 3) WHERE "seq" = 2`, 2, /modified/],
])('audit verify finds %s', async (_name, sql, seq, reason) => {
  pki = await testPki();
  await expect(pki.instance.audit.verify()).resolves.toMatchObject({ ok: true });
  const db = new Database(path.join(pki.dataDir, 'trellis.db'));
  db.prepare(sql).run();
  db.close();
  const r = await pki.instance.audit.verify();
  expect(r).toMatchObject({ ok: false, seq });
  expect((r as { reason: string }).reason).toMatch(reason);
});
