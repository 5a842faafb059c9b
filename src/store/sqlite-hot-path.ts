/**
 * The issuance hot path on SQLite, through better-sqlite3 prepared
 * statements on a second connection instead of Prisma: Prisma spends about
 * 100–200 µs per row building and mapping queries, a prepared statement about
 * 5 µs (numbers in the store's report; the issuance budget is ~50 µs per
 * certificate). Each batch runs in one IMMEDIATE transaction, so it is atomic
 * and serialised with every other writer, in this process or another (the
 * CLI beside the server, cluster workers). Inside the process it also takes
 * the queue of the Prisma connection, so it never waits synchronously on a
 * Prisma transaction that this same thread holds open.
 * Values are written exactly as Prisma writes them (DateTime as ISO text).
 */
import type Database from 'better-sqlite3';
import { genesisHash } from '../audit/audit-log.js';
import type { AuditBatch, AuditChain, AuditDraft, AuditRecord } from '../audit/ports.js';
import type { AbandonedIntent, CertificateIntent, CertificateRecord, CertificateRef, CertificateStatus, CertificateStatusRow, CompletedCertificate, RequestedVia, RevokedEntry } from '../ca/ports.js';
import type { CrlRecord } from '../crl/ports.js';
import { PkiError } from '../errors/pki-error.js';
import { fromSqliteRow } from './certificate-rows.js';
import { groupCommit, type WriteSettles } from './sqlite-group-commit.js';
import type { SerialQueue } from './sqlite-serial.js';
import { sqliteBusyTimeoutMs } from './migrate.js';
import { sqliteDate, sqliteDateOf, sqliteDateOrNull } from './sqlite-date.js';
import type { WalSync } from './wal-sync.js';

/** What the repositories take from the hot path. */
export interface SqliteHotPath {
  insertIntents(intents: CertificateIntent[]): Promise<void>;
  /** Completion and its audit events in one savepoint of the group commit (CertificateRepository.completeMany). */
  completeMany(issued: CompletedCertificate[], failed: CertificateRef[], audit: AuditBatch, settles?: WriteSettles): Promise<void>;
  /** CertificateRepository.failStalePending in one IMMEDIATE transaction. */
  failStalePending(recordedBefore: Date, audit: (failed: AbandonedIntent[]) => AuditBatch): Promise<AbandonedIntent[]>;
  /** CertificateRepository.findRequestedBy. */
  findRequestedBy(via: RequestedVia, requestedBy: string, since: Date, limit: number): Promise<CertificateRecord[]>;
  appendAudit(drafts: AuditDraft[], chain: AuditChain): Promise<AuditRecord[]>;
  /**
   * AuditRepository.range and .last: the checkpointer of every serving
   * process reads back each event once per checkpoint, which through Prisma
   * cost 10–35 µs an event (docs/performance.md, Issuance).
   */
  auditRange(fromSeq: number, limit: number): Promise<AuditRecord[]>;
  lastAudit(): Promise<AuditRecord | null>;
  /** Revoked, unexpired certificates of an issuer (one shard or all), by serial, in pages. */
  revokedEntries(issuerId: string, shard: number | null, notAfterAfter: Date, pageSize: number): AsyncIterable<RevokedEntry[]>;
  /**
   * Revocations and lifted holds of an issuer (one shard or all) after `since`
   * (delta CRLs, incremental shard CRLs), through the revokedAt and
   * holdReleasedAt indexes.
   */
  changedSince(issuerId: string, shard: number | null, since: Date): Promise<{ revoked: RevokedEntry[]; released: string[] }>;
  /**
   * The API token whose secret hashes to `hashHex` (TokenRepository.findByHash:
   * every request to the admin API reads it, uncached, so that a revocation by
   * any process refuses the next request). Through Prisma this one read was
   * the largest database cost of `POST /api/v1/certificates` (docs/performance.md, Issuance).
   */
  tokenByHash(hashHex: string): Promise<ApiTokenRow | null>;
  /** OCSP status lookup by serial. */
  statusOf(issuerId: string, serialHex: string): Promise<CertificateStatusRow | null>;
  /** CertificateRepository.validForDevice (every device enrollment runs it). */
  validForDevice(deviceId: string, at: Date): Promise<CertificateRecord[]>;
  /** One certificate record (ACME downloads and ownership checks run this per order). */
  findBySerial(issuerId: string, serialHex: string): Promise<CertificateRecord | null>;
  /**
   * Stores a CRL with its DER bound as one blob. Through Prisma a CRL costs
   * about nine times its size in memory on the way in and out (49 MB at a
   * million entries: +440 MiB to insert, +285 MiB to load). A duplicate
   * (caId, scope, crlNumber) is a `conflict`.
   */
  insertCrl(crl: CrlRecord): Promise<void>;
  /** The newest CRL of a scope, DER included, or null. */
  latestCrl(caId: string, scope: string): Promise<CrlRecord | null>;
  /** The CRL of that number in a scope, DER included, or null (pruned, or never made). */
  crlByNumber(caId: string, scope: string, crlNumber: bigint): Promise<CrlRecord | null>;
}

