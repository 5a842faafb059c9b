/**
 * Opens the database behind a URL. `file:/abs/path.db` is SQLite
 * (better-sqlite3, WAL, Prisma's connection serialised, issuance on prepared
 * statements); `postgresql://…` or `postgres://…` is PostgreSQL (pg pool).
 * Only this directory imports Prisma.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import type pg from 'pg';
import type { AuditCheckpointRepository } from '../audit/checkpoint-ports.js';
import type { AuditRepository } from '../audit/ports.js';
import type { CaRepository, CertificateRepository } from '../ca/ports.js';
import type { CrlRepository } from '../crl/ports.js';
import { PkiError } from '../errors/pki-error.js';
import { createPrivateFile, makePrivate, makePrivateDir, warnIfSharedDir } from '../config/file-permissions.js';
import type { KeyBlobRepository, SecretSealer } from '../keys/ports.js';
import type { OcspResponseRepository } from '../ocsp/ports.js';
import type {
  AcmeAccountRepository,
  AcmeEabKeyRepository,
  AcmeNonceRepository,
  AcmeOrderRepository,
  InstanceSecretRepository,
  RenewalWindowRepository,
} from '../ra/acme/ports.js';
import type { CustodianRepository, QuorumRepository } from '../quorum/ports.js';
import type { ManufacturerCaRepository } from '../ra/devices/ports.js';
import type { TokenRepository } from '../tokens/ports.js';
import { acmeAccountRepository } from './acme-account-repository.js';
import { adminQueries, type AdminQueries } from './admin-queries.js';
import { acmeEabKeyRepository, resealLegacyEabKeys } from './acme-eab-repository.js';
import { acmeOrderRepository } from './acme-order-repository.js';
import { renewalWindowRepository } from './acme-renewal-window-repository.js';
import { acmePgHotPath } from './acme-pg.js';
import { acmeSqliteHotPath } from './acme-sqlite.js';
import { auditCheckpointRepository } from './audit-checkpoint-repository.js';
import { auditRepository, pgAuditChain } from './audit-repository.js';
import { caRepository } from './ca-repository.js';
import { certificateRepository } from './certificate-repository.js';
import type { Db, Kind } from './client.js';
import { crlRepository } from './crl-repository.js';
import { custodianRepository } from './custodian-repository.js';
import { deviceRepository, manufacturerCaRepository, type DeviceStoreRepository } from './device-repository.js';
import { instanceSecretRepository, prismaSecretRows, resealLegacyInstanceSecrets } from './instance-secret-repository.js';
import { lazyClient } from './lazy-client.js';
import { keyBlobRepository } from './key-blob-repository.js';
import { applyMigrations, migrationsDirOf, migrationStatus, openSqlite, sqliteBusyTimeoutMs, sqliteConnectionPragmas, type DbTarget, type MigrationStatus } from './migrate.js';
import { ocspResponseRepository } from './ocsp-repository.js';
import { quorumRepository } from './quorum-repository.js';
import { sqliteHotPath } from './sqlite-hot-path.js';
import { sqliteServing } from './sqlite-serving.js';
import { SerialQueue, serializedSqlite } from './sqlite-serial.js';
import { WalSync } from './wal-sync.js';
import { tokenRepository } from './token-repository.js';

/**
 * The page cache of each of the store's two SQLite connections: 2,000 KiB,
 * SQLite's own default. better-sqlite3 builds with 16,000 KiB, which a
 * connection fills once it has read that much (the CRLs of many revoked
 * certificates at start, OCSP lookups over many serials) and which the
 * malloc heap keeps afterwards: 12-17 MB less RSS per serving process, no
 * CPU per lookup measurably more (docs/performance.md, Memory). In WAL mode a
 * connection drops its cache anyway when another one committed since its
 * last read, which a server that issues does all the time.
 */
const sqliteCachePragma = 'cache_size = -2000';

