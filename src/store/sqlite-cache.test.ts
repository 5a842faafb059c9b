/** The page cache of the store's SQLite connections (open.ts): SQLite's 2 MB default, not better-sqlite3's 16 MB. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { openStoreInternals } from './open.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-sqlite-cache-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('both connections of a SQLite store keep a page cache of 2,000 KiB (cache_size -2000)', async () => {
  const { store, db, raw } = await openStoreInternals(`file:${path.join(tmp, 'trellis.db')}`);
  try {
    // Prisma's connection (repositories) and the raw one (issuance, ACME and audit hot paths).
    const viaPrisma = await db.$queryRawUnsafe<{ cache_size: number | bigint }[]>('PRAGMA cache_size');
    expect(Number(viaPrisma[0]!.cache_size)).toBe(-2000);
    expect(raw!.pragma('cache_size', { simple: true })).toBe(-2000);
  } finally {
    await store.close();
  }
});