/** An ApiToken row as Prisma returns it (DateTime columns as Dates). */
export interface ApiTokenRow {
  id: string;
  name: string | null;
  role: string;
  hashHex: string;
  profiles: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/**
 * The hot path of each SQLite store, by its Prisma client: repositories that
 * open.ts builds from the client alone (the CRL repository) find it here.
 * certificateRepository registers it.
 */
const byClient = new WeakMap<object, SqliteHotPath>();

/** Records that `hot` runs on the same database as the Prisma client `db`. */
export function attachHotPath(db: object, hot: SqliteHotPath): void {
  byClient.set(db, hot);
}

/** The hot path registered for a Prisma client (SQLite stores), else undefined (PostgreSQL). */
export function hotPathOf(db: object): SqliteHotPath | undefined {
  return byClient.get(db);
}

/**
 * Runs an IMMEDIATE transaction, waiting for another process's write lock
 * without blocking the event loop: SQLite's own busy handler sleeps inside the
 * call (up to 100 ms per step), which would stall every request of this
 * process while a cluster sibling or the CLI writes. Here the connection has
 * busy_timeout 0 and a busy attempt is retried after a short async backoff.
 */
export async function withWriteLock<T>(run: () => T): Promise<T> {
  const deadline = Date.now() + sqliteBusyTimeoutMs;
  for (let delayMs = 0.5; ; delayMs = Math.min(delayMs * 2, 8)) {
    try {
      return run();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code !== 'SQLITE_BUSY' && code !== 'SQLITE_BUSY_SNAPSHOT') || Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, delayMs * (0.5 + Math.random())));
  }
}