/** Every repository of one database, plus its migrations. */
export interface Store {
  kind: Kind;
  cas: CaRepository;
  certificates: CertificateRepository;
  keyBlobs: KeyBlobRepository;
  tokens: TokenRepository;
  audit: AuditRepository;
  /** Signed audit checkpoints. */
  auditCheckpoints: AuditCheckpointRepository;
  crls: CrlRepository;
  ocspResponses: OcspResponseRepository;
  acmeAccounts: AcmeAccountRepository;
  acmeOrders: AcmeOrderRepository;
  acmeNonces: AcmeNonceRepository;
  acmeEabKeys: AcmeEabKeyRepository;
  /** Secrets shared by every node of the instance. */
  secrets: InstanceSecretRepository;
  /** RFC 9773 renewal windows set by an operator. */
  renewalWindows: RenewalWindowRepository;
  /** The device registry (issue 10). */
  devices: DeviceStoreRepository;
  /** Manufacturer CAs whose certificates are factory identities. */
  manufacturerCas: ManufacturerCaRepository;
  /** Quorum custodians (issue 11). */
  custodians: CustodianRepository;
  /** Quorum requests and their approvals. */
  quorum: QuorumRepository;
  /** Read queries of the admin API (/api/v1). */
  queries: AdminQueries;
  /**
   * From now on, EAB HMAC keys and instance secrets are sealed with `sealer`
   * (cmd binds the online keystore's; before that, reading or creating them
   * is `forbidden`). Rows an older version stored in clear are sealed now;
   * returns how many.
   */
  sealSecrets(sealer: SecretSealer): Promise<number>;
  /** Applies pending migrations (safe while other processes use the database); returns their names. */
  migrate(): Promise<string[]>;
  /** Compares the database with the migrations directory. */
  migrationStatus(): Promise<MigrationStatus>;
  /** Closes every connection; the store is unusable afterwards. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link openStore}. */
export interface OpenOptions {
  /** Apply pending migrations on open (default true). */
  migrate?: boolean;
  /** Migrations directory (default: the package's prisma/<flavour>/migrations; tests pass a copy). */
  migrationsDir?: string;
  /** PostgreSQL pool size per process (default 10). */
  poolSize?: number;
}

/**
 * Parses a database URL: `file:` + a path (relative paths resolve against the
 * working directory) or a `postgresql://`/`postgres://` URL. SQLite in memory
 * is refused: the store opens several connections, and each would see its own
 * empty database.
 */
export function parseDatabaseUrl(url: string): DbTarget {
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url };
  if (url.startsWith('file:')) {
    const file = url.startsWith('file://') ? fileURLToPath(url) : url.slice('file:'.length);
    if (file === '' || file.startsWith(':memory:') || file.includes('mode=memory')) {
      throw new PkiError('invalidConfig', 'an in-memory SQLite database cannot be shared by the store\'s connections; use a file');
    }
    return { kind: 'sqlite', file: path.resolve(file) };
  }
  throw new PkiError('invalidConfig', 'database URL must start with file: (SQLite) or postgresql:// (PostgreSQL)');
}

/** Opens the store behind `url`, applying pending migrations unless `opts.migrate` is false. */
export async function openStore(url: string, opts: OpenOptions = {}): Promise<Store> {
  return (await openStoreInternals(url, opts)).store;
}

/**
 * {@link openStore}, also returning the Prisma client and, for SQLite, the
 * raw connection of the hot paths. For the store's own tests (they race
 * interactive transactions against the repositories, and read each
 * connection's settings); code outside src/store uses openStore.
 */
