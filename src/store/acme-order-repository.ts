/**
 * ACME orders and authorizations (RFC 8555 §7.1.3, §7.1.4). Authorizations
 * carry their challenges as JSON in the same row, so a state change of an
 * authorization and its challenges is one compare-and-set on one row.
 */
import type { AcmeOrderRepository, OrderSettlement } from '../ra/acme/ports.js';
import { authorizationColumns, challengesJson, inIdOrder, orderColumns, problemJson, toAuthorization, toOrder } from './acme-rows.js';
import type { AcmeSqliteHotPath } from './acme-sqlite.js';
import { appendAuditInTx } from './audit-repository.js';
import { rethrowAs, type Db } from './client.js';

/**
 * {@link AcmeOrderRepository}. SQLite stores must pass `hot`; without it the
 * database is PostgreSQL. On SQLite every method but listOrders runs on
 * prepared statements; on PostgreSQL each is one Prisma query.
 */
export function acmeOrderRepository(db: Db, hot?: AcmeSqliteHotPath['orders']): AcmeOrderRepository {
  const viaPrisma: AcmeOrderRepository = {
    async createOrder(order, newAuthorizations) {
      const o = orderColumns(order);
      const z = newAuthorizations.map(authorizationColumns);
      const iso = (d: Date | null) => d?.toISOString() ?? null;
      try {
        // One statement, so atomic without a transaction and one round trip: a
        // Prisma batch (createMany + create) cost ~1 ms of client CPU, this ~0.2 ms.
        // Times travel as UTC ISO text, as in certificate-repository.ts.
        await db.$executeRaw`WITH z AS (
            INSERT INTO "AcmeAuthorization" ("id","accountId","identifierType","identifierValue","wildcard","status","expires","challenges","createdAt")
            SELECT id, acct, t, v, w, st, ex::timestamp(3), ch, cr::timestamp(3)
            FROM unnest(${z.map((x) => x.id)}::text[], ${z.map((x) => x.accountId)}::text[], ${z.map((x) => x.identifierType)}::text[],
                        ${z.map((x) => x.identifierValue)}::text[], ${z.map((x) => x.wildcard)}::boolean[], ${z.map((x) => x.status)}::text[],
                        ${z.map((x) => iso(x.expires))}::text[], ${z.map((x) => x.challenges)}::text[], ${z.map((x) => iso(x.createdAt))}::text[])
              AS u(id, acct, t, v, w, st, ex, ch, cr))
          INSERT INTO "AcmeOrder" ("id","accountId","profile","status","expires","identifiers","authorizationIds","notBefore","notAfter","error","issuerId","certificateSerial","replaces","createdAt")
          VALUES (${o.id}, ${o.accountId}, ${o.profile}, ${o.status}, ${iso(o.expires)}::timestamp(3), ${o.identifiers}, ${o.authorizationIds},
                  ${iso(o.notBefore)}::timestamp(3), ${iso(o.notAfter)}::timestamp(3), ${o.error}, ${o.issuerId}, ${o.certificateSerial}, ${o.replaces}, ${iso(o.createdAt)}::timestamp(3))`;
      } catch (err) {
        rethrowAs(err, { conflict: `order "${order.id}" or one of its authorizations already exists`, notFound: `no account "${order.accountId}"` });
      }
    },
    async findOrder(id) {
      const r = await db.acmeOrder.findUnique({ where: { id } });
      return r && toOrder(r);
    },
    listOrders: async (accountId, limit) =>
      (await db.acmeOrder.findMany({ where: { accountId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: limit })).map(toOrder),
    async findAuthorization(id) {
      const r = await db.acmeAuthorization.findUnique({ where: { id } });
      return r && toAuthorization(r);
    },
    async findAuthorizations(ids) {
      if (ids.length === 0) return [];
      return inIdOrder(ids, await db.acmeAuthorization.findMany({ where: { id: { in: [...ids] } } })).map(toAuthorization);
    },
    async findReusableAuthorization(accountId, identifier, wildcard, expiresAfter, includePending) {
      const r = await db.acmeAuthorization.findFirst({
        where: {
          accountId,
          identifierType: identifier.type,
          identifierValue: identifier.value,
          wildcard,
          status: { in: includePending ? ['valid', 'pending'] : ['valid'] },
          expires: { gt: expiresAfter },
        },
        orderBy: { expires: 'desc' },
      });
      return r && toAuthorization(r);
    },
    async updateAuthorization(id, expected, next) {
      const { count } = await db.acmeAuthorization.updateMany({ where: { id, status: expected }, data: { status: next.status, challenges: challengesJson(next.challenges), ...(next.expires ? { expires: next.expires } : {}) } });
      return count === 1;
    },
    async updateOrder(id, expected, next) {
      const { count } = await db.acmeOrder.updateMany({
        where: { id, status: expected },
        data: {
          status: next.status,
          ...(next.error !== undefined ? { error: problemJson(next.error) } : {}),
          ...(next.issuerId !== undefined ? { issuerId: next.issuerId } : {}),
          ...(next.certificateSerial !== undefined ? { certificateSerial: next.certificateSerial } : {}),
        },
      });
      return count === 1;
    },
    async isReplaced(replaces, exceptOrderId, now) {
      const r = await db.acmeOrder.findFirst({
        where: {
          replaces,
          status: { not: 'invalid' },
          ...(exceptOrderId !== undefined ? { id: { not: exceptOrderId } } : {}),
          ...(now ? { OR: [{ status: { not: 'pending' } }, { expires: { gt: now } }] } : {}),
        },
        select: { id: true },
      });
      return r !== null;
    },
    listProcessing: async (createdBefore, limit) =>
      (await db.acmeOrder.findMany({ where: { status: 'processing', createdAt: { lt: createdBefore } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: limit })).map(toOrder),
    // PostgreSQL (SQLite settles through the hot path): the order rows first,
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
  };
  return hot ? { ...viaPrisma, ...hot } : viaPrisma;
}
