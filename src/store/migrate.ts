/**
 * Applies the SQL migrations in prisma/<flavour>/migrations in-process with
 * the wasm schema engine (the Prisma 7 CLI cannot migrate offline). The
 * engine keeps the standard `_prisma_migrations` table, so applying twice
 * changes nothing and an older database is upgraded in place.
 *
 * Several processes may open one database at once (`serve --workers N`, the
 * CLI beside a running server, several nodes on one PostgreSQL). Whoever
 * finds a migration pending takes a lock that spans processes, looks again,
 * and only then applies: SQLite through a lock file beside the database,
 * PostgreSQL through a session advisory lock.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { bindMigrationAwareSqlAdapterFactory, type SqlDriverAdapter, type SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import Database from 'better-sqlite3';
import { PkiError } from '../errors/pki-error.js';

// pg and the Prisma adapters are imported where a PostgreSQL database or the
// schema engine needs them: a SQLite server with nothing to migrate loads neither.
const pgDriver = async () => (await import('pg')).default;

/** Where a database lives: a SQLite file (absolute path) or a PostgreSQL URL. */
export type DbTarget = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

/** How long a SQLite connection waits for another process's write lock before SQLITE_BUSY. */
export const sqliteBusyTimeoutMs = 10_000;
/** How long a process waits for another one's migration to finish. */
const migrationLockTimeoutMs = 120_000;
/** Session advisory lock key for migrations on PostgreSQL ("TRLSMIG" in ASCII). */
const pgMigrationLockKey = 0x54524c534d4947n;

/** The package's migrations directory for a database kind; works from src/store and dist/store alike. */
export function migrationsDirOf(kind: DbTarget['kind']): string {
  return path.resolve(import.meta.dirname, '../../prisma', kind === 'sqlite' ? 'sqlite' : 'pg', 'migrations');
}

