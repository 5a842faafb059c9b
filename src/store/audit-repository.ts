/**
 * The hash-chained audit log. Appends are serialised across processes and
 * nodes, so seq has no gaps and each prevHash is the hash before it: SQLite
 * has one writer (an IMMEDIATE transaction on the hot path), PostgreSQL takes
 * a transaction-scoped advisory lock before it reads the last event.
 */
import type pg from 'pg';
import { genesisHash } from '../audit/audit-log.js';
import type { AuditBatch, AuditChain, AuditDraft, AuditRecord, AuditRepository } from '../audit/ports.js';
import type { Db } from './client.js';
import type { SqliteHotPath } from './sqlite-hot-path.js';

/** Advisory lock key shared by every node appending to the audit chain ("TRELLIS" in ASCII). */
const auditLockKey = 0x5452454c4c4953n;

/** Takes the chain lock (held until the transaction ends). */
const takeLock = `SELECT pg_advisory_xact_lock(${auditLockKey})`;

/**
 * Takes the chain lock, then reads the chain's head. Two statements in one
 * simple-protocol query (one round trip): under READ COMMITTED each statement
 * takes its own snapshot, so the SELECT, which starts once the lock is
 * granted, sees the events the previous holder committed. (One statement
 * doing both would read with a snapshot taken before the wait.)
 */
const lockThenHead = `${takeLock}; SELECT "seq", "hash" FROM "AuditEvent" ORDER BY "seq" DESC LIMIT 1`;

/**
 * One caller's share of an audited transaction: its row writes (none for a
 * plain append), the events they call for, and how its promise settles.
 */
interface Unit {
  rows: ((client: pg.PoolClient) => Promise<unknown>) | null;
  audit(result: unknown): AuditBatch | null;
  resolve(result: unknown, records: AuditRecord[]): void;
  reject(err: unknown): void;
}

/** A unit that failed alone (its rows or its hashing threw): the others of its transaction run again without it. */
class UnitFailed extends Error {
  constructor(
    readonly unit: Unit,
    readonly reason: unknown,
  ) {
    super('audited transaction unit failed', { cause: reason });
  }
}

/**
 * The connection failed after the INSERT and COMMIT were sent, and a second
 * connection could not tell whether they committed: the callers are told so,
 * not run again (which could append their events twice).
 */
class CommitOutcomeUnknown extends Error {
  constructor(cause: unknown) {
    super('the database connection failed during COMMIT and whether the audited transaction committed could not be checked', { cause });
  }
}

/**
 * Whether `err`, thrown by the query that carried the COMMIT, leaves the
 * outcome unknown: anything but an error the server answered with, or a
 * server error of class 08 (connection exception) or 57 (operator
 * intervention: the backend was terminated, maybe after it committed).
 */
function outcomeUnknown(err: unknown): boolean {
  const e = err as { code?: unknown; severity?: unknown } | null;
  const sqlState = typeof e?.code === 'string' && typeof e.severity === 'string' ? e.code : undefined;
  return sqlState === undefined || sqlState.startsWith('08') || sqlState.startsWith('57');
}

/**
 * The audit chain on PostgreSQL, one per store: every transaction that
 * appends to the chain runs here, on a `pg` client of the pool Prisma uses.
 *
 * While the lock is held a transaction makes one round trip and the commit:
 * the lock and the head read travel together, and so do the INSERT of all its
 * events and the COMMIT (its rows were written before the lock was asked for).
 *
 * A process runs one audited transaction at a time, and each takes every
 * caller queued when it starts (plus, once it holds the lock, every plain
 * append queued since), so concurrent callers share one lock acquisition and
 * one commit. Each caller's rows and events still commit or roll back
 * together: when a caller's rows or hashing throw, the transaction is rolled
 * back, that caller gets the error and the others run again without it; when
 * the INSERT or COMMIT fails, each caller of the transaction runs again alone.
 * When the connection fails once the INSERT and COMMIT were sent, a second
 * connection first waits for the chain lock (the first backend holds it until
 * its transaction ended either way) and looks for the last event sent: found,
 * the transaction committed and every caller gets its result; not found, it
 * did not and they run again; the check failing, every caller is told the
 * outcome is unknown.
 */
