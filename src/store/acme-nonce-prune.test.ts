/**
 * Pruning used ACME nonces at a backlog: what each flavour deletes and keeps,
 * and that the work is split into bounded steps (SQLite: a write of at most
 * 5,000 rowids, with a turn of the event loop between two; PostgreSQL: a
 * statement per 128 heap pages). The rows are made by one INSERT ... SELECT,
 * not through the API. bench/acme-nonce-prune.mjs measures the same at
 * 1 M and 5 M rows.
 */
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { acmePgHotPath } from './acme-pg.js';
import { acmeSqliteHotPath } from './acme-sqlite.js';
import { applyMigrations, migrationNames, migrationsDirOf, openSqlite } from './migrate.js';
import { SerialQueue } from './sqlite-serial.js';
import { contractFlavours } from './testing/flavours.js';

const flavours = contractFlavours('ACME nonce prune');
const sqlite = flavours.find((f) => f.name === 'sqlite')!;
const postgres = flavours.find((f) => f.name === 'postgres');

const now = new Date('2026-01-02T03:04:05.678Z');
/** An expiresAt `ms` milliseconds from `now`, as each flavour stores it (SQLite text, PostgreSQL timestamp). */
const sqliteAt = (ms: number) => new Date(now.getTime() + ms).toISOString().replace('Z', '+00:00');
const pgAt = (ms: number) => new Date(now.getTime() + ms).toISOString().replace('T', ' ').replace('Z', '');

/** Event-loop turns counted while a test runs. */
function turnCounter() {
  let turns = 0;
  let on = true;
  const tick = () => {
    turns++;
    if (on) setImmediate(tick);
  };
  setImmediate(tick);
  return { now: () => turns, stop: () => void (on = false) };
}

describe('SQLite: pruning used nonces', () => {
  async function setup() {
    const file = (await sqlite.fresh()).url.slice('file:'.length);
    const db = openSqlite(file);
    const migrations = migrationsDirOf('sqlite');
    for (const name of migrationNames(migrations)) db.exec(fs.readFileSync(path.join(migrations, name, 'migration.sql'), 'utf8'));
    // Each DELETE the prune makes: the rows it took and the event-loop turn it ran in.
    const deletes: { changes: number; turn: number }[] = [];
    const turns = turnCounter();
    const prepare = db.prepare.bind(db);
    db.prepare = ((sql: string) => {
      const st = prepare(sql);
      if (!/^DELETE FROM "AcmeUsedNonce"/.test(sql)) return st;
      const run = st.run.bind(st);
      st.run = (...args: unknown[]) => {
        const r = run(...args);
        deletes.push({ changes: r.changes, turn: turns.now() });
        return r;
      };
      return st;
    }) as Database.Database['prepare'];
    const nonces = acmeSqliteHotPath(db, new SerialQueue()).nonces;
    /** `n` rows named `${prefix}i` (padded to a nonce's 43 characters) expiring `ms(i)` from now, appended in that order. */
    const add = (prefix: string, n: number, ms: (i: number) => number) => {
      const insert = db.prepare('INSERT INTO "AcmeUsedNonce" ("nonce","expiresAt") VALUES (?, ?)');
      db.transaction(() => {
        for (let i = 0; i < n; i++) insert.run(`${prefix}${i}`, sqliteAt(ms(i)));
      })();
    };
    const left = () => (db.prepare('SELECT "nonce" FROM "AcmeUsedNonce" ORDER BY rowid').all() as { nonce: string }[]).map((r) => r.nonce);
    afterAll(() => {
      turns.stop();
      db.close();
    });
    return { db, nonces, add, left, deletes };
  }

  test('deletes the expired rows oldest first, at most 5,000 a write with a turn of the event loop between writes, up to the first live row', async () => {
    const { nonces, add, left, deletes } = await setup();
    add('old', 12_001, (i) => -100_000 + i);
    add('edge', 1, () => 0);
    add('behind', 1, () => -1);
    expect(await nonces.prune(now)).toBe(12_001);
    expect(deletes.map((d) => d.changes)).toEqual([5_000, 5_000, 2_001]);
    expect(deletes[1]!.turn).toBeGreaterThan(deletes[0]!.turn);
    expect(deletes[2]!.turn).toBeGreaterThan(deletes[1]!.turn);
    // Expiring at the cut is not expired before it; the row behind it waits for a later prune.
    expect(left()).toEqual(['edge0', 'behind0']);
    expect(await nonces.prune(new Date(now.getTime() + 1))).toBe(2);
    expect(left()).toEqual([]);
    expect(await nonces.prune(now)).toBe(0);
  });

  test('walks on past a gap in the rowids wider than a step', async () => {
    const { db, nonces, add, left } = await setup();
    add('a', 10, (i) => -1_000 + i);
    db.prepare('INSERT INTO "AcmeUsedNonce" (rowid, "nonce","expiresAt") VALUES (100000, ?, ?)').run('far', sqliteAt(-500));
    add('b', 10, (i) => -400 + i);
    add('live', 1, () => 60_000);
    expect(await nonces.prune(now)).toBe(21);
    expect(left()).toEqual(['live0']);
  });

  test('leaves rows appended after the call began to a later call, expired or not', async () => {
    const { db, nonces, add, left, deletes } = await setup();
    add('old', 6_000, (i) => -100_000 + i);
    const pruned = nonces.prune(now);
    // Appended while the prune's first write is queued: past the rowid the call stops at.
    db.prepare('INSERT INTO "AcmeUsedNonce" ("nonce","expiresAt") VALUES (?, ?)').run('late', sqliteAt(-1));
    expect(await pruned).toBe(6_000);
    expect(deletes.map((d) => d.changes)).toEqual([5_000, 1_000]);
    expect(left()).toEqual(['late']);
    expect(await nonces.prune(now)).toBe(1);
  });
});