/** Builds the hot path over `db` (opened with openSqlite) and the Prisma connection's queue. */
export function sqliteHotPath(db: Database.Database, queue: SerialQueue, wal?: WalSync): SqliteHotPath {
  db.pragma('busy_timeout = 0');
  // A write resolves once its commit is on disk (wal-sync.ts); the fsync runs after the queue is released.
  const durably = <T>(commit: Promise<T>): Promise<T> => (wal ? wal.after(commit) : commit);
  // Prepared on first use: a store opened with migrate: false on an older
  // database must still open, so that it can migrate itself.
  let prepared: ReturnType<typeof prepare> | undefined;
  const stmts = () => (prepared ??= prepare(db));
  const group = groupCommit(db, queue, wal);

  return {
    // Intents and completions join the connection's group commit (a savepoint each in the group's transaction) and
    // resolve once that commit is on disk: the CA signs only after its intent is durable, and hands a certificate out
    // only after its completion is, unless its caller asked for 'committed' and waits for the disk itself.
    insertIntents: (intents) =>
      // The row's bookkeeping time, as Prisma's @default(now()) would set it.
      group(() => stmts().insertTx(intents, sqliteDate(new Date(Date.now())))).catch((err: unknown) => {
        throw mapSqliteConstraint(err, 'serial number already used by this issuer', 'no such issuing CA');
      }),
    completeMany: (issued, failed, audit, settles) => group(() => stmts().completeTx(issued, failed, audit), settles),
    failStalePending: (recordedBefore, audit) => durably(queue.run(() => withWriteLock(() => stmts().failStaleTx.immediate(sqliteDate(recordedBefore), audit)))),
    findRequestedBy: (via, requestedBy, since, limit) =>
      queue.run(() => (stmts().requestedBy.all(requestedBy, via, sqliteDate(since), limit) as Parameters<typeof fromSqliteRow>[0][]).map(fromSqliteRow)),
    appendAudit: (drafts, chain) => durably(queue.run(() => withWriteLock(() => stmts().auditTx.immediate(drafts, chain)))),
    auditRange: (fromSeq, limit) => queue.run(() => (stmts().auditRange.all(fromSeq, limit) as AuditRow[]).map(auditRecordOf)),
    lastAudit: () =>
      queue.run(() => {
        const r = stmts().auditLast.get() as AuditRow | undefined;
        return r ? auditRecordOf(r) : null;
      }),

    tokenByHash: (hashHex) =>
      queue.run(() => {
        const r = stmts().tokenByHash.get(hashHex) as (Omit<ApiTokenRow, 'createdAt' | 'expiresAt' | 'lastUsedAt' | 'revokedAt'> & { createdAt: string; expiresAt: string | null; lastUsedAt: string | null; revokedAt: string | null }) | undefined;
        return r ? { ...r, createdAt: sqliteDateOf(r.createdAt), expiresAt: sqliteDateOrNull(r.expiresAt), lastUsedAt: sqliteDateOrNull(r.lastUsedAt), revokedAt: sqliteDateOrNull(r.revokedAt) } : null;
      }),

    statusOf: (issuerId, serialHex) =>
      queue.run(() => {
        const r = stmts().status.get(issuerId, serialHex) as { status: string; revokedAt: string | null; revocationReason: number | null; notAfter: string } | undefined;
        return r ? { status: r.status as CertificateStatus, revokedAt: sqliteDateOrNull(r.revokedAt), revocationReason: r.revocationReason, notAfter: sqliteDateOf(r.notAfter) } : null;
      }),

    findBySerial: (issuerId, serialHex) =>
      queue.run(() => {
        const r = stmts().certificate.get(issuerId, serialHex) as Parameters<typeof fromSqliteRow>[0] | undefined;
        return r ? fromSqliteRow(r) : null;
      }),

    validForDevice: (deviceId, at) =>
      queue.run(() => (stmts().validForDevice.all(deviceId, sqliteDate(at)) as Parameters<typeof fromSqliteRow>[0][]).map(fromSqliteRow)),

    changedSince: (issuerId, shard, since) =>
      queue.run(() => {
        const { revokedSince, releasedSince } = stmts();
        const at = sqliteDate(since);
        const shardArg = shard === null ? null : shard;
        const revoked = revokedSince.all(at, issuerId, shardArg, shardArg) as { serialHex: string; revokedAt: string; revocationReason: number | null; invalidityDate: string | null }[];
        const released = releasedSince.all(at, issuerId, shardArg, shardArg) as { serialHex: string }[];
        return {
          revoked: revoked.map((r) => ({ serialHex: r.serialHex, revokedAt: sqliteDateOf(r.revokedAt), reason: r.revocationReason ?? 0, invalidityDate: sqliteDateOrNull(r.invalidityDate) })),
          released: released.map((r) => r.serialHex),
        };
      }),

    insertCrl: (crl) =>
      durably(queue.run(() =>
        withWriteLock(() => stmts().insertCrl.run(crl.caId, crl.scope, crl.crlNumber, crl.baseCrlNumber, sqliteDate(crl.thisUpdate), sqliteDate(crl.nextUpdate), crl.entries, crl.der, sqliteDate(new Date(Date.now())))).then(
          () => undefined,
          (err: unknown) => {
            if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new PkiError('conflict', `CRL ${crl.crlNumber} of ${crl.caId}/${crl.scope} already exists`, { cause: err });
            throw err;
          },
        ),
      )),

    latestCrl: (caId, scope) => queue.run(() => crlOf(caId, scope, stmts().latestCrl.get(caId, scope) as CrlRow | undefined)),
    crlByNumber: (caId, scope, crlNumber) => queue.run(() => crlOf(caId, scope, stmts().crlByNumber.get(caId, scope, crlNumber) as CrlRow | undefined)),

    async *revokedEntries(issuerId, shard, notAfterAfter, pageSize) {
      const notAfter = sqliteDate(notAfterAfter);
      type Row = { serialHex: string; revokedAt: string; revocationReason: number | null; invalidityDate: string | null };
      for (let after = ''; ; ) {
        const { revokedAll, revokedShard } = stmts();
        const rows = await queue.run(() => (shard === null ? revokedAll.all(issuerId, notAfter, after, pageSize) : revokedShard.all(issuerId, notAfter, after, shard, pageSize)) as Row[]);
        if (rows.length === 0) return;
        yield rows.map((r) => ({ serialHex: r.serialHex, revokedAt: sqliteDateOf(r.revokedAt), reason: r.revocationReason ?? 0, invalidityDate: sqliteDateOrNull(r.invalidityDate) }));
        after = rows[rows.length - 1]!.serialHex;
      }
    },
  };
}

