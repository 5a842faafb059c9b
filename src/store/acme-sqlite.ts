/**
 * The ACME hot path on SQLite: every ACME request redeems a nonce and most
 * read or move an account, order or authorization, so those run as
 * better-sqlite3 prepared statements (a few µs) rather than Prisma queries
 * (100–200 µs). Same connection and same rules as sqlite-hot-path.ts: writes
 * take the Prisma connection's queue, then the database write lock, waiting
 * for another process's lock asynchronously, and concurrent writes share one
 * commit (sqlite-group-commit.ts); values are written exactly as Prisma writes
 * them (`sqliteDate`, Boolean as 0/1, JSON as text).
 *
 * The writes of the request path (nonce redemption, order creation, the
 * compare-and-sets on orders and authorizations, with the audit event of an
 * authorization's validation) resolve once committed, not once on disk: the
 * ACME router holds every answer until `nonces.durable()`, so a request that
 * writes twice waits for one fsync instead of two or more.
 * The other writes resolve once their commit is on disk.
 *
 * Reads do not take the queue: a statement runs to completion synchronously,
 * and in WAL mode it never waits for a writer, so queuing it behind Prisma
 * queries would only add latency.
 */
import type Database from 'better-sqlite3';
import { PkiError } from '../errors/pki-error.js';
import type { AuditBatch } from '../audit/ports.js';
import type { AcmeAccountRepository, AcmeNonceRepository, AcmeOrderRepository, OrderSettlement } from '../ra/acme/ports.js';
import {
  accountColumns,
  accountFromSqlite,
  authorizationColumns,
  authorizationFromSqlite,
  challengesJson,
  inIdOrder,
  orderColumns,
  orderFromSqlite,
  problemJson,
  toAccount,
  toAuthorization,
  toOrder,
  type AccountRow,
  type AuthorizationRow,
  type OrderRow,
  type SqliteRow,
} from './acme-rows.js';
import { groupCommit, type GroupWrite, type WriteSettles } from './sqlite-group-commit.js';
import { mapSqliteConstraint, sqliteAuditAppender } from './sqlite-hot-path.js';
import { sqliteDate } from './sqlite-date.js';
import type { SerialQueue } from './sqlite-serial.js';
import type { WalSync } from './wal-sync.js';

/** The repository methods the SQLite hot path implements; the rest go through Prisma. */
export interface AcmeSqliteHotPath {
  accounts: Pick<AcmeAccountRepository, 'createOrGet' | 'findById' | 'findByThumbprint'>;
  orders: Pick<AcmeOrderRepository, 'createOrder' | 'findOrder' | 'findAuthorization' | 'findAuthorizations' | 'findReusableAuthorization' | 'updateAuthorization' | 'updateOrder' | 'isReplaced' | 'settleProcessing'>;
  nonces: AcmeNonceRepository;
}

/** Rowids of used nonces a prune reads and deletes per write at most, so that other writers get a turn in between. */
const pruneBatch = 5_000;

/** A nonce waiting for the write it is recorded with (redeemWith); `outcome` once a write took it. */
type Joining = { nonce: string; expiresAt: string; outcome?: Promise<'recorded' | 'used' | 'undone'>; used?: PkiError };

const d = sqliteDate;
const dOrNull = (x: Date | null): string | null => (x === null ? null : sqliteDate(x));
const bit = (b: boolean): number => (b ? 1 : 0);

/**
 * Builds the ACME hot path over `db` (the raw connection of sqliteHotPath,
 * busy_timeout 0) and the Prisma connection's queue.
 */
