/**
 * CRL storage. On SQLite the DER goes in and out through the hot path's
 * better-sqlite3 connection (one blob, no Prisma transport: a 49 MB full CRL
 * would cost ~440 MiB to insert through Prisma); metadata and the rest stay on Prisma.
 */
import { leaseHolderLimit, type CrlRecord, type CrlRepository } from '../crl/ports.js';
import { PkiError } from '../errors/pki-error.js';
import { buf, conflictOr, type Db } from './client.js';
import { hotPathOf, type SqliteHotPath } from './sqlite-hot-path.js';

/** The lease's BIGINT holds expiry (ms) × this + holder (acquireLease below; sqlite-serving.ts). */
export const holderSpan = BigInt(leaseHolderLimit);

/** A Crl row as Prisma reads it, as a CrlRecord (its other columns dropped). */
const toRecord = (r: Omit<CrlRecord, 'der'> & { der: Uint8Array }): CrlRecord => ({
  caId: r.caId, scope: r.scope, crlNumber: r.crlNumber, baseCrlNumber: r.baseCrlNumber, thisUpdate: r.thisUpdate, nextUpdate: r.nextUpdate, entries: r.entries, der: buf(r.der),
});

/** Every column of a CRL row but its DER. */
const crlMeta = { caId: true, scope: true, crlNumber: true, baseCrlNumber: true, thisUpdate: true, nextUpdate: true, entries: true } as const;
/**
 * PostgreSQL: a CRL of more entries than this (~40 octets each) is read in
 * slices of {@link sliceBytes}. Read whole, through Prisma, a full CRL of
 * 1 M entries (40 MiB) took 4.4–5.7 s and 2.4–3.2 s of CPU and grew the
 * process by 150–340 MiB; in 4 MiB slices 2.7–3.2 s, 0.9–1.2 s of CPU and
 * 35–98 MiB (every worker loads it at start; docs/performance.md, Scale).
 */
const wholeReadEntries = 50_000;
const sliceBytes = 4 * 1024 * 1024;

/** The DER of one CRL, read in slices of {@link sliceBytes}; null when the row is gone. */
async function derInSlices(db: Db, caId: string, crlNumber: bigint): Promise<Buffer | null> {
  const size = await db.$queryRaw<{ n: number }[]>`SELECT length("der")::int AS n FROM "Crl" WHERE "caId" = ${caId} AND "crlNumber" = ${crlNumber}`;
  if (size.length === 0) return null;
  const n = size[0]!.n;
  // Each slice is copied into the one buffer of the CRL as it comes: at most one CRL plus one slice held at once.
  const der = Buffer.allocUnsafe(n);
  for (let from = 0; from < n; from += sliceBytes) {
    const r = await db.$queryRaw<{ d: Uint8Array }[]>`SELECT substring("der" from ${from + 1}::int for ${sliceBytes}::int) AS d FROM "Crl" WHERE "caId" = ${caId} AND "crlNumber" = ${crlNumber}`;
    const d = r[0]?.d;
    if (!d || d.length !== Math.min(sliceBytes, n - from)) return null;
    der.set(d, from);
  }
  return der;
}
export const leaseKey = (caId: string) => `lease:${caId}`;
/** The lease's value for `holder` until `until`. */
export const leaseValue = (holder: number, until: Date): bigint => BigInt(until.getTime()) * holderSpan + BigInt(holder);
export const checkHolder = (holder: number) => {
  if (!Number.isInteger(holder) || holder < 1 || holder >= leaseHolderLimit) throw new PkiError('malformed', `CRL lease holder must be an integer in [1, 2^21), got ${holder}`);
};

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
      return r && toRecord(r);
    },
    async loadMany(caId, wanted) {
      const h = fast();
      if (h) {
        // SQLite: a prepared statement per CRL wanted, by its number (the hot path reads the DER without Prisma).
        const out: CrlRecord[] = [];
        for (const w of wanted) {
          const r = await h.crlByNumber(caId, w.scope, w.crlNumber);
          if (r) out.push(r);
        }
        return out;
      }
      if (wanted.length === 0) return [];
      // CRL numbers are drawn per CA (nextCrlNumber), so the numbers alone pick the rows; the scope is checked here.
      const want = new Set(wanted.map((w) => `${w.scope}/${w.crlNumber}`));
      const metas = (await db.crl.findMany({ where: { caId, crlNumber: { in: [...new Set(wanted.map((w) => w.crlNumber))] } }, select: crlMeta })).filter((m) => want.has(`${m.scope}/${m.crlNumber}`));
      const large = metas.filter((m) => m.entries > wholeReadEntries);
      const small = metas.length === large.length ? [] : await db.crl.findMany({ where: { caId, crlNumber: { in: metas.filter((m) => m.entries <= wholeReadEntries).map((m) => m.crlNumber) } } });
      const out: CrlRecord[] = small.map(toRecord);
      for (const m of large) {
        const der = await derInSlices(db, caId, m.crlNumber);
        if (der) out.push({ ...m, der });
      }
      return out;
    },
    async latestAll(caId) {
      const rows = await db.crl.findMany({
        where: { caId },
        orderBy: { crlNumber: 'desc' },
        distinct: ['scope'],
        select: crlMeta,
      });
      return rows satisfies Omit<CrlRecord, 'der'>[];
    },
    // The lease lives in the CrlSequence table (no schema change): one row per
    // CA under the key `lease:<caId>`, which no CA id can take (ids are
    // [a-z0-9-]), holding expiry (ms) × 2^21 + holder in its BIGINT. One
    // statement takes, renews or refuses it, on SQLite ≥ 3.35 and PostgreSQL.
    async acquireLease(caId, holder, now, until) {
      checkHolder(holder);
      const value = leaseValue(holder, until);
      const rows = await db.$queryRaw<{ last: bigint | number }[]>`INSERT INTO "CrlSequence" ("caId", "last") VALUES (${leaseKey(caId)}, ${value})
        ON CONFLICT ("caId") DO UPDATE SET "last" = ${value}
        WHERE "CrlSequence"."last" / ${holderSpan} <= ${BigInt(now.getTime())} OR "CrlSequence"."last" % ${holderSpan} = ${BigInt(holder)}
        RETURNING "last"`;
      return rows.length === 1;
    },
    async releaseLease(caId, holder) {
      checkHolder(holder);
      await db.$executeRaw`UPDATE "CrlSequence" SET "last" = 0 WHERE "caId" = ${leaseKey(caId)} AND "last" % ${holderSpan} = ${BigInt(holder)}`;
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