export interface PgAuditChain {
  /** Appends `drafts` (contiguous, all or none). */
  append(drafts: AuditDraft[], chain: AuditChain): Promise<AuditRecord[]>;
  /**
   * Runs `rows` in a transaction, then appends the batch `audit` makes of
   * its result (none when null or empty) in the same transaction, so the
   * rows and their events commit or roll back together. `rows` must not
   * commit or roll back; it may run again (after a rollback) when another
   * caller of the same transaction failed. The lock is taken after it.
   */
  transaction<T>(rows: (client: pg.PoolClient) => Promise<T>, audit: (result: T) => AuditBatch | null): Promise<T>;
}

/** {@link PgAuditChain} over `pool`. */
export function pgAuditChain(pool: pg.Pool): PgAuditChain {
  const queue: Unit[] = [];
  let running = false;

  /**
   * A client of the pool with an 'error' listener while it is checked out:
   * pg emits a lost connection as an 'error' event besides failing the
   * running query, and the pool listens only to idle clients (unheard, the
   * event would end the process). The query's own failure is what is handled.
   */
  async function checkout(): Promise<pg.PoolClient> {
    const client = await pool.connect();
    const heard = () => {};
    client.on('error', heard);
    const release = client.release.bind(client);
    client.release = (err?: Error | boolean) => {
      client.removeListener('error', heard);
      release(err);
    };
    return client;
  }

  /** Ends a failed transaction: ROLLBACK, or the connection is dropped (pg closes it on release with an error). */
  async function rollback(client: pg.PoolClient, err: unknown): Promise<void> {
    try {
      await client.query('ROLLBACK');
      client.release();
    } catch (rollbackErr) {
      client.release(new Error('ROLLBACK failed; connection dropped', { cause: [err, rollbackErr] }));
    }
  }

  /** Chains each unit's events after `head`; a unit whose hashing throws fails alone. */
  function chainUnits(head: { seq: number; hash: string } | undefined, batches: { unit: Unit; batch: AuditBatch | null }[]): AuditRecord[][] {
    let prevHash = head?.hash ?? genesisHash;
    let seq = head?.seq ?? 0;
    return batches.map(({ unit, batch }) => {
      try {
        return (batch?.drafts ?? []).map((d) => {
          const data = JSON.stringify(d.data);
          seq += 1;
          const hash = batch!.chain(prevHash, seq, d, data);
          const row = { seq, at: d.at, type: d.type, actor: d.actor, data, prevHash, hash };
          prevHash = hash;
          return row;
        });
      } catch (err) {
        throw new UnitFailed(unit, err);
      }
    });
  }

  /**
   * One transaction for `units` (and, if `join`, the plain appends queued
   * once it holds the lock); throws UnitFailed for a unit that failed alone,
   * anything else for the whole.
   */
  async function runOnce(units: Unit[], join: boolean): Promise<void> {
    const client = await checkout();
    const done: { unit: Unit; result: unknown; batch: AuditBatch | null }[] = [];
    let records: AuditRecord[][] = [];
    /** The last event of the INSERT and COMMIT once they were sent. */
    let sent: AuditRecord | undefined;
    try {
      await client.query('BEGIN');
      for (const unit of units) {
        try {
          const result = unit.rows ? await unit.rows(client) : undefined;
          done.push({ unit, result, batch: unit.audit(result) });
        } catch (err) {
          throw new UnitFailed(unit, err);
        }
      }
      records = done.map(() => []);
      if (done.some((d) => d.batch?.drafts.length)) {
        const results = (await client.query(lockThenHead)) as unknown as pg.QueryResult<{ seq: number; hash: string }>[];
        // With the lock held, plain appends queued since this transaction began join it
        // (into `units` too, so that they run again if it fails).
        if (join) {
          const late = queue.filter((u) => !u.rows);
          for (const unit of late) {
            queue.splice(queue.indexOf(unit), 1);
            units.push(unit);
            done.push({ unit, result: undefined, batch: unit.audit(undefined) });
          }
        }
        records = chainUnits(results[1]!.rows[0], done);
        const all = records.flat();
        // Literal values, quoted by pg: a simple-protocol query is the one
        // way to send the INSERT and the COMMIT in one round trip.
        const q = (v: string) => client.escapeLiteral(v);
        const values = all.map((r) => `(${r.seq},${q(r.at.toISOString())}::timestamp(3),${q(r.type)},${q(r.actor)},${q(r.data)},${q(r.prevHash)},${q(r.hash)})`);
        sent = all.at(-1);
        await client.query(`INSERT INTO "AuditEvent" ("seq","at","type","actor","data","prevHash","hash") VALUES ${values.join(',')}; COMMIT`);
      } else {
        await client.query('COMMIT');
      }
      client.release();
      done.forEach((d, i) => d.unit.resolve(d.result, records[i]!));
    } catch (err) {
      await rollback(client, err);
      if (!sent || !outcomeUnknown(err)) throw err;
      let committed: boolean;
      try {
        committed = await wasCommitted(sent);
      } catch (checkErr) {
        throw new CommitOutcomeUnknown([err, checkErr]);
      }
      if (!committed) throw err;
      done.forEach((d, i) => d.unit.resolve(d.result, records[i]!));
    }
  }

  /** Whether `last` is in the chain, once whichever transaction holds the chain lock has ended. */
  async function wasCommitted(last: AuditRecord): Promise<boolean> {
    const client = await checkout();
    try {
      const results = (await client.query(
        `BEGIN; ${takeLock}; SELECT 1 FROM "AuditEvent" WHERE "seq" = ${last.seq} AND "hash" = ${client.escapeLiteral(last.hash)}; COMMIT`,
      )) as unknown as pg.QueryResult[];
      client.release();
      return results[2]!.rowCount === 1;
    } catch (err) {
      client.release(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  /** Runs `units` until each committed or failed. */
  async function runUnits(units: Unit[]): Promise<void> {
    let todo = units;
    let alone = false;
    while (todo.length) {
      const now = alone ? todo.slice(0, 1) : todo;
      const rest = alone ? todo.slice(1) : [];
      try {
        await runOnce(now, !alone);
        todo = rest;
      } catch (err) {
        if (err instanceof UnitFailed) {
          err.unit.reject(err.reason);
          todo = [...now.filter((u) => u !== err.unit), ...rest];
        } else if (err instanceof CommitOutcomeUnknown) {
          for (const u of now) u.reject(err);
          todo = rest;
        } else if (now.length > 1) {
          // The INSERT, the COMMIT or the connection failed, for a reason that may be one caller's: each runs again alone.
          alone = true;
          todo = [...now, ...rest];
        } else {
          now[0]!.reject(err);
          todo = rest;
        }
      }
    }
  }

  function enqueue(unit: Unit): void {
    queue.push(unit);
    if (running) return;
    running = true;
    void (async () => {
      try {
        while (queue.length) await runUnits(queue.splice(0));
      } finally {
        running = false;
      }
    })();
  }

  return {
    append(drafts, chain) {
      return new Promise<AuditRecord[]>((resolve, reject) => {
        enqueue({ rows: null, audit: () => ({ drafts, chain }), resolve: (_, records) => resolve(records), reject });
      });
    },
    transaction<T>(rows: (client: pg.PoolClient) => Promise<T>, audit: (result: T) => AuditBatch | null) {
      return new Promise<T>((resolve, reject) => {
        enqueue({ rows, audit: (r) => audit(r as T), resolve: (r) => resolve(r as T), reject });
      });
    },
  };
}

/** {@link AuditRepository}: the SQLite hot path when given, else the PostgreSQL chain `pg`. */
export function auditRepository(db: Db, hot?: SqliteHotPath, pg?: PgAuditChain): AuditRepository {
  return {
    async append(drafts, chain) {
      if (drafts.length === 0) return [];
      if (hot) return hot.appendAudit(drafts, chain);
      if (!pg) throw new Error('audit repository: neither the SQLite hot path nor the PostgreSQL chain');
      return pg.append(drafts, chain);
    },
    // `take`, not `seq < fromSeq + limit`: after a deleted stretch of the chain the
    // next page must start at the next surviving event, so the verifier sees the gap.
    // (Prisma reads a negative take backwards: such a limit stays with it.)
    range: (fromSeq, limit) => (hot && limit > 0 ? hot.auditRange(fromSeq, limit) : db.auditEvent.findMany({ where: { seq: { gte: fromSeq } }, orderBy: { seq: 'asc' }, take: limit })),
    last: () => (hot ? hot.lastAudit() : db.auditEvent.findFirst({ orderBy: { seq: 'desc' } })),
  };
}