describe.skipIf(!postgres)('PostgreSQL: pruning used nonces', () => {
  async function setup() {
    const fresh = await postgres!.fresh();
    await applyMigrations({ kind: 'postgres', url: fresh.url }, migrationsDirOf('postgres'));
    const pool = new pg.Pool({ connectionString: fresh.url, max: 2 });
    // Each prune statement: its name and parameters; `afterPages` runs once the table's size was read.
    const statements: { name: string; values: unknown[] }[] = [];
    const hooks: { afterPages?: () => Promise<unknown> } = {};
    const query = pool.query.bind(pool) as (q: pg.QueryConfig) => Promise<pg.QueryResult>;
    pool.query = (async (q: pg.QueryConfig) => {
      if (q.name && /prune|pages/.test(q.name)) statements.push({ name: q.name, values: q.values ?? [] });
      const r = await query(q);
      if (q.name === 'trellis_acme_nonce_pages') await hooks.afterPages?.();
      return r;
    }) as typeof pool.query;
    const nonces = acmePgHotPath(pool, pg.types).nonces;
    /** `n` rows named `${prefix}i` (padded to a nonce's 43 characters) expiring `ms` from now; `liveEvery`: every such row expires an hour later instead. */
    const add = (prefix: string, n: number, ms: number, liveEvery = 0) =>
      query({
        text: `INSERT INTO "AcmeUsedNonce" ("nonce","expiresAt")
          SELECT rpad($1 || i, 43, '-'), $2::timestamp(3) + CASE WHEN $3 > 0 AND i % $3 = 0 THEN interval '1 hour' ELSE interval '0' END
          FROM generate_series(0, $4 - 1) i`,
        values: [prefix, pgAt(ms), liveEvery, n],
      });
    const count = async (where = 'true') => Number((await query({ text: `SELECT count(*) AS n FROM "AcmeUsedNonce" WHERE ${where}` })).rows[0].n);
    afterAll(async () => {
      await pool.end();
      await fresh.drop();
    });
    return { nonces, add, count, statements, query, hooks };
  }

  test('deletes every expired row, live ones between them kept, in statements of 128 heap pages that cover the table once', async () => {
    const { nonces, add, count, statements, query } = await setup();
    await add('n', 40_000, -100_000, 1_000);
    await add('edge', 1, 0);
    const pages = Number((await query({ text: `SELECT pg_relation_size('"AcmeUsedNonce"') / current_setting('block_size')::int AS p` })).rows[0].p);
    expect(pages).toBeGreaterThan(128 * 2);
    expect(await nonces.prune(now)).toBe(40_000 - 40);
    expect(await count()).toBe(41);
    expect(await count(`"nonce" LIKE 'edge0%'`)).toBe(1);
    const deletes = statements.filter((s) => /prune/.test(s.name));
    expect(deletes).toHaveLength(Math.ceil(pages / 128));
    deletes.forEach((s, k) => expect(s.values.slice(0, 2)).toEqual([`(${k * 128},0)`, `(${Math.min((k + 1) * 128, pages)},0)`]));
    expect(await nonces.prune(new Date(now.getTime() + 1))).toBe(1);
  }, 60_000);

  test('leaves rows on pages added after the call began to a later call', async () => {
    const { nonces, add, count, hooks } = await setup();
    await add('old', 1_000, -100_000);
    // Appended once the prune has read the table's size: most land on pages it does not read (some fill its last page).
    hooks.afterPages = () => add('late', 30_000, -1);
    const first = await nonces.prune(now);
    expect(first).toBeGreaterThanOrEqual(1_000);
    expect(first).toBeLessThan(2_000);
    expect(await count(`"nonce" LIKE 'old%'`)).toBe(0);
    hooks.afterPages = undefined;
    expect(await nonces.prune(now)).toBe(31_000 - first);
    expect(await count()).toBe(0);
  }, 60_000);

  test('an empty table: nothing to read', async () => {
    const { nonces, statements } = await setup();
    expect(await nonces.prune(now)).toBe(0);
    expect(statements.map((s) => s.name)).toEqual(['trellis_acme_nonce_pages']);
  });
});
