/**
 * ACME orders and authorizations (RFC 8555 §7.1.3, §7.1.4). Authorizations
 * carry their challenges as JSON in the same row, so a state change of an
 * authorization and its challenges is one compare-and-set on one row.
 */
import type { AcmeOrderRepository, OrderSettlement } from '../ra/acme/ports.js';
import { problemJson, toOrder } from './acme-rows.js';
import type { AcmePgHotPath } from './acme-pg.js';
import type { AcmeSqliteHotPath } from './acme-sqlite.js';
import { appendAuditInTx } from './audit-repository.js';
import type { Db } from './client.js';

/**
 * {@link AcmeOrderRepository}: what every request does runs on the flavour's
 * hot path (`hot`: acme-sqlite.ts or acme-pg.ts); listings, and on
 * PostgreSQL the settlement of crash leftovers, go through Prisma.
 */
export function acmeOrderRepository(db: Db, hot: AcmeSqliteHotPath['orders'] | AcmePgHotPath['orders']): AcmeOrderRepository {
  return {
    listOrders: async (accountId, limit) =>
      (await db.acmeOrder.findMany({ where: { accountId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: limit })).map(toOrder),
    listProcessing: async (createdBefore, limit) =>
      (await db.acmeOrder.findMany({ where: { status: 'processing', createdAt: { lt: createdBefore } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: limit })).map(toOrder),
    // PostgreSQL (SQLite settles through its hot path): the order rows first,
    // then the audit lock, as every transaction that appends to the chain does.
    settleProcessing: (settlements, audit) =>
      db.$transaction(async (tx) => {
        const moved: OrderSettlement[] = [];
        for (const s of settlements) {
          const next = s.next;
          const data = next.status === 'valid' ? { status: next.status, issuerId: next.issuerId, certificateSerial: next.certificateSerial } : { status: next.status, error: problemJson(next.error) };
          if ((await tx.acmeOrder.updateMany({ where: { id: s.id, status: 'processing' }, data })).count === 1) moved.push(s);
        }
        if (moved.length) {
          const batch = audit(moved);
          await appendAuditInTx(tx, batch.drafts, batch.chain);
        }
        return moved;
      }),
    ...hot,
  };
}