function prepare(db: Database.Database) {
  const insert = db.prepare(`INSERT INTO "Certificate" ("issuerId","serialHex","profile","subject","sans","notBefore","notAfter","status","lintDer","crlShard","requestedVia","requestedBy","keyId","deviceId","createdAt")
    VALUES (?,?,?,?,?,?,?,'pending',?,?,?,?,?,?,?)`);
  const complete = db.prepare(`UPDATE "Certificate" SET "status"='valid', "der"=?, "issuedAt"=? WHERE "issuerId"=? AND "serialHex"=? AND "status"='pending'`);
  const markFailed = db.prepare(`UPDATE "Certificate" SET "status"='failed' WHERE "issuerId"=? AND "serialHex"=? AND "status"='pending'`);
  // Through the (status, id) index: pending rows are few.
  const failStale = db.prepare(`UPDATE "Certificate" SET "status"='failed' WHERE "status"='pending' AND "createdAt"<? RETURNING "issuerId","serialHex","requestedVia","requestedBy"`);
  const appendAudit = sqliteAuditAppender(db);
  const auditColumns = `SELECT "seq","at","type","actor","data","prevHash","hash" FROM "AuditEvent"`;
  const crlColumns = `SELECT "crlNumber","baseCrlNumber","thisUpdate","nextUpdate","entries","der" FROM "Crl" WHERE "caId"=? AND "scope"=?`;
  const revokedColumns = `SELECT "serialHex","revokedAt","revocationReason","invalidityDate" FROM "Certificate"
    WHERE "issuerId"=? AND "status"='revoked' AND "notAfter">? AND "serialHex">?`;
  return {
    auditRange: db.prepare(`${auditColumns} WHERE "seq">=? ORDER BY "seq" LIMIT ?`),
    auditLast: db.prepare(`${auditColumns} ORDER BY "seq" DESC LIMIT 1`),
    // Through the unique hashHex index.
    tokenByHash: db.prepare(`SELECT "id","name","role","hashHex","profiles","createdAt","expiresAt","lastUsedAt","revokedAt" FROM "ApiToken" WHERE "hashHex"=?`),
    status: db.prepare(`SELECT "status","revokedAt","revocationReason","notAfter" FROM "Certificate" WHERE "issuerId"=? AND "serialHex"=?`),
    certificate: db.prepare(`SELECT * FROM "Certificate" WHERE "issuerId"=? AND "serialHex"=?`),
    // Through the (deviceId, status) index.
    validForDevice: db.prepare(`SELECT * FROM "Certificate" WHERE "deviceId"=? AND "status"='valid' AND "notAfter">? ORDER BY "id"`),
    requestedBy: db.prepare(`SELECT * FROM "Certificate" WHERE "requestedBy"=? AND "requestedVia"=? AND "createdAt">=? ORDER BY "id" LIMIT ?`),
    revokedAll: db.prepare(`${revokedColumns} ORDER BY "serialHex" LIMIT ?`),
    revokedShard: db.prepare(`${revokedColumns} AND "crlShard"=? ORDER BY "serialHex" LIMIT ?`),
    // The unary + keeps SQLite off the (status, id) index and the revoked-only
    // (issuerId, serialHex) and (issuerId, crlShard, serialHex) indexes, which it
    // prefers for their equality terms and which would walk every valid or revoked
    // certificate of the issuer (seconds at a million); the time range is the selective term.
    revokedSince: db.prepare(`SELECT "serialHex","revokedAt","revocationReason","invalidityDate" FROM "Certificate"
      WHERE "revokedAt">? AND +"issuerId"=? AND +"status"='revoked' AND (? IS NULL OR +"crlShard"=?)`),
    insertCrl: db.prepare(`INSERT INTO "Crl" ("caId","scope","crlNumber","baseCrlNumber","thisUpdate","nextUpdate","entries","der","createdAt") VALUES (?,?,?,?,?,?,?,?,?)`),
    // BIGINT columns as bigint (CRL numbers may exceed 2^53).
    latestCrl: db.prepare(`${crlColumns} ORDER BY "crlNumber" DESC LIMIT 1`).safeIntegers(true),
    crlByNumber: db.prepare(`${crlColumns} AND "crlNumber"=?`).safeIntegers(true),
    releasedSince: db.prepare(`SELECT "serialHex" FROM "Certificate"
      WHERE "holdReleasedAt">? AND +"issuerId"=? AND +"status"='valid' AND (? IS NULL OR +"crlShard"=?)`),

    insertTx: db.transaction((intents: CertificateIntent[], now: string) => {
      for (const i of intents) {
        insert.run(i.issuerId, i.serialHex, i.profile, i.subject, i.sans, sqliteDate(i.notBefore), sqliteDate(i.notAfter), i.lintDer, i.crlShard, i.requestedVia, i.requestedBy, i.keyId ?? null, i.deviceId ?? null, now);
      }
    }),

    // Completion and its audit events commit together: a crash or a failed
    // append leaves every certificate of the batch pending (never 'valid'
    // without its event), for failStalePending to settle.
    completeTx: db.transaction((issued: CompletedCertificate[], failed: CertificateRef[], audit: AuditBatch) => {
      for (const i of issued) {
        if (complete.run(i.der, sqliteDate(i.issuedAt), i.issuerId, i.serialHex).changes !== 1) {
          throw new PkiError('conflict', `certificate ${i.serialHex} of ${i.issuerId} is not pending`);
        }
      }
      for (const f of failed) markFailed.run(f.issuerId, f.serialHex);
      appendAudit(audit.drafts, audit.chain);
    }),

    failStaleTx: db.transaction((before: string, audit: (failed: AbandonedIntent[]) => AuditBatch): AbandonedIntent[] => {
      const failed = failStale.all(before) as AbandonedIntent[];
      if (failed.length) {
        const batch = audit(failed);
        appendAudit(batch.drafts, batch.chain);
      }
      return failed;
    }),

    auditTx: db.transaction((drafts: AuditDraft[], chain: AuditChain): AuditRecord[] => appendAudit(drafts, chain)),
  };
}