/** Migration directory names in `dir` that hold a migration.sql, in order. */
export function migrationNames(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(dir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort();
}

/** Where the database stands relative to a migrations directory. */
export interface MigrationStatus {
  /** Applied, in order. */
  applied: string[];
  /** In the directory and not applied yet. */
  pending: string[];
  /** Started and never finished: Prisma refuses further migrations until this is resolved by hand. */
  failed: string[];
  /** Applied, but the file has changed since (its checksum differs). */
  edited: string[];
  /** Applied to the database but absent from the directory: the database is newer than this code. */
  unknown: string[];
}

interface MigrationRow {
  migration_name: string;
  checksum: string;
  finished_at: unknown;
  rolled_back_at: unknown;
}

const selectMigrations = 'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at, migration_name';
const missingTable = (err: unknown) => /_prisma_migrations/.test(String((err as Error)?.message)) && /no such table|does not exist/i.test(String((err as Error)?.message));

/**
 * Settings of every connection to a Trellis database (they hold per
 * connection, not per file), in the order they are set.
 *
 * synchronous = NORMAL, with durability from the store itself: a commit
 * appends its frames to the WAL and returns, and every write of the store
 * resolves only after the WAL was fdatasync'ed in the thread pool
 * (wal-sync.ts), so a certificate handed to a client, an acknowledged
 * revocation and the audit events beside them survive a power cut, as with
 * FULL, without an fsync on the event loop inside every COMMIT. The
 * migration engine's own connection is not covered; a migration is not
 * acknowledged to anyone before the next durable write.
 *
 * secure_delete = FAST: space freed inside a page (a clear secret replaced by
 * its sealed form, a deleted row) is zeroed when that costs no extra I/O.
 */
export const sqliteConnectionPragmas = ['synchronous = NORMAL', 'foreign_keys = ON', 'secure_delete = FAST'] as const;

/** Opens a raw better-sqlite3 connection with the settings every connection to a Trellis database uses. */
export function openSqlite(file: string): Database.Database {
  const db = new Database(file, { timeout: sqliteBusyTimeoutMs });
  // WAL persists in the file: readers never block the writer, so the CLI works beside a running server.
  db.pragma('journal_mode = WAL');
  for (const pragma of sqliteConnectionPragmas) db.pragma(pragma);
  return db;
}

async function readMigrationRows(target: DbTarget): Promise<MigrationRow[]> {
  if (target.kind === 'sqlite') {
    if (!fs.existsSync(target.file)) return [];
    const db = openSqlite(target.file);
    try {
      return db.prepare(selectMigrations).all() as MigrationRow[];
    } catch (err) {
      if (missingTable(err)) return [];
      throw err;
    } finally {
      db.close();
    }
  }
  const client = new (await pgDriver()).Client({ connectionString: target.url });
  await client.connect();
  try {
    return (await client.query<MigrationRow>(selectMigrations)).rows;
  } catch (err) {
    if (missingTable(err)) return [];
    throw err;
  } finally {
    await client.end();
  }
}

const checksumOf = (dir: string, name: string) => createHash('sha256').update(fs.readFileSync(path.join(dir, name, 'migration.sql'))).digest('hex');

/** Compares the database's migration table with `dir`, without loading the schema engine. */
export async function migrationStatus(target: DbTarget, dir: string): Promise<MigrationStatus> {
  const rows = await readMigrationRows(target);
  const names = migrationNames(dir);
  const done = rows.filter((r) => r.finished_at !== null && r.rolled_back_at === null);
  const doneNames = new Set(done.map((r) => r.migration_name));
  return {
    applied: done.map((r) => r.migration_name),
    pending: names.filter((n) => !doneNames.has(n)),
    failed: rows.filter((r) => r.finished_at === null && r.rolled_back_at === null).map((r) => r.migration_name),
    edited: done.filter((r) => names.includes(r.migration_name) && r.checksum !== checksumOf(dir, r.migration_name)).map((r) => r.migration_name),
    unknown: done.filter((r) => !names.includes(r.migration_name)).map((r) => r.migration_name),
  };
}

let enginePromise: Promise<any> | undefined;
/** Loads the wasm schema engine once per process (about 0.3 s). */
function loadEngine(): Promise<any> {
  enginePromise ??= (async () => {
    const require = createRequire(import.meta.url);
    const glueId = '@prisma/schema-engine-wasm/schema_engine_bg';
    const glue: any = await import(glueId);
    const wasm = path.join(path.dirname(require.resolve(glueId)), 'schema_engine_bg.wasm');
    // tsconfig has no DOM lib, so WebAssembly is reached untyped.
    const wa = (globalThis as any).WebAssembly;
    const inst = new wa.Instance(new wa.Module(fs.readFileSync(wasm)), { './schema_engine_bg.js': glue });
    glue.__wbg_set_wasm(inst.exports);
    (inst.exports as any).__wbindgen_start();
    // The engine reports panics through this global; the error it throws carries the message too.
    (globalThis as any).PRISMA_WASM_PANIC_REGISTRY ??= { set_message: () => {} };
    return glue.SchemaEngine;
  })();
  return enginePromise;
}

function migrationsList(dir: string) {
  const lock = path.join(dir, 'migration_lock.toml');
  return {
    baseDir: dir,
    shadowDbInitScript: '',
    lockfile: { path: 'migration_lock.toml', content: fs.existsSync(lock) ? fs.readFileSync(lock, 'utf8') : null },
    migrationDirectories: migrationNames(dir).map((d) => ({
      path: d,
      migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: fs.readFileSync(path.join(dir, d, 'migration.sql'), 'utf8') } },
    })),
  };
}

/**
 * Lets the engine migrate a SQLite database that other connections hold open
 * (a running server, the store's own connections). The engine's first step
 * is `PRAGMA locking_mode=EXCLUSIVE`, which waits until every other
 * connection is gone, so `trellis db migrate` beside a server would time out.
 * Instead, withMigrationLock keeps other migrators out, and each migration
 * file runs in one IMMEDIATE transaction (SQLite DDL is transactional): other
 * connections see the schema before or after it, never halfway, and a
 * failing file changes nothing. A migration.sql must therefore not contain
 * BEGIN or COMMIT itself (generated ones never do).
 */
function sharedSqliteMigrations<A extends SqlDriverAdapter>(a: A): A {
  const executeRaw = a.executeRaw.bind(a);
  const executeScript = a.executeScript.bind(a);
  a.executeRaw = async (q) => (/^\s*PRAGMA\s+(main\.)?locking_mode\s*=\s*EXCLUSIVE\s*;?\s*$/i.test(q.sql) ? 0 : executeRaw(q));
  a.executeScript = async (script) => {
    await executeScript('BEGIN IMMEDIATE');
    try {
      await executeScript(script);
    } catch (err) {
      await executeScript('ROLLBACK');
      throw err;
    }
    await executeScript('COMMIT');
  };
  return a;
}

