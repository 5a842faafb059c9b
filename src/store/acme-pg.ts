/**
 * The ACME hot path on PostgreSQL: every ACME request redeems a nonce and
 * most read or move an account, order or authorization. Through the Prisma
 * client each of those costs 100–300 µs of this process's CPU (query
 * compilation, result mapping) on top of the round trip; here each is one
 * parameterised statement on the pool Prisma itself uses (`pg`), with the
 * rows mapped by the same functions as every other path (acme-rows.ts).
 *
 * Times are written as UTC ISO text cast to timestamp(3), as Prisma writes
 * them, and read back as UTC whatever the process's time zone (`types`).
 * Rare operations (account updates and key changes, listings, crash
 * settlement with its audit event) stay on Prisma.
 */
import type pg from 'pg';
import { PkiError } from '../errors/pki-error.js';
import type { AcmeNonceRepository } from '../ra/acme/ports.js';
import { accountColumns, authorizationColumns, challengesJson, inIdOrder, orderColumns, problemJson, toAccount, toAuthorization, toOrder, type AccountRow, type AuthorizationRow, type OrderRow } from './acme-rows.js';
import type { AcmeSqliteHotPath } from './acme-sqlite.js';

/** The repository methods the PostgreSQL hot path implements: the SQLite ones but the crash settlement. */
export interface AcmePgHotPath {
  accounts: AcmeSqliteHotPath['accounts'];
  orders: Omit<AcmeSqliteHotPath['orders'], 'settleProcessing'>;
  nonces: AcmeNonceRepository;
}

/** Heap pages of AcmeUsedNonce one prune statement reads at most (about 100 used nonces a page). */
const prunePages = 128;
const timestampOid = 1114;

/** Reads timestamp (without time zone) columns as UTC, the way Prisma stored them. */
const types = (pgTypes: typeof pg.types): pg.CustomTypesConfig => ({
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === timestampOid ? (text: string) => new Date(`${text.replace(' ', 'T')}Z`) : pgTypes.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
});

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

/** Unique and foreign-key violations as PkiErrors; anything else unchanged. */
function mapConstraint(err: unknown, conflict: string, notFound: string): unknown {
  switch ((err as { code?: string }).code) {
    case '23505':
      return new PkiError('conflict', conflict, { cause: err });
    case '23503':
      return new PkiError('notFound', notFound, { cause: err });
    default:
      return err;
  }
}

const accountSelect = `SELECT "id","thumbprint","jwk","status","contact","termsAgreed","eabKeyId","createdAt" FROM "AcmeAccount"`;
const orderSelect = `SELECT "id","accountId","profile","status","expires","identifiers","authorizationIds","notBefore","notAfter","error","issuerId","certificateSerial","replaces","createdAt" FROM "AcmeOrder"`;
const authorizationSelect = `SELECT "id","accountId","identifierType","identifierValue","wildcard","status","expires","challenges","createdAt" FROM "AcmeAuthorization"`;

/** The compare-and-set of an authorization ($1–$5: {@link authorizationMoveValues}). */
export const updateAuthorizationSql = `UPDATE "AcmeAuthorization" SET "status" = $1, "challenges" = $2, "expires" = COALESCE($3::timestamp(3), "expires") WHERE "id" = $4 AND "status" = $5`;

type AuthorizationMove = Parameters<AcmePgHotPath['orders']['updateAuthorization']>;

/** The parameters of {@link updateAuthorizationSql}. */
export const authorizationMoveValues = (id: AuthorizationMove[0], expected: AuthorizationMove[1], next: AuthorizationMove[2]): unknown[] => [
  next.status,
  challengesJson(next.challenges),
  next.expires ? iso(next.expires) : null,
  id,
  expected,
];