const appenders = new WeakMap<Database.Database, (drafts: AuditDraft[], chain: AuditChain) => AuditRecord[]>();

/**
 * Appends audit events on `db` inside the transaction the caller has open on
 * it (never outside one: the last event is read, then the next ones are
 * written, and only the write lock makes that safe). The statements are
 * prepared once per connection.
 */
export function sqliteAuditAppender(db: Database.Database): (drafts: AuditDraft[], chain: AuditChain) => AuditRecord[] {
  let append = appenders.get(db);
  if (append) return append;
  const lastAudit = db.prepare(`SELECT "seq","hash" FROM "AuditEvent" ORDER BY "seq" DESC LIMIT 1`);
  const insertAudit = db.prepare(`INSERT INTO "AuditEvent" ("seq","at","type","actor","data","prevHash","hash") VALUES (?,?,?,?,?,?,?)`);
  append = (drafts, chain) => {
    if (!db.inTransaction) throw new Error('audit events are appended inside a transaction');
    if (drafts.length === 0) return [];
    const last = lastAudit.get() as { seq: number; hash: string } | undefined;
    let prevHash = last?.hash ?? genesisHash;
    let seq = last?.seq ?? 0;
    return drafts.map((d) => {
      const data = JSON.stringify(d.data);
      seq += 1;
      const hash = chain(prevHash, seq, d, data);
      insertAudit.run(seq, sqliteDate(d.at), d.type, d.actor, data, prevHash, hash);
      const row = { seq, at: d.at, type: d.type, actor: d.actor, data, prevHash, hash };
      prevHash = hash;
      return row;
    });
  };
  appenders.set(db, append);
  return append;
}

/** A Crl row as the CRL statements read it (BIGINT columns as bigint). */
type CrlRow = { crlNumber: bigint; baseCrlNumber: bigint | null; thisUpdate: string; nextUpdate: string; entries: bigint; der: Buffer };
const crlOf = (caId: string, scope: string, r: CrlRow | undefined): CrlRecord | null =>
  r ? { caId, scope, crlNumber: r.crlNumber, baseCrlNumber: r.baseCrlNumber, thisUpdate: sqliteDateOf(r.thisUpdate), nextUpdate: sqliteDateOf(r.nextUpdate), entries: Number(r.entries), der: r.der } : null;

type AuditRow = Omit<AuditRecord, 'at'> & { at: string };
const auditRecordOf = (r: AuditRow): AuditRecord => ({ seq: r.seq, at: sqliteDateOf(r.at), type: r.type, actor: r.actor, data: r.data, prevHash: r.prevHash, hash: r.hash });

/** Constraint violations from better-sqlite3 as PkiErrors with these details (a foreign key only if `notFound` is given); anything else unchanged. */
export function mapSqliteConstraint(err: unknown, conflict: string, notFound?: string): unknown {
  switch ((err as { code?: string }).code) {
    case 'SQLITE_CONSTRAINT_UNIQUE':
    case 'SQLITE_CONSTRAINT_PRIMARYKEY':
      return new PkiError('conflict', conflict, { cause: err });
    case 'SQLITE_CONSTRAINT_FOREIGNKEY':
      return notFound === undefined ? err : new PkiError('notFound', notFound, { cause: err });
    default:
      return err;
  }
}
