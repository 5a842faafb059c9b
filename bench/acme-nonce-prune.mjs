#!/usr/bin/env node
/**
 * Pruning a backlog of used ACME nonces (AcmeUsedNonce), not wired into npm
 * scripts: for each flavour and size, a fresh database is filled with one
 * INSERT ... SELECT of BENCH_ROWS expired rows (in rowid order of expiry, as
 * redemptions append them) and 1,000 live ones after them, then
 * `store.acmeNonces.prune(now)` runs once while this process redeems a nonce
 * every 5 ms, as requests would. Reported per run: the prune's wall time and
 * rows deleted, the longest stretch the event loop was blocked (gaps between
 * setImmediate turns) and how many exceeded 20 ms, the slowest redemption
 * made meanwhile, and per statement of the prune (SQLite: its synchronous
 * better-sqlite3 calls, with their CPU time, which a busy machine does not
 * inflate; PostgreSQL: its queries) the count, slowest, total, and the times
 * at every tenth of the sequence (alongMs: how a step's cost moves as the
 * prune goes on).
 *
 *   node bench/acme-nonce-prune.mjs
 *
 * Environment: BENCH_ROWS (1000000,5000000), BENCH_FLAVOURS (sqlite,postgres),
 * TRELLIS_TEST_DATABASE_URL (the PostgreSQL server; without it only SQLite
 * runs), BENCH_DIST (the compiled src/, default dist/; `npm run build` first),
 * BENCH_NO_AUTOCHECKPOINT=1 (SQLite: wal_autocheckpoint = 0 on the store's
 * connection, to tell the prune's own statements from the checkpoints its
 * commits set off).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { freshDatabase } from './lib/pg-database.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const distDir = process.env.BENCH_DIST ? path.resolve(process.env.BENCH_DIST) : path.join(root, 'dist');
const { openStoreInternals } = await import(pathToFileURL(path.join(distDir, 'store', 'open.js')).href);
const sizes = (process.env.BENCH_ROWS ?? '1000000,5000000').split(',').map(Number);
const flavours = (process.env.BENCH_FLAVOURS ?? 'sqlite,postgres').split(',');
const server = process.env.TRELLIS_TEST_DATABASE_URL;
const live = 1_000;
const now = new Date('2026-06-01T00:00:00.000Z');
const nowSeconds = now.getTime() / 1000;
const lifetimeSeconds = 3600;

/** Times every call of `obj[name]` for which `on(this, args)` holds (sync or async); returns the list. */
function timeCalls(obj, name, on, label = () => name) {
  const times = [];
  const orig = obj[name];
  obj[name] = function (...args) {
    if (!on(this, args)) return orig.apply(this, args);
    const t = performance.now();
    const c = process.cpuUsage();
    const r = orig.apply(this, args);
    const l = label(this, args);
    if (r && typeof r.then === 'function') return r.finally(() => times.push({ l, ms: performance.now() - t }));
    const { user, system } = process.cpuUsage(c);
    times.push({ l, ms: performance.now() - t, cpuMs: (user + system) / 1000 });
    return r;
  };
  return times;
}

