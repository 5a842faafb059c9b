/**
 * Every table of the store, page by page, for `trellis backup` (the port is
 * backup/ports.ts). Rows go through the Prisma models, so both flavours give
 * and take the same values (octets, dates, big integers). Tables come in
 * Prisma's model order, the order of models.prisma, where every model with a
 * relation comes after the model it refers to (rows are restored in this
 * order, so a foreign key always finds its row).
 */
import type Database from 'better-sqlite3';
import pg from 'pg';
import type { BackupTables, TableRow } from '../backup/ports.js';
import { PkiError } from '../errors/pki-error.js';
import { Prisma } from '../generated/sqlite/client.js';
import type { Db, Kind } from './client.js';
import { openStoreInternals, type OpenOptions, type Store } from './open.js';
import { sqliteDate } from './sqlite-date.js';

type Model = Prisma.ModelName;

// Primary key of each model, for the page order and the cursor. A Record, so a new model is a compile error until listed here.
const primaryKeys: Record<Model, readonly string[]> = {
  CertificateAuthority: ['id'],
  KeyBlob: ['id'],
  Certificate: ['id'],
  CrlSequence: ['caId'],
  Crl: ['id'],
  OcspResponse: ['issuerId', 'serialHex'],
  ApiToken: ['id'],
  AuditEvent: ['seq'],
  AuditCheckpoint: ['id'],
  AcmeAccount: ['id'],
  AcmeOrder: ['id'],
  AcmeAuthorization: ['id'],
  AcmeUsedNonce: ['nonce'],
  AcmeEabKey: ['keyId'],
  InstanceSecret: ['name'],
  Device: ['id'],
  ManufacturerCa: ['name'],
  KeyStateEvent: ['id'],
  Custodian: ['name'],
  QuorumRequest: ['id'],
  QuorumApproval: ['requestId', 'custodian'],
};

// Rows per page: a full CRL can weigh megabytes, a certificate row a few kilobytes.
const pageSize = (m: Model) => (m === 'Crl' ? 4 : 500);
// Rows per INSERT: well under SQLite's 32766 bound parameters for the widest table.
const insertChunk = 200;
// Tables whose integer key comes from a PostgreSQL sequence (SERIAL).
const serialKeys: readonly Model[] = ['Certificate', 'Crl', 'AuditCheckpoint', 'KeyStateEvent'];

interface Delegate {
  findMany(args: object): Promise<TableRow[]>;
  findFirst(args: object): Promise<TableRow | null>;
  createMany(args: { data: TableRow[] }): Promise<unknown>;
}
const delegate = (db: object, m: Model): Delegate => (db as Record<string, Delegate>)[m[0]!.toLowerCase() + m.slice(1)]!;

function modelOf(table: string): Model {
  if (!Object.hasOwn(primaryKeys, table)) throw new PkiError('malformed', `backup names a table this Trellis does not have: ${table}`);
  return table as Model;
}

function page(db: object, m: Model, after: TableRow | null): Promise<TableRow[]> {
  const pk = primaryKeys[m];
  const orderBy = pk.map((f) => ({ [f]: 'asc' }));
  const cursor = after && (pk.length === 1 ? { [pk[0]!]: after[pk[0]!] } : { [pk.join('_')]: Object.fromEntries(pk.map((f) => [f, after[f]])) });
  return delegate(db, m).findMany({ orderBy, take: pageSize(m), ...(cursor ? { cursor, skip: 1 } : {}) });
}

// SQLite values as Prisma writes them (see sqlite-hot-path.ts): DateTime as ISO text, Boolean as 0/1.
const sqliteValue = (v: unknown): unknown => (v instanceof Date ? sqliteDate(v) : typeof v === 'boolean' ? (v ? 1 : 0) : v);

/**
 * Inserts rows on SQLite's raw connection in one transaction: Prisma's
 * createMany costs about 1 ms a row, this a few microseconds. Only a restore
 * writes this way, into a new database no other process uses yet.
 */
