/**
 * Store throughput of the issuance batches (500 certificates each), printed
 * as rows/s. Off by default (timing on a shared box is not a pass/fail
 * signal); run it with
 *   TRELLIS_STORE_BENCH=1 [TRELLIS_TEST_DATABASE_URL=postgresql://…] npx vitest run src/store/batch-throughput
 * Issuance needs ~4,000 certificates/s end to end, so the store's share is
 * about 50 µs per certificate (insertIntents + completeIssued).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { expect, test } from 'vitest';
import type { CertificateIntent } from '../ca/ports.js';
import { openStore } from './open.js';

const batchSize = 500;
const rounds = 10;
const t0 = new Date('2026-01-02T03:04:05.678Z');

function batch(issuerId: string): CertificateIntent[] {
  return Array.from({ length: batchSize }, () => ({
    issuerId,
    serialHex: randomBytes(16).toString('hex'),
    profile: 'device',
    subject: 'CN=device.example.test',
    sans: '[{"type":"dns","value":"device.example.test"}]',
    notBefore: t0,
    notAfter: t0,
    lintDer: randomBytes(700),
    crlShard: 3,
    requestedVia: 'acme',
    requestedBy: 'account-1',
  }));
}

async function freshPg(server: string): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: server });
    await c.connect();
    await c.query(sql).finally(() => c.end());
  };
  const name = `trellis_bench_${randomBytes(6).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(server);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

const databases: [string, () => Promise<{ url: string; drop(): Promise<void> }>][] = [
  ['sqlite', async () => ({ url: `file:${fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-'))}/bench.db`, drop: async () => {} })],
];
const server = process.env.TRELLIS_TEST_DATABASE_URL;
if (server) databases.push(['postgres', () => freshPg(server)]);

test.skipIf(!process.env.TRELLIS_STORE_BENCH).each(databases)('%s: rows/s of 500-certificate batches', async (name, fresh) => {
  const db = await fresh();
  const store = await openStore(db.url);
  try {
    const issuerId = 'bench-ca';
    await store.cas.insert({ id: issuerId, name: issuerId, role: 'issuing', state: 'active', parentId: null, certDer: Buffer.from('x'), subject: 'CN=bench', skiHex: 'ab', keyRef: '{}', notBefore: t0, notAfter: t0 });
    const batches = Array.from({ length: rounds + 1 }, () => batch(issuerId));
    const done = batches.map((b) => b.map((i) => ({ issuerId, serialHex: i.serialHex, der: randomBytes(900), issuedAt: t0 })));
    const time = async (fn: (k: number) => Promise<void>) => {
      await fn(0); // warm-up
      const start = performance.now();
      for (let k = 1; k <= rounds; k++) await fn(k);
      return Math.round((rounds * batchSize) / ((performance.now() - start) / 1000));
    };
    const insert = await time((k) => store.certificates.insertIntents(batches[k]!));
    const complete = await time((k) => store.certificates.completeIssued(done[k]!));
    console.log(`${name}: insertIntents ${insert} rows/s, completeIssued ${complete} rows/s (batches of ${batchSize})`);
    expect(await store.certificates.count({ status: 'valid' })).toBe((rounds + 1) * batchSize);
  } finally {
    await store.close();
    await db.drop();
  }
}, 120_000);