export async function openStoreInternals(url: string, opts: OpenOptions = {}): Promise<{ store: Store; db: Db; raw?: Database.Database }> {
  const target = parseDatabaseUrl(url);
  const kind: Kind = target.kind;
  const dir = opts.migrationsDir ?? migrationsDirOf(kind);
  if (target.kind === 'sqlite') privateSqliteFiles(target.file);
  // Migrate before the client connects: the engine opens connections of its own.
  if (opts.migrate ?? true) await applyMigrations(target, dir);

  let db: Db;
  let raw: Database.Database | undefined;
  let queue: SerialQueue | undefined;
  let wal: WalSync | undefined;
  let pool: pg.Pool | undefined;
  let pgTypes: typeof pg.types | undefined;
  // Each flavour's client, adapter and driver are imported only when opened:
  // a SQLite process never loads pg (~7 MB of RSS per process), nor the other way round.
  if (target.kind === 'sqlite') {
    const file = target.file;
    const conn = openSqlite(file);
    conn.pragma(sqliteCachePragma);
    const q = new SerialQueue();
    // Every write of the store resolves once it is on disk (wal-sync.ts); an in-memory database has nothing to sync.
    const w = conn.memory ? undefined : new WalSync(`${file}-wal`);
    [raw, queue, wal] = [conn, q, w];
    // Prisma is imported and its client made on the first query that needs it (lazy-client.ts): a serving process
    // runs every query of its start, its load and its timers on prepared statements (sqlite-serving.ts) and never loads it.
    db = lazyClient(async () => {
      const [{ PrismaBetterSqlite3 }, { PrismaClient: SqliteClient }] = await Promise.all([import('@prisma/adapter-better-sqlite3'), import('../generated/sqlite/client.js')]);
      const client = new SqliteClient({ adapter: serializedSqlite(new PrismaBetterSqlite3({ url: file, timeout: sqliteBusyTimeoutMs }), q, w) });
      try {
        // Per-connection settings, the same as openSqlite sets on the raw connection.
        for (const pragma of [...sqliteConnectionPragmas, sqliteCachePragma]) await client.$executeRawUnsafe(`PRAGMA ${pragma}`);
      } catch (err) {
        await client.$disconnect();
        throw err;
      }
      return client;
    });
  } else {
    const [{ PrismaPg }, { PrismaClient: PgClient }, { default: pgDriver }] = await Promise.all([import('@prisma/adapter-pg'), import('../generated/pg/client.js'), import('pg')]);
    pgTypes = pgDriver.types;
    // One pool for Prisma and the ACME hot path (acme-pg.ts); Prisma ends it on $disconnect.
    pool = new pgDriver.Pool({ connectionString: target.url, max: opts.poolSize ?? 10 });
    // An idle connection that breaks (server restart, a database dropped WITH (FORCE)) is
    // discarded by pg-pool and the next checkout opens a new one; unheard, its 'error'
    // would end the process. Prisma adds such a listener too, but only once it connects.
    pool.on('error', () => undefined);
    db = new PgClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) }) as unknown as Db;
  }
  const hot = raw && queue && sqliteHotPath(raw, queue, wal);
  const serving = raw && queue && sqliteServing(raw, queue, wal);
  // After sqliteHotPath, which sets busy_timeout 0 on the shared raw connection.
  const acmeHot = raw && queue ? acmeSqliteHotPath(raw, queue, wal) : acmePgHotPath(pool!, pgTypes!);
  // PostgreSQL: every audited transaction of this store runs through one chain, which groups this process's appends.
  const auditChain = pool && pgAuditChain(pool);
  const secretRows = serving?.secrets ?? prismaSecretRows(db);
  let sealer: SecretSealer | null = null;
  const boundSealer = () => sealer;
  let closed: Promise<void> | undefined;
  const store: Store = {
    kind,
    cas: { ...caRepository(db), ...serving?.cas },
    certificates: { ...certificateRepository(db, hot, auditChain), ...serving?.certificates },
    keyBlobs: { ...keyBlobRepository(db), ...serving?.keyBlobs },
    tokens: { ...tokenRepository(db), ...serving?.tokens },
    audit: auditRepository(db, hot, auditChain),
    auditCheckpoints: { ...auditCheckpointRepository(db, kind), ...serving?.auditCheckpoints },
    crls: { ...crlRepository(db), ...serving?.crls },
    ocspResponses: { ...ocspResponseRepository(db), ...serving?.ocspResponses },
    acmeAccounts: acmeAccountRepository(db, acmeHot.accounts),
    acmeOrders: { ...acmeOrderRepository(db, acmeHot.orders, auditChain), ...serving?.acmeOrders },
    acmeNonces: acmeHot.nonces,
    acmeEabKeys: acmeEabKeyRepository(db, boundSealer),
    secrets: instanceSecretRepository(secretRows, boundSealer),
    renewalWindows: renewalWindowRepository(db),
    devices: deviceRepository(db, raw && queue ? { raw, queue, wal } : undefined),
    manufacturerCas: manufacturerCaRepository(db),
    custodians: custodianRepository(db),
    quorum: quorumRepository(db),
    queries: adminQueries(db, kind),
    async sealSecrets(s) {
      sealer = s;
      // SQLite: EAB keys are read through Prisma only when one is still stored in clear (an older version's).
      const clearEab = serving ? (await serving.eabKeys()).some((k) => !s.isSealed(k)) : true;
      const sealed = (clearEab ? await resealLegacyEabKeys(db, s) : 0) + (await resealLegacyInstanceSecrets(secretRows, s));
      // The clear values stay in the WAL's older frames until a checkpoint: fold them into the database
      // now (secure_delete zeroes the space they leave there). Best effort: a busy reader only delays it.
      if (sealed > 0 && raw) await queue!.run(() => raw!.pragma('wal_checkpoint(TRUNCATE)'));
      return sealed;
    },
    migrate: () => applyMigrations(target, dir),
    migrationStatus: () => migrationStatus(target, dir),
    close() {
      closed ??= (async () => {
        // Let queued hot-path work finish before its connection goes away.
        if (queue) await queue.run(() => raw?.close());
        await db.$disconnect();
        // Prisma ends the pool only if it ever connected; a store used only through `pg` (audit chain, ACME hot path) ends it here.
        if (pool && !pool.ending) await pool.end();
        await wal?.close();
      })();
      return closed;
    },
  };
  return { store, db, ...(raw ? { raw } : {}) };
}

/**
 * Makes the files of a SQLite database private before any connection opens
 * it: creates a missing parent directory 0700 and the database file 0600
 * (SQLite gives -wal, -shm and -journal the database file's mode), and sets
 * existing files of ours that group or others may read back to 0600 (the
 * database, its -wal, -shm and -journal, the migration lock and its journal).
 * A directory the operator made is never changed: one that group or others
 * may enter gets a warning.
 */
function privateSqliteFiles(file: string): void {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) makePrivateDir(dir);
  else warnIfSharedDir(dir, 'database directory');
  createPrivateFile(file);
  for (const suffix of ['', '-wal', '-shm', '-journal', '.migrate-lock', '.migrate-lock-journal']) makePrivate(`${file}${suffix}`);
  createPrivateFile(`${file}.migrate-lock`);
}