function insertRaw(raw: Database.Database, m: Model, rows: TableRow[]): void {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]!);
  const insert = raw.prepare(`INSERT INTO "${m}" (${columns.map((c) => `"${c}"`).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
  raw.transaction(() => {
    for (const row of rows) insert.run(columns.map((c) => sqliteValue(row[c])));
  })();
}

// PostgreSQL values for node-postgres: Prisma's DateTime columns are TIMESTAMP(3) in UTC, so a time goes as
// UTC text without a zone (pg would send a Date in the process's local time); big integers as decimal text.
const pgValue = (v: unknown): unknown => (v instanceof Date ? v.toISOString().replace('Z', '') : typeof v === 'bigint' ? v.toString() : v);

async function connectPg(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

/**
 * Inserts rows on a plain node-postgres connection, one multi-row INSERT per
 * chunk in one transaction: createMany costs over 1 ms a row. Only a restore
 * writes this way, into a database it checked empty.
 */
async function insertPg(client: Promise<pg.Client>, m: Model, rows: TableRow[]): Promise<void> {
  if (rows.length === 0) return;
  const c = await client;
  const columns = Object.keys(rows[0]!);
  await c.query('BEGIN');
  try {
    for (let i = 0; i < rows.length; i += insertChunk) {
      const chunk = rows.slice(i, i + insertChunk);
      const values = chunk.map((_, r) => `(${columns.map((_c, k) => `$${r * columns.length + k + 1}`).join(', ')})`).join(', ');
      await c.query(`INSERT INTO "${m}" (${columns.map((col) => `"${col}"`).join(', ')}) VALUES ${values}`, chunk.flatMap((row) => columns.map((col) => pgValue(row[col]))));
    }
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK');
    throw err;
  }
}

/**
 * {@link BackupTables} over an open Prisma client; inserts go through `raw`
 * (SQLite: the store's own better-sqlite3 connection) or a node-postgres
 * connection to `pgUrl`, else through Prisma.
 */
export function backupTables(db: Db, kind: Kind, store: Pick<Store, 'close' | 'migrate' | 'migrationStatus'>, raw?: Database.Database, pgUrl?: string): BackupTables {
  const tables = Object.values(Prisma.ModelName) as Model[];
  let pgClient: Promise<pg.Client> | undefined;
  return {
    tables,
    migrations: async () => (await store.migrationStatus()).applied,
    migrate: async () => {
      await store.migrate();
    },
    snapshot(fn) {
      // A read transaction: SQLite's deferred BEGIN reads one WAL snapshot, PostgreSQL's REPEATABLE READ one MVCC
      // snapshot; writers of other processes go on. The timeouts only bound a stuck backup.
      return db.$transaction((tx) => fn((table, after) => page(tx, modelOf(table), after)), {
        maxWait: 60_000,
        timeout: 24 * 3600_000,
        // Typed with the SQLite client, which knows only Serializable; the PostgreSQL client takes RepeatableRead.
        isolationLevel: (kind === 'postgres' ? 'RepeatableRead' : 'Serializable') as Prisma.TransactionIsolationLevel,
      });
    },
    async nonEmpty() {
      const out: string[] = [];
      for (const m of tables) {
        try {
          if (await delegate(db, m).findFirst({ select: Object.fromEntries(primaryKeys[m].map((f) => [f, true])) })) out.push(m);
        } catch (err) {
          // P2021: the table does not exist (a database migrated by an older Trellis), so it holds nothing.
          if ((err as { code?: unknown }).code !== 'P2021') throw err;
        }
      }
      return out;
    },
    async insert(table, rows) {
      const m = modelOf(table);
      if (raw) return insertRaw(raw, m, rows);
      if (pgUrl) return insertPg((pgClient ??= connectPg(pgUrl)), m, rows);
      const d = delegate(db, m);
      for (let i = 0; i < rows.length; i += insertChunk) await d.createMany({ data: rows.slice(i, i + insertChunk) });
    },
    async afterInsert() {
      // The rows went in on the raw connection: fold the WAL into the database file (the checkpoint syncs it).
      if (raw) raw.pragma('wal_checkpoint(TRUNCATE)');
      if (kind !== 'postgres') return;
      for (const m of serialKeys) {
        // setval(seq, max, true): the next nextval() returns max + 1; an empty table keeps the sequence at 1.
        await db.$executeRawUnsafe(`SELECT setval(pg_get_serial_sequence('"${m}"', 'id'), COALESCE((SELECT MAX("id") FROM "${m}"), 1), (SELECT COUNT(*) > 0 FROM "${m}"))`);
      }
    },
    async raiseCrlSequence(caId, next) {
      const before = (await db.crlSequence.findUnique({ where: { caId } }))?.last ?? null;
      const last = before !== null && before >= next - 1n ? before : next - 1n;
      await db.crlSequence.upsert({ where: { caId }, create: { caId, last }, update: { last } });
      return { before, after: last };
    },
    async dropCrlLeases() {
      await db.crlSequence.deleteMany({ where: { caId: { startsWith: 'lease:' } } });
    },
    async close() {
      if (pgClient) await (await pgClient).end();
      await store.close();
    },
  };
}

/**
 * Opens the database behind `url` for backup or restore (migrating it unless
 * `opts.migrate` is false; SQLite's hot path needs the tables, so only
 * PostgreSQL opens unmigrated).
 */
export async function openBackupTables(url: string, opts: OpenOptions = {}): Promise<BackupTables> {
  const { store, db, raw } = await openStoreInternals(url, opts);
  return backupTables(db, store.kind, store, raw, store.kind === 'postgres' ? url : undefined);
}