/** Builds the hot path over `pool` (the pool the Prisma adapter uses); `pgTypes` is `pg.types` of the same `pg`. */
export function acmePgHotPath(pool: pg.Pool, pgTypes: typeof pg.types): AcmePgHotPath {
  const rowTypes = types(pgTypes);
  // Named statements: PostgreSQL plans each once per connection.
  const query = async <R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> => pool.query<R>({ name: `trellis_acme_${name}`, text, values, types: rowTypes });
  const one = async <R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]): Promise<R | null> => (await query<R>(name, text, values)).rows[0] ?? null;
  const accountByThumbprint = async (thumbprint: string) => {
    const r = await one<AccountRow>('account_by_thumbprint', `${accountSelect} WHERE "thumbprint" = $1`, [thumbprint]);
    return r && toAccount(r);
  };

  return {
    accounts: {
      async createOrGet(a) {
        const c = accountColumns(a);
        try {
          // The unique thumbprint decides between concurrent creators on every node; the losers read the winner's row.
          const r = await query(
            'insert_account',
            `INSERT INTO "AcmeAccount" ("id","thumbprint","jwk","status","contact","termsAgreed","eabKeyId","createdAt")
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8::timestamp(3)) ON CONFLICT ("thumbprint") DO NOTHING`,
            [c.id, c.thumbprint, c.jwk, c.status, c.contact, c.termsAgreed, c.eabKeyId, iso(c.createdAt)],
          );
          if (r.rowCount === 1) return { account: a, created: true };
        } catch (err) {
          throw mapConstraint(err, `account id "${a.id}" already exists`, 'no such account');
        }
        const winner = await accountByThumbprint(a.thumbprint);
        if (!winner) throw new Error(`account with thumbprint ${a.thumbprint} neither inserted nor found`);
        return { account: winner, created: false };
      },
      async findById(id) {
        const r = await one<AccountRow>('account_by_id', `${accountSelect} WHERE "id" = $1`, [id]);
        return r && toAccount(r);
      },
      findByThumbprint: accountByThumbprint,
    },

    orders: {
      async createOrder(order, newAuthorizations) {
        const o = orderColumns(order);
        const z = newAuthorizations.map(authorizationColumns);
        try {
          // One statement: atomic without a transaction, and one round trip.
          await query(
            'create_order',
            `WITH z AS (
               INSERT INTO "AcmeAuthorization" ("id","accountId","identifierType","identifierValue","wildcard","status","expires","challenges","createdAt")
               SELECT id, acct, t, v, w, st, ex::timestamp(3), ch, cr::timestamp(3)
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::text[], $7::text[], $8::text[], $9::text[]) AS u(id, acct, t, v, w, st, ex, ch, cr))
             INSERT INTO "AcmeOrder" ("id","accountId","profile","status","expires","identifiers","authorizationIds","notBefore","notAfter","error","issuerId","certificateSerial","replaces","createdAt")
             VALUES ($10,$11,$12,$13,$14::timestamp(3),$15,$16,$17::timestamp(3),$18::timestamp(3),$19,$20,$21,$22,$23::timestamp(3))`,
            [
              z.map((x) => x.id), z.map((x) => x.accountId), z.map((x) => x.identifierType), z.map((x) => x.identifierValue), z.map((x) => x.wildcard),
              z.map((x) => x.status), z.map((x) => iso(x.expires)), z.map((x) => x.challenges), z.map((x) => iso(x.createdAt)),
              o.id, o.accountId, o.profile, o.status, iso(o.expires), o.identifiers, o.authorizationIds, iso(o.notBefore), iso(o.notAfter), o.error, o.issuerId, o.certificateSerial, o.replaces, iso(o.createdAt),
            ],
          );
        } catch (err) {
          throw mapConstraint(err, `order "${order.id}" or one of its authorizations already exists`, `no account "${order.accountId}"`);
        }
      },
      async findOrder(id) {
        const r = await one<OrderRow>('order_by_id', `${orderSelect} WHERE "id" = $1`, [id]);
        return r && toOrder(r);
      },
      async findAuthorization(id) {
        const r = await one<AuthorizationRow>('authorization_by_id', `${authorizationSelect} WHERE "id" = $1`, [id]);
        return r && toAuthorization(r);
      },
      async findAuthorizations(ids) {
        if (ids.length === 0) return [];
        const { rows } = await query<AuthorizationRow>('authorizations_by_ids', `${authorizationSelect} WHERE "id" = ANY($1::text[])`, [[...ids]]);
        return inIdOrder(ids, rows).map(toAuthorization);
      },
      async findReusableAuthorization(accountId, identifier, wildcard, expiresAfter, includePending) {
        const r = await one<AuthorizationRow>(
          'reusable_authorization',
          `${authorizationSelect}
           WHERE "accountId" = $1 AND "identifierType" = $2 AND "identifierValue" = $3 AND "wildcard" = $4 AND "status" IN ('valid', $5) AND "expires" > $6::timestamp(3)
           ORDER BY "expires" DESC LIMIT 1`,
          [accountId, identifier.type, identifier.value, wildcard, includePending ? 'pending' : 'valid', iso(expiresAfter)],
        );
        return r && toAuthorization(r);
      },
      async updateAuthorization(id, expected, next, audit) {
        // An audited move takes the chain lock in one transaction with the row: acmeOrderRepository runs it on the audit chain.
        if (audit) throw new Error('ACME PostgreSQL hot path: an audited authorization update goes through the audit chain');
        const r = await query('update_authorization', updateAuthorizationSql, authorizationMoveValues(id, expected, next));
        return r.rowCount === 1;
      },
      async updateOrder(id, expected, next) {
        // Fields absent from the patch keep their value; `error` may be set to null on purpose, hence the flag.
        const r = await query(
          'update_order',
          `UPDATE "AcmeOrder" SET "status" = $1,
             "error" = CASE WHEN $2::boolean THEN $3 ELSE "error" END,
             "issuerId" = COALESCE($4, "issuerId"),
             "certificateSerial" = COALESCE($5, "certificateSerial")
           WHERE "id" = $6 AND "status" = $7`,
          [next.status, next.error !== undefined, next.error === undefined ? null : problemJson(next.error), next.issuerId ?? null, next.certificateSerial ?? null, id, expected],
        );
        return r.rowCount === 1;
      },
      async isReplaced(replaces, exceptOrderId, now) {
        const r = await query(
          'replaced_by',
          `SELECT 1 FROM "AcmeOrder"
           WHERE "replaces" = $1 AND "status" <> 'invalid' AND ($2::text IS NULL OR "id" <> $2)
             AND ($3::timestamp(3) IS NULL OR "status" <> 'pending' OR "expires" > $3::timestamp(3))
           LIMIT 1`,
          [replaces, exceptOrderId ?? null, now ? iso(now) : null],
        );
        return r.rowCount === 1;
      },
    },

    nonces: {
      async redeem(nonce, expiresAt) {
        // ON CONFLICT DO NOTHING, not a caught violation: a replay is an expected answer, and PostgreSQL would log it as an ERROR.
        const r = await query('redeem_nonce', `INSERT INTO "AcmeUsedNonce" ("nonce","expiresAt") VALUES ($1, $2::timestamp(3)) ON CONFLICT DO NOTHING`, [nonce, iso(expiresAt)]);
        return r.rowCount === 1;
      },
      // expiresAt has no index (a redemption would keep it up), so a prune reads the table once, a range
      // of heap pages per statement (a TID range scan): each statement's work is bounded, and the total
      // grows with the table. A DELETE ... IN (SELECT ... LIMIT) per batch read the whole table in every
      // batch (a hash semi-join) or, planned otherwise, the rows the batches before it had deleted:
      // 1 M expired rows took 18-26 s, 5 M 46 s; by pages 1.5 s and 8.8 s (bench/acme-nonce-prune.mjs).
      // Pages added after the call began hold nonces redeemed since; a later call reads them.
      async prune(before) {
        const size = await query<{ pages: string }>('nonce_pages', `SELECT pg_relation_size('"AcmeUsedNonce"') / current_setting('block_size')::int AS "pages"`, []);
        const pages = Number(size.rows[0]?.pages ?? 0);
        let total = 0;
        for (let page = 0; page < pages; page += prunePages) {
          const r = await query(
            'prune_nonces',
            `DELETE FROM "AcmeUsedNonce" WHERE ctid >= $1::tid AND ctid < $2::tid AND "expiresAt" < $3::timestamp(3)`,
            [`(${page},0)`, `(${Math.min(page + prunePages, pages)},0)`, iso(before)],
          );
          total += r.rowCount ?? 0;
        }
        return total;
      },
    },
  };
}
