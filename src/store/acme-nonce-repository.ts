/**
 * Used ACME nonces (RFC 8555 §6.5). The nonce is the primary key, so of any
 * number of concurrent redemptions, on any node, exactly one inserts a row.
 */
import type { AcmeNonceRepository } from '../ra/acme/ports.js';
import type { AcmeSqliteHotPath } from './acme-sqlite.js';
import type { Db } from './client.js';

/** Rows deleted per statement when pruning, so a prune never holds locks on millions of rows at once. */
const pruneBatch = 10_000;

/**
 * {@link AcmeNonceRepository}. SQLite stores must pass `hot` (prepared
 * statements); without it the database is PostgreSQL, where each call is one
 * raw statement. Times travel as UTC ISO text into TIMESTAMP(3) columns, as
 * Prisma writes them.
 */
export function acmeNonceRepository(db: Db, hot?: AcmeSqliteHotPath['nonces']): AcmeNonceRepository {
  if (hot) return hot;
  return {
    async redeem(nonce, expiresAt) {
      // ON CONFLICT DO NOTHING, not a caught unique violation: a replay is an
      // expected answer, and PostgreSQL would log every violation as an ERROR.
      const n = await db.$executeRaw`INSERT INTO "AcmeUsedNonce" ("nonce","expiresAt") VALUES (${nonce}, ${expiresAt.toISOString()}::timestamp(3)) ON CONFLICT DO NOTHING`;
      return n === 1;
    },
    async prune(before) {
      let total = 0;
      for (;;) {
        const n = await db.$executeRaw`DELETE FROM "AcmeUsedNonce" WHERE "nonce" IN
          (SELECT "nonce" FROM "AcmeUsedNonce" WHERE "expiresAt" < ${before.toISOString()}::timestamp(3) LIMIT ${pruneBatch})`;
        total += n;
        if (n < pruneBatch) return total;
      }
    },
  };
}
