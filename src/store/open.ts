/**
 * Opens the database behind a URL: `file:…` is SQLite (better-sqlite3, WAL,
 * writes serialised in-process), `postgresql://…` is PostgreSQL (pg pool).
 * Only this directory imports Prisma.
 */
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import pg from 'pg';
import path from 'node:path';
import type { AuditRepository } from '../audit/ports.js';
import type { CaRepository, CertificateRepository } from '../ca/ports.js';
import { PkiError } from '../errors/pki-error.js';
import { PrismaClient as PgClient } from '../generated/pg/client.js';
import { PrismaClient as SqliteClient } from '../generated/sqlite/client.js';
import type { KeyBlobRepository } from '../keys/ports.js';
import type { TokenRepository } from '../tokens/ports.js';
import { caRepository } from './ca-repository.js';
import { certificateRepository } from './certificate-repository.js';
import type { Db, Kind } from './client.js';
import { applyMigrations, migrationNames, migrationsDirOf } from './migrate.js';
import { auditRepository, keyBlobRepository, tokenRepository } from './other-repositories.js';
import { serializedSqlite } from './sqlite-serial.js';
import { sqliteHotPath } from './sqlite-hot-path.js';

export interface Store {
  kind: Kind;
  cas: CaRepository;
  certificates: CertificateRepository;
  keyBlobs: KeyBlobRepository;
  tokens: TokenRepository;
  audit: AuditRepository;
  /** Applies pending migrations; returns their names. */
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Apply pending migrations on open (default true). */
  migrate?: boolean;
  /** Migrations directory (tests use a copy to exercise upgrades). */
  migrationsDir?: string;
}

function sqliteFactory(file: string) {
  // busy timeout: the CLI and a running server share the file; WAL lets readers and one writer proceed.
  return new PrismaBetterSqlite3({ url: file, timeout: 10_000 });
}

/** Names of migrations already applied, read with a short-lived raw connection (no engine, no Prisma client). */
async function appliedMigrations(kind: Kind, target: string): Promise<string[]> {
  const query = 'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL';
  const missingTable = (err: unknown) => /_prisma_migrations|does not exist|no such table/i.test(String((err as Error)?.message));
  if (kind === 'sqlite') {
    if (target === ':memory:') return [];
    const db = new Database(target, { timeout: 10_000 });
    try {
      // WAL persists in the file: readers never block the writer, so the CLI works beside a running server.
      db.pragma('journal_mode = WAL');
      return (db.prepare(query).all() as { migration_name: string }[]).map((r) => r.migration_name);
    } catch (err) {
      if (missingTable(err)) return [];
      throw err;
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: target });
  await client.connect();
  try {
    return (await client.query<{ migration_name: string }>(query)).rows.map((r) => r.migration_name);
  } catch (err) {
    if (missingTable(err)) return [];
    throw err;
  } finally {
    await client.end();
  }
}

export async function openStore(url: string, opts: OpenOptions = {}): Promise<Store> {
  let kind: Kind;
  let target: string;
  if (url.startsWith('file:')) {
    kind = 'sqlite';
    target = url.slice('file:'.length);
    if (target !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(target)), { recursive: true });
  } else if (/^postgres(ql)?:\/\//.test(url)) {
    kind = 'postgres';
    target = url;
  } else {
    throw new PkiError('invalidConfig', 'database URL must start with file: (SQLite) or postgresql:// (PostgreSQL)');
  }
  const dir = opts.migrationsDir ?? migrationsDirOf(kind === 'sqlite' ? 'sqlite' : 'pg');
  const migrate = async (): Promise<string[]> => {
    const applied = await appliedMigrations(kind, target);
    // The wasm engine costs a few hundred ms to load: start it only when something is pending.
    if (migrationNames(dir).every((m) => applied.includes(m))) return [];
    return applyMigrations(kind === 'sqlite' ? sqliteFactory(target) : new PrismaPg({ connectionString: target }), dir);
  };
  // Migrate before the client opens its connection, so the engine never waits on our own lock.
  if (opts.migrate ?? true) await migrate();

  let db: Db;
  let raw: Database.Database | undefined;
  if (kind === 'sqlite') {
    db = new SqliteClient({ adapter: serializedSqlite(sqliteFactory(target)) as never });
    raw = new Database(target, { timeout: 10_000 });
    raw.pragma('synchronous = NORMAL');
    try {
      await db.$executeRawUnsafe('PRAGMA synchronous=NORMAL');
      await db.$executeRawUnsafe('PRAGMA foreign_keys=ON');
    } catch (err) {
      raw.close();
      await db.$disconnect();
      throw err;
    }
  } else {
    db = new PgClient({ adapter: new PrismaPg({ connectionString: target, max: 10 }) }) as unknown as Db;
  }
  const hot = raw && sqliteHotPath(raw);
  return {
    kind,
    cas: caRepository(db),
    certificates: certificateRepository(db, kind, hot),
    keyBlobs: keyBlobRepository(db),
    tokens: tokenRepository(db),
    audit: auditRepository(db, kind, hot),
    migrate,
    async close() {
      raw?.close();
      await db.$disconnect();
    },
  };
}
