/**
 * ACME orders and authorizations (RFC 8555 §7.1.3, §7.1.4). Authorizations
 * carry their challenges as JSON in the same row, so a state change of an
 * authorization and its challenges is one compare-and-set on one row.
 */
import type { AcmeOrderRepository } from '../ra/acme/ports.js';
import { authorizationColumns, challengesJson, inIdOrder, orderColumns, problemJson, toAuthorization, toOrder } from './acme-rows.js';
import type { AcmeSqliteHotPath } from './acme-sqlite.js';
import { rethrowAs, type Db } from './client.js';

/**
 * {@link AcmeOrderRepository}. SQLite stores must pass `hot`; without it the
 * database is PostgreSQL. On SQLite every method but listOrders runs on
 * prepared statements; on PostgreSQL each is one Prisma query (createOrder:
 * one transaction of two).
 */
export function acmeOrderRepository(db: Db, hot?: AcmeSqliteHotPath['orders']): AcmeOrderRepository {
  const viaPrisma: AcmeOrderRepository = {
    async createOrder(order, newAuthorizations) {
      try {
        await db.$transaction([
          db.acmeAuthorization.createMany({ data: newAuthorizations.map(authorizationColumns) }),
          db.acmeOrder.create({ data: orderColumns(order) }),
        ]);
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
      const { count } = await db.acmeAuthorization.updateMany({ where: { id, status: expected }, data: { status: next.status, challenges: challengesJson(next.challenges) } });
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
  };
  return hot ? { ...viaPrisma, ...hot } : viaPrisma;
}
