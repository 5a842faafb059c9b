/**
 * Hundreds of concurrent issuances through the RA and CA core: every
 * certificate is stored exactly once (the known better-sqlite3 write-loss trap
 * must not bite), on SQLite and, when configured, PostgreSQL.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { makeCsr } from '../helpers/openssl.js';
import { testPki, type TestPki } from '../helpers/test-pki.js';
import { freshPgDatabase, pgAvailable } from '../helpers/postgres.js';

const N = 400;
const opened: TestPki[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const p of opened) await p.close();
  for (const c of cleanups) await c();
});

async function hammer(pki: TestPki) {
  const before = await pki.instance.store.certificates.count();
  const { csrPem } = await makeCsr(pki.dir, 'conc', '/CN=conc.example.test');
  const results = await Promise.allSettled(Array.from({ length: N }, () => pki.ra.requestCertificate({ profile: 'server', csr: csrPem, requestedVia: 'api', requestedBy: 'test' })));
  const failures = results.filter((r) => r.status === 'rejected');
  expect(failures).toEqual([]);
  const serials = new Set(results.map((r) => (r as PromiseFulfilledResult<{ serialHex: string }>).value.serialHex));
  expect(serials.size).toBe(N);
  expect(await pki.instance.store.certificates.count()).toBe(before + N);
  expect(await pki.instance.store.certificates.count({ status: 'valid' })).toBe(before + N);
  expect(await pki.instance.store.certificates.count({ status: 'pending' })).toBe(0);
  await expect(pki.instance.audit.verify()).resolves.toMatchObject({ ok: true });
}

describe('concurrent issuance', () => {
  test(`SQLite: ${N} concurrent issuances, ${N} rows`, async () => {
    const pki = await testPki();
    opened.push(pki);
    await hammer(pki);
  });

  test.skipIf(!pgAvailable())(`PostgreSQL: ${N} concurrent issuances, ${N} rows`, async () => {
    const db = await freshPgDatabase();
    cleanups.push(db.drop);
    const pki = await testPki({ databaseUrl: db.url });
    opened.push(pki);
    await hammer(pki);
  });
});