export function acmeSqliteHotPath(db: Database.Database, queue: SerialQueue, wal?: WalSync): AcmeSqliteHotPath {
  // Prepared on first use, like sqliteHotPath: an older database without the
  // ACME tables must still open so that it can migrate itself.
  let prepared: ReturnType<typeof prepare> | undefined;
  const s = () => (prepared ??= prepare(db));
  const group = groupCommit(db, queue, wal);
  // The nonce of redeemWith while its `write` runs: the first write made meanwhile takes it.
  let joining: Joining | undefined;
  const write: GroupWrite = <T>(run: () => T, settles?: WriteSettles): Promise<T> => {
    const j = joining;
    if (!j || j.outcome) return group(run, settles);
    const written = group(() => s().redeemThen(j, run) as T, settles);
    j.outcome = written.then(
      () => 'recorded' as const,
      (e: unknown) => (e !== undefined && e === j.used ? ('used' as const) : ('undone' as const)),
    );
    return written;
  };

  const account = (r: SqliteRow<AccountRow> | undefined) => (r ? toAccount(accountFromSqlite(r)) : null);
  const authorization = (r: SqliteRow<AuthorizationRow> | undefined) => (r ? toAuthorization(authorizationFromSqlite(r)) : null);

  return {
    accounts: {
      async createOrGet(a) {
        try {
          // One write: insert unless the thumbprint exists, else read the winner.
          return await write(() => s().createOrGetTx(a));
        } catch (err) {
          throw mapSqliteConstraint(err, `account id "${a.id}" already exists`, 'no such account');
        }
      },
      findById: async (id) => account(s().accountById.get(id) as SqliteRow<AccountRow> | undefined),
      findByThumbprint: async (thumbprint) => account(s().accountByThumbprint.get(thumbprint) as SqliteRow<AccountRow> | undefined),
    },

    orders: {
      async createOrder(order, newAuthorizations) {
        try {
          await write(() => s().createOrderTx(order, newAuthorizations), 'committed');
        } catch (err) {
          throw mapSqliteConstraint(err, `order "${order.id}" or one of its authorizations already exists`, `no account "${order.accountId}"`);
        }
      },
      async findOrder(id) {
        const r = s().orderById.get(id) as SqliteRow<OrderRow> | undefined;
        return r ? toOrder(orderFromSqlite(r)) : null;
      },
      findAuthorization: async (id) => authorization(s().authorizationById.get(id) as SqliteRow<AuthorizationRow> | undefined),
      async findAuthorizations(ids) {
        if (ids.length === 0) return [];
        // One statement for any number of ids: the list travels as one JSON parameter.
        const rows = s().authorizationsByIds.all(JSON.stringify(ids)) as SqliteRow<AuthorizationRow>[];
        return inIdOrder(ids, rows).map((r) => toAuthorization(authorizationFromSqlite(r)));
      },
      findReusableAuthorization: async (accountId, identifier, wildcard, expiresAfter, includePending) =>
        authorization(
          s().reusableAuthorization.get(accountId, identifier.type, identifier.value, bit(wildcard), includePending ? 'pending' : 'valid', d(expiresAfter)) as
            | SqliteRow<AuthorizationRow>
            | undefined,
        ),
      // With an audit batch: one savepoint in the group's transaction, the move and its event or neither.
      updateAuthorization: (id, expected, next, audit) =>
        write(() => (audit ? s().updateAuthorizationTx(id, expected, next, audit) : s().moveAuthorization(id, expected, next)), 'committed'),
      updateOrder: (id, expected, next) =>
        write(
          () =>
            s().updateOrder.run({
              id,
              expected,
              status: next.status,
              setError: next.error === undefined ? 0 : 1,
              error: next.error === undefined ? null : problemJson(next.error),
              issuerId: next.issuerId ?? null,
              certificateSerial: next.certificateSerial ?? null,
            }).changes === 1,
          'committed',
        ),
      isReplaced: async (replaces, exceptOrderId, now) => s().replacedBy.get({ replaces, except: exceptOrderId ?? null, now: now ? d(now) : null }) !== undefined,
      // One savepoint in the group's transaction: the moves and their audit event, or neither.
      settleProcessing: (settlements, audit) => write(() => s().settleTx(settlements, audit)),
    },

    nonces: {
      // The primary key decides: of concurrent inserts (any process, any
      // connection) exactly one changes a row. ON CONFLICT DO NOTHING rather
      // than catching the violation: a replayed nonce is an expected answer.
      redeem: (nonce, expiresAt) => write(() => s().redeem.run(nonce, d(expiresAt)).changes === 1, 'committed'),
      redeemWith(nonce, expiresAt, run) {
        const j: Joining = { nonce, expiresAt: d(expiresAt) };
        const outer = joining;
        joining = j;
        let written;
        try {
          written = run();
        } finally {
          joining = outer;
        }
        return { written, recorded: j.outcome };
      },
      durable: () => (wal ? wal.durable() : Promise.resolve()),
      // Rows are appended in the order nonces are redeemed (rowid), which is
      // nearly the order they expire in, so expired rows are deleted oldest
      // rowid first, up to the first row still live, with no index on
      // expiresAt to keep up on every redemption. An expired row behind a
      // live one waits for a later prune; the age check refuses it meanwhile.
      // Each step is one write that reads and deletes at most pruneBatch
      // rowids from the oldest, so the walk to the first live row is split
      // too: as one statement it held the event loop for ~0.1 s over a
      // backlog of 1 M expired rows, ~0.5 s over 5 M (bench/acme-nonce-prune.mjs).
      async prune(before) {
        const b = d(before);
        // The walk ends at the last rowid there was when the call began: rows appended since wait for a later call.
        const bound = ((s().lastNonce.get() as { rowid: number } | undefined)?.rowid ?? 0) + 1;
        let total = 0;
        for (;;) {
          const step = await write(() => {
            const first = (s().firstNonce.get() as { rowid: number } | undefined)?.rowid;
            if (first === undefined || first >= bound) return { deleted: 0, done: true };
            const end = Math.min(bound, first + pruneBatch);
            const live = (s().firstLiveNonceIn.get(first, end, b) as { rowid: number } | undefined)?.rowid;
            // The DELETE checks expiresAt itself: it never takes a live row, whatever the rowids.
            const deleted = s().pruneNonces.run(live ?? end, b).changes;
            return { deleted, done: live !== undefined || end === bound };
          });
          total += step.deleted;
          if (step.done) return total;
        }
      },
    },
  };
}