/** Runs the engine's applyMigrations over a fresh adapter; closes every connection it opened. */
async function runEngine(target: DbTarget, dir: string): Promise<string[]> {
  const SchemaEngine = await loadEngine();
  const factory: SqlMigrationAwareDriverAdapterFactory =
    target.kind === 'sqlite'
      ? new (await import('@prisma/adapter-better-sqlite3')).PrismaBetterSqlite3({ url: target.file, timeout: sqliteBusyTimeoutMs })
      : new (await import('@prisma/adapter-pg')).PrismaPg({ connectionString: target.url, max: 1 });
  // engine.free() does not close the engine's connections; a lingering SQLite
  // connection would hold the file, a PostgreSQL one would hold a pool open.
  const opened: { dispose(): Promise<void> }[] = [];
  const track = <T extends { dispose(): Promise<void> }>(a: T) => (opened.push(a), a);
  const bound = bindMigrationAwareSqlAdapterFactory({
    adapterName: factory.adapterName,
    provider: factory.provider,
    connect: async () => {
      const a = track(await factory.connect());
      if (target.kind !== 'sqlite') return a;
      // The engine writes too: its commits are as durable as the store's.
      for (const pragma of sqliteConnectionPragmas) await a.executeScript(`PRAGMA ${pragma}`);
      return sharedSqliteMigrations(a);
    },
    connectToShadowDb: async () => track(await factory.connectToShadowDb()),
  });
  // Applying needs no models, only the provider; the migrations directory may be a copy without a schema beside it.
  const provider = target.kind === 'sqlite' ? 'sqlite' : 'postgresql';
  const datamodels = [[path.join(dir, 'schema.prisma'), `datasource db {\n  provider = "${provider}"\n}\n`]];
  const engine = await SchemaEngine.new({ datamodels }, () => {}, bound);
  try {
    const r = await engine.applyMigrations({ migrationsList: migrationsList(dir), filters: { externalTables: [], externalEnums: [] } });
    return r.appliedMigrationNames as string[];
  } catch (err) {
    const detail = (bound.errorRegistry as any).registeredErrors.map((e: { error: unknown }) => String(e.error)).join('; ');
    throw new PkiError('invalidConfig', `database migration failed: ${(err as Error).message}${detail ? ` (${detail})` : ''}`, { cause: err });
  } finally {
    engine.free();
    await Promise.all(opened.map((a) => a.dispose()));
  }
}

/** In-process queue per database, so two opens in one process never wait on each other's lock synchronously. */
const localLocks = new Map<string, Promise<unknown>>();
function locally<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = localLocks.get(key) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const settled = run.catch(() => undefined);
  localLocks.set(key, settled);
  void settled.then(() => {
    if (localLocks.get(key) === settled) localLocks.delete(key);
  });
  return run;
}

/**
 * Holds a lock across processes for `fn`. SQLite: an exclusive transaction
 * on a small lock database beside the data file (the OS drops it if the
 * process dies; the busy timeout blocks this process, which is starting up
 * anyway). PostgreSQL: a session advisory lock on a dedicated connection.
 */
async function withMigrationLock<T>(target: DbTarget, fn: () => Promise<T>): Promise<T> {
  if (target.kind === 'sqlite') {
    return locally(target.file, async () => {
      const lock = new Database(`${target.file}.migrate-lock`, { timeout: migrationLockTimeoutMs });
      try {
        lock.exec('BEGIN EXCLUSIVE');
        try {
          return await fn();
        } finally {
          lock.exec('ROLLBACK');
        }
      } finally {
        lock.close();
      }
    });
  }
  return locally(target.url, async () => {
    const client = new (await pgDriver()).Client({ connectionString: target.url });
    await client.connect();
    try {
      await client.query(`SET lock_timeout = ${migrationLockTimeoutMs}`);
      await client.query('SELECT pg_advisory_lock($1)', [pgMigrationLockKey.toString()]);
      try {
        return await fn();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [pgMigrationLockKey.toString()]);
      }
    } finally {
      await client.end();
    }
  });
}

/**
 * Applies the migrations in `dir` that the database lacks, in order, and
 * returns their names. Cheap when nothing is pending (one query, no engine).
 * A database with a failed migration is refused until an operator resolves it.
 */
export async function applyMigrations(target: DbTarget, dir: string): Promise<string[]> {
  if ((await migrationStatus(target, dir)).pending.length === 0) return [];
  return withMigrationLock(target, async () => {
    // Another process may have migrated while we waited for the lock.
    const status = await migrationStatus(target, dir);
    if (status.failed.length) {
      throw new PkiError('invalidConfig', `database migration ${status.failed.join(', ')} failed earlier; fix the database by hand, then mark it rolled back`);
    }
    if (status.pending.length === 0) return [];
    return runEngine(target, dir);
  });
}
