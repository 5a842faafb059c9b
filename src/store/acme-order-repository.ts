/**
 * ACME orders and authorizations (RFC 8555 §7.1.3, §7.1.4). Authorizations
 * carry their challenges as JSON in the same row, so a state change of an
 * authorization and its challenges is one compare-and-set on one row.
 */
import type { AcmeOrderRepository, OrderSettlement } from '../ra/acme/ports.js';
import { problemJson, toOrder } from './acme-rows.js';
import { authorizationMoveValues, updateAuthorizationSql, type AcmePgHotPath } from './acme-pg.js';
import type { AcmeSqliteHotPath } from './acme-sqlite.js';
import type { PgAuditChain } from './audit-repository.js';
import type { Db } from './client.js';

/**
 * {@link AcmeOrderRepository}: what every request does runs on the flavour's
 * hot path (`hot`: acme-sqlite.ts or acme-pg.ts); listings, and on
 * PostgreSQL the settlement of crash leftovers (with its audit event,
 * through the store's audit chain `pg`) go through Prisma and `pg`.
 */
export function acmeOrderRepository(db: Db, hot: AcmeSqliteHotPath['orders'] | AcmePgHotPath['orders'], pg?: PgAuditChain): AcmeOrderRepository {
  return {
    listOrders: async (accountId, limit) =>
      (await db.acmeOrder.findMany({ where: { accountId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: limit })).map(toOrder),
    listProcessing: async (createdBefore, limit) =>
      (await db.acmeOrder.findMany({ where: { status: 'processing', createdAt: { lt: createdBefore } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: limit })).map(toOrder),
    // PostgreSQL (SQLite settles through its hot path): the order rows first,
    // then the audit lock, as every transaction that appends to the chain does.
    settleProcessing: (settlements, audit) => {
      if (!pg) throw new Error('ACME order repository: settleProcessing on PostgreSQL needs the audit chain');
      return pg.transaction(
        async (client) => {
          const moved: OrderSettlement[] = [];
          for (const s of settlements) {
            const next = s.next;
            const r = await client.query({
              name: 'trellis_settle_processing',
              text: `UPDATE "AcmeOrder" SET "status" = $1, "issuerId" = COALESCE($2, "issuerId"), "certificateSerial" = COALESCE($3, "certificateSerial"), "error" = COALESCE($4, "error")
                WHERE "id" = $5 AND "status" = 'processing'`,
              values:
                next.status === 'valid'
                  ? [next.status, next.issuerId, next.certificateSerial, null, s.id]
                  : [next.status, null, null, problemJson(next.error), s.id],
            });
            if (r.rowCount === 1) moved.push(s);
          }
          return moved;
        },
        (moved) => (moved.length ? audit(moved) : null),
      );
    },
    ...hot,
    // PostgreSQL: an audited move runs on the audit chain, the row first and then the lock, as settleProcessing does.
    updateAuthorization: (id, expected, next, audit) => {
      if (!audit || !pg) return hot.updateAuthorization(id, expected, next, audit);
      return pg.transaction(
        async (client) => (await client.query({ name: 'trellis_acme_update_authorization', text: updateAuthorizationSql, values: authorizationMoveValues(id, expected, next) })).rowCount === 1,
        (won) => (won ? audit : null),
      );
    },
  };
}