/** Gaps between setImmediate turns until `stop()`: how long the event loop was blocked. */
function loopProbe() {
  const gaps = [];
  let last = performance.now();
  let running = true;
  const tick = () => {
    const t = performance.now();
    gaps.push(t - last);
    last = t;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  return () => {
    running = false;
    return gaps;
  };
}

// A nonce as NonceService.issue makes it: base64url of 6 octets of issue time (ms), then random characters; nonces of
// the same few seconds share a prefix, so they sit together in the primary key's index, as in a running server.
const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const sqliteNonce = (ms) =>
  `${Array.from({ length: 8 }, (_, k) => `substr('${alphabet}', ((${ms} >> ${42 - 6 * k}) & 63) + 1, 1)`).join(' || ')} || substr(hex(randomblob(18)), 1, 35)`;
const sqliteDate = (seconds) => `strftime('%Y-%m-%dT%H:%M:%f+00:00', ${seconds}, 'unixepoch')`;

async function fillSqlite(file, rows) {
  const db = new Database(file);
  // Expired rows one ms apart in rowid order, the newest 10 s before now; then the live ones.
  const expired = `(${nowSeconds} - 10 - (${rows} - i) / 1000.0)`;
  const fresh = `(${nowSeconds} + 10 + i / 1000.0)`;
  for (const [n, expires] of [[rows, expired], [live, fresh]]) {
    db.exec(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${n})
      INSERT INTO "AcmeUsedNonce" ("nonce","expiresAt")
      SELECT ${sqliteNonce(`CAST((${expires} - ${lifetimeSeconds}) * 1000 AS INTEGER)`)}, ${sqliteDate(expires)} FROM s`);
  }
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  db.close();
}

async function fillPg(url, rows) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const at = `(TIMESTAMP '${now.toISOString().replace('T', ' ').replace('Z', '')}')`;
    const nonce = (expires) =>
      `translate(rtrim(encode(substring(int8send((extract(epoch FROM ${expires}) * 1000)::bigint - ${lifetimeSeconds * 1000}) FROM 3 FOR 6)
        || decode(md5(random()::text), 'hex') || substring(decode(md5(random()::text), 'hex') FROM 1 FOR 10), 'base64'), '='), '+/', '-_')`;
    for (const [n, expires] of [
      [rows, `${at} - interval '10 seconds' - (${rows} - i) * interval '1 millisecond'`],
      [live, `${at} + interval '10 seconds' + i * interval '1 millisecond'`],
    ]) {
      await c.query(`INSERT INTO "AcmeUsedNonce" ("nonce","expiresAt") SELECT ${nonce(`(${expires})`)}, ${expires} FROM generate_series(1, ${n}) i`);
    }
    await c.query('VACUUM ANALYZE "AcmeUsedNonce"');
  } finally {
    await c.end();
  }
}

async function measure(flavour, rows) {
  let url;
  let drop;
  if (flavour === 'sqlite') {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-prune-'));
    url = `file:${path.join(tmp, 'bench.db')}`;
    drop = async () => fs.rmSync(tmp, { recursive: true, force: true });
  } else {
    ({ url, drop } = await freshDatabase(server, 'trellis_prune'));
  }
  try {
    // Migrate first (tables), fill, then open the store the prune runs on.
    await (await openStoreInternals(url)).store.close();
    const tf = performance.now();
    if (flavour === 'sqlite') await fillSqlite(url.slice('file:'.length), rows);
    else await fillPg(url, rows);
    const fillSeconds = (performance.now() - tf) / 1000;

    const { store, raw } = await openStoreInternals(url);
    if (raw && process.env.BENCH_NO_AUTOCHECKPOINT === '1') raw.pragma('wal_autocheckpoint = 0');
    // Statements of the prune: on SQLite the better-sqlite3 statements on the nonce table other than the
    // redemptions' INSERT; on PostgreSQL the pool's queries named for the prune.
    let pruning = false;
    let statements;
    if (raw) {
      const S = Object.getPrototypeOf(raw.prepare('SELECT 1'));
      const nonceSql = (st) => pruning && /AcmeUsedNonce/.test(st.source) && !/INSERT/.test(st.source);
      const sql = (st) => st.source.replace(/\s+/g, ' ').slice(0, 60);
      const gets = timeCalls(S, 'get', nonceSql, sql);
      const runs = timeCalls(S, 'run', nonceSql, sql);
      statements = () => [...gets, ...runs];
    } else {
      const q = timeCalls(pg.Pool.prototype, 'query', (_, args) => pruning && /prune|nonce_pages/.test(args[0]?.name ?? ''), (_, args) => args[0].name);
      statements = () => q;
    }
    const redeemMs = [];
    let redeeming = true;
    const redeemer = (async () => {
      while (redeeming) {
        const t = performance.now();
        await store.acmeNonces.redeem(randomBytes(32).toString('base64url'), new Date(now.getTime() + 60_000));
        redeemMs.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    redeemMs.length = 0;
    const stopProbe = loopProbe();
    pruning = true;
    const t0 = performance.now();
    const deleted = await store.acmeNonces.prune(now);
    const seconds = (performance.now() - t0) / 1000;
    pruning = false;
    const gaps = stopProbe();
    redeeming = false;
    await redeemer;
    const st = statements().map((x) => x.ms);
    const bySql = {};
    for (const { l, ms, cpuMs } of statements()) {
      const e = (bySql[l] ??= { n: 0, maxMs: 0, totalMs: 0, over20ms: 0, ...(cpuMs === undefined ? {} : { cpuMaxMs: 0, cpuTotalMs: 0 }) });
      e.n++;
      if (ms > 20) e.over20ms++;
      if (cpuMs !== undefined) {
        e.cpuMaxMs = Math.max(e.cpuMaxMs, +cpuMs.toFixed(1));
        e.cpuTotalMs = Math.round(e.cpuTotalMs + cpuMs);
      }
      e.firstMs ??= +ms.toFixed(1);
      e.lastMs = +ms.toFixed(1);
      e.maxMs = Math.max(e.maxMs, +ms.toFixed(1));
      e.totalMs = Math.round(e.totalMs + ms);
    }
    // How a statement's time moves along the prune: its time at every tenth of the sequence.
    for (const [l, e] of Object.entries(bySql)) {
      const seq = statements().filter((x) => x.l === l).map((x) => x.ms);
      if (seq.length >= 10) e.alongMs = Array.from({ length: 11 }, (_, k) => +seq[Math.min(seq.length - 1, Math.floor((k * seq.length) / 10))].toFixed(1));
    }
    const max = (xs) => xs.reduce((m, x) => Math.max(m, x), 0);
    const sum = (xs) => xs.reduce((m, x) => m + x, 0);
    const result = {
      flavour,
      rows,
      fillSeconds: +fillSeconds.toFixed(1),
      deleted,
      pruneSeconds: +seconds.toFixed(2),
      loopMaxBlockMs: +max(gaps).toFixed(1),
      loopBlocksOver20ms: gaps.filter((g) => g > 20).length,
      loopBlockP99Ms: +([...gaps].sort((x, y) => x - y)[Math.floor(gaps.length * 0.99)] ?? 0).toFixed(1),
      redeemMaxMs: +max(redeemMs).toFixed(1),
      redeems: redeemMs.length,
      statements: st.length,
      statementMaxMs: +max(st).toFixed(1),
      statementTotalMs: Math.round(sum(st)),
      bySql,
    };
    console.log(JSON.stringify(result));
    await store.close();
    return result;
  } finally {
    await drop();
  }
}

for (const flavour of flavours) {
  if (flavour === 'postgres' && !server) {
    console.warn('skipping PostgreSQL: TRELLIS_TEST_DATABASE_URL is not set');
    continue;
  }
  for (const rows of sizes) await measure(flavour, rows);
}