const accountSelect = `SELECT "id","thumbprint","jwk","status","contact","termsAgreed","eabKeyId","createdAt" FROM "AcmeAccount"`;
const orderSelect = `SELECT "id","accountId","profile","status","expires","identifiers","authorizationIds","notBefore","notAfter","error","issuerId","certificateSerial","replaces","createdAt" FROM "AcmeOrder"`;
const authorizationSelect = `SELECT "id","accountId","identifierType","identifierValue","wildcard","status","expires","challenges","createdAt" FROM "AcmeAuthorization"`;

function prepare(db: Database.Database) {
  const insertAccount = db.prepare(`INSERT INTO "AcmeAccount" ("id","thumbprint","jwk","status","contact","termsAgreed","eabKeyId","createdAt")
    VALUES (?,?,?,?,?,?,?,?) ON CONFLICT ("thumbprint") DO NOTHING`);
  const accountByThumbprint = db.prepare(`${accountSelect} WHERE "thumbprint" = ?`);
  const insertOrder = db.prepare(`INSERT INTO "AcmeOrder" ("id","accountId","profile","status","expires","identifiers","authorizationIds","notBefore","notAfter","error","issuerId","certificateSerial","replaces","createdAt")
    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`);
  const insertAuthorization = db.prepare(`INSERT INTO "AcmeAuthorization" ("id","accountId","identifierType","identifierValue","wildcard","status","expires","challenges","createdAt")
    VALUES (?,?,?,?,?,?,?,?,?)`);
  // Fields absent from the patch keep their value; `error` may be set to null on purpose, hence setError.
  const updateOrder = db.prepare(`UPDATE "AcmeOrder" SET "status" = @status,
      "error" = CASE WHEN @setError THEN @error ELSE "error" END,
      "issuerId" = COALESCE(@issuerId, "issuerId"),
      "certificateSerial" = COALESCE(@certificateSerial, "certificateSerial")
    WHERE "id" = @id AND "status" = @expected`);
  const updateAuthorization = db.prepare(`UPDATE "AcmeAuthorization" SET "status" = ?, "challenges" = ?, "expires" = COALESCE(?, "expires") WHERE "id" = ? AND "status" = ?`);
  type Account = Parameters<AcmeSqliteHotPath['accounts']['createOrGet']>[0];
  type AuthorizationMove = Parameters<AcmeSqliteHotPath['orders']['updateAuthorization']>;
  const moveAuthorization = (id: AuthorizationMove[0], expected: AuthorizationMove[1], next: AuthorizationMove[2]): boolean =>
    updateAuthorization.run(next.status, challengesJson(next.challenges), next.expires ? d(next.expires) : null, id, expected).changes === 1;
  type Order = Parameters<AcmeSqliteHotPath['orders']['createOrder']>;
  const redeem = db.prepare(`INSERT INTO "AcmeUsedNonce" ("nonce","expiresAt") VALUES (?, ?) ON CONFLICT DO NOTHING`);

  return {
    accountById: db.prepare(`${accountSelect} WHERE "id" = ?`),
    accountByThumbprint,
    orderById: db.prepare(`${orderSelect} WHERE "id" = ?`),
    authorizationById: db.prepare(`${authorizationSelect} WHERE "id" = ?`),
    authorizationsByIds: db.prepare(`${authorizationSelect} WHERE "id" IN (SELECT "value" FROM json_each(?))`),
    // The second status is 'pending' when pending ones may be reused, else 'valid' again.
    reusableAuthorization: db.prepare(`${authorizationSelect}
      WHERE "accountId" = ? AND "identifierType" = ? AND "identifierValue" = ? AND "wildcard" = ? AND "status" IN ('valid', ?) AND "expires" > ?
      ORDER BY "expires" DESC LIMIT 1`),
    moveAuthorization,
    updateOrder,
    replacedBy: db.prepare(`SELECT 1 FROM "AcmeOrder"
      WHERE "replaces" = @replaces AND "status" <> 'invalid' AND (@except IS NULL OR "id" <> @except)
        AND (@now IS NULL OR "status" <> 'pending' OR "expires" > @now)
      LIMIT 1`),
    redeem,
    firstLiveNonceIn: db.prepare(`SELECT rowid FROM "AcmeUsedNonce" WHERE rowid >= ? AND rowid < ? AND "expiresAt" >= ? ORDER BY rowid LIMIT 1`),
    firstNonce: db.prepare(`SELECT rowid FROM "AcmeUsedNonce" ORDER BY rowid LIMIT 1`),
    lastNonce: db.prepare(`SELECT rowid FROM "AcmeUsedNonce" ORDER BY rowid DESC LIMIT 1`),
    pruneNonces: db.prepare(`DELETE FROM "AcmeUsedNonce" WHERE rowid < ? AND "expiresAt" < ?`),

    // One savepoint: the nonce first, then the request's write; a replay throws `j.used` (made only then: an error's
    // stack costs) and undoes both.
    redeemThen: db.transaction(<T>(j: Joining, run: () => T): T => {
      if (redeem.run(j.nonce, j.expiresAt).changes !== 1) throw (j.used = new PkiError('badNonce', 'the nonce was already used'));
      return run();
    }),

    createOrGetTx: db.transaction((a: Account) => {
      const c = accountColumns(a);
      if (insertAccount.run(c.id, c.thumbprint, c.jwk, c.status, c.contact, bit(c.termsAgreed), c.eabKeyId, d(c.createdAt)).changes === 1) {
        return { account: a, created: true };
      }
      const winner = accountByThumbprint.get(a.thumbprint) as SqliteRow<AccountRow>;
      return { account: toAccount(accountFromSqlite(winner)), created: false };
    }),

    updateAuthorizationTx: db.transaction((id: AuthorizationMove[0], expected: AuthorizationMove[1], next: AuthorizationMove[2], audit: AuditBatch): boolean => {
      if (!moveAuthorization(id, expected, next)) return false;
      sqliteAuditAppender(db)(audit.drafts, audit.chain);
      return true;
    }),

    settleTx: db.transaction((settlements: OrderSettlement[], audit: (moved: OrderSettlement[]) => AuditBatch): OrderSettlement[] => {
      const moved = settlements.filter(({ id, next }) =>
        updateOrder.run({
          id,
          expected: 'processing',
          status: next.status,
          setError: next.status === 'invalid' ? 1 : 0,
          error: next.status === 'invalid' ? problemJson(next.error) : null,
          issuerId: next.status === 'valid' ? next.issuerId : null,
          certificateSerial: next.status === 'valid' ? next.certificateSerial : null,
        }).changes === 1,
      );
      if (moved.length) {
        const batch = audit(moved);
        sqliteAuditAppender(db)(batch.drafts, batch.chain);
      }
      return moved;
    }),

    createOrderTx: db.transaction((order: Order[0], authorizations: Order[1]) => {
      for (const z of authorizations) {
        const c = authorizationColumns(z);
        insertAuthorization.run(c.id, c.accountId, c.identifierType, c.identifierValue, bit(c.wildcard), c.status, d(c.expires), c.challenges, d(c.createdAt));
      }
      const o = orderColumns(order);
      insertOrder.run(o.id, o.accountId, o.profile, o.status, d(o.expires), o.identifiers, o.authorizationIds, dOrNull(o.notBefore), dOrNull(o.notAfter), o.error, o.issuerId, o.certificateSerial, o.replaces, d(o.createdAt));
    }),
  };
}
