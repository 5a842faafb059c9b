/**
 * CRL storage. On SQLite the DER goes in and out through the hot path's
 * better-sqlite3 connection (one blob, no Prisma transport: a 49 MB full CRL
 * would cost ~440 MiB to insert through Prisma); metadata and the rest stay on Prisma.
 */
import type { CrlRecord, CrlRepository } from '../crl/ports.js';
import { buf, conflictOr, type Db } from './client.js';
import { hotPathOf, type SqliteHotPath } from './sqlite-hot-path.js';

/**
 * {@link CrlRepository}. `hot` is the SQLite hot path; when it is not passed,
 * the one registered for `db` (by certificateRepository) is used, and none
 * means PostgreSQL.
 */
export function crlRepository(db: Db, hot?: SqliteHotPath): CrlRepository {
  const fast = () => hot ?? hotPathOf(db);
  return {
    async nextCrlNumber(caId) {
      // One atomic statement per draw, on every node: INSERT … ON CONFLICT DO UPDATE … RETURNING
      // works on SQLite ≥ 3.35 and PostgreSQL alike.
      const rows = await db.$queryRaw<{ last: bigint | number }[]>`INSERT INTO "CrlSequence" ("caId", "last") VALUES (${caId}, 1)
        ON CONFLICT ("caId") DO UPDATE SET "last" = "CrlSequence"."last" + 1 RETURNING "last"`;
      return BigInt(rows[0]!.last);
    },
    async insert(crl) {
      const h = fast();
      if (h) return h.insertCrl(crl);
      try {
        await db.crl.create({ data: { ...crl, der: new Uint8Array(crl.der) } });
      } catch (err) {
        conflictOr(err, `CRL ${crl.crlNumber} of ${crl.caId}/${crl.scope} already exists`);
      }
    },
    async latest(caId, scope) {
      const h = fast();
      if (h) return h.latestCrl(caId, scope);
      const r = await db.crl.findFirst({ where: { caId, scope }, orderBy: { crlNumber: 'desc' } });
      return r && { caId: r.caId, scope: r.scope, crlNumber: r.crlNumber, baseCrlNumber: r.baseCrlNumber, thisUpdate: r.thisUpdate, nextUpdate: r.nextUpdate, entries: r.entries, der: buf(r.der) };
    },
    async latestAll(caId) {
      const rows = await db.crl.findMany({
        where: { caId },
        orderBy: { crlNumber: 'desc' },
        distinct: ['scope'],
        select: { caId: true, scope: true, crlNumber: true, baseCrlNumber: true, thisUpdate: true, nextUpdate: true, entries: true },
      });
      return rows satisfies Omit<CrlRecord, 'der'>[];
    },
    async prune(caId, keep) {
      let deleted = 0;
      for (const { scope } of await db.crl.findMany({ where: { caId }, distinct: ['scope'], select: { scope: true } })) {
        const old = await db.crl.findMany({ where: { caId, scope }, orderBy: { crlNumber: 'desc' }, skip: keep, select: { id: true } });
        if (old.length) deleted += (await db.crl.deleteMany({ where: { id: { in: old.map((o) => o.id) } } })).count;
      }
      return deleted;
    },
  };
}
