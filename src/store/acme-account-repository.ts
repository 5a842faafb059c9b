/** ACME accounts (RFC 8555 §7.3): one per account key, found by id (`kid`) or key thumbprint. */
import { isPkiError } from '../errors/pki-error.js';
import type { AcmeAccountRepository } from '../ra/acme/ports.js';
import { accountColumns, toAccount } from './acme-rows.js';
import type { AcmeSqliteHotPath } from './acme-sqlite.js';
import { rethrowAs, type Db } from './client.js';

/**
 * {@link AcmeAccountRepository}. SQLite stores must pass `hot`; without it
 * the database is PostgreSQL. On SQLite creation and the lookups of every
 * request run on prepared statements; updates and key rollover, which are
 * rare, go through Prisma on both flavours.
 */
export function acmeAccountRepository(db: Db, hot?: AcmeSqliteHotPath['accounts']): AcmeAccountRepository {
  const findByThumbprint = async (thumbprint: string) => {
    const r = await db.acmeAccount.findUnique({ where: { thumbprint } });
    return r && toAccount(r);
  };
  const viaPrisma: AcmeAccountRepository = {
    async createOrGet(account) {
      // The unique thumbprint decides between concurrent creators on every node:
      // ON CONFLICT DO NOTHING lets the losers read the winner's row instead of
      // failing (PostgreSQL would also log every lost race as an ERROR).
      const c = accountColumns(account);
      try {
        const n = await db.$executeRaw`INSERT INTO "AcmeAccount" ("id","thumbprint","jwk","status","contact","termsAgreed","eabKeyId","createdAt")
          VALUES (${c.id}, ${c.thumbprint}, ${c.jwk}, ${c.status}, ${c.contact}, ${c.termsAgreed}, ${c.eabKeyId}, ${c.createdAt.toISOString()}::timestamp(3))
          ON CONFLICT ("thumbprint") DO NOTHING`;
        if (n === 1) return { account, created: true };
      } catch (err) {
        rethrowAs(err, { conflict: `account id "${account.id}" already exists` });
      }
      const winner = await findByThumbprint(account.thumbprint);
      if (!winner) throw new Error(`account with thumbprint ${account.thumbprint} neither inserted nor found`);
      return { account: winner, created: false };
    },
    async findById(id) {
      const r = await db.acmeAccount.findUnique({ where: { id } });
      return r && toAccount(r);
    },
    findByThumbprint,
    async update(id, patch) {
      if (patch.contact === undefined && patch.status === undefined) {
        const r = await db.acmeAccount.findFirst({ where: { id, status: 'valid' } });
        return r && toAccount(r);
      }
      const data = { ...(patch.contact ? { contact: JSON.stringify(patch.contact) } : {}), ...(patch.status ? { status: patch.status } : {}) };
      // One conditional UPDATE … RETURNING: a deactivated account stays deactivated.
      const rows = await db.acmeAccount.updateManyAndReturn({ where: { id, status: 'valid' }, data });
      return rows[0] ? toAccount(rows[0]) : null;
    },
    async changeKey(id, oldThumbprint, next) {
      try {
        // RFC 8555 §7.3.5: the swap happens only if the old key is still the
        // account's; the unique index refuses a key another account holds.
        const { count } = await db.acmeAccount
          .updateMany({ where: { id, thumbprint: oldThumbprint }, data: { thumbprint: next.thumbprint, jwk: next.jwk } })
          .catch((err: unknown) => rethrowAs(err, { conflict: 'the new key belongs to another account' }));
        return count === 1 ? 'changed' : 'notFound';
      } catch (err) {
        if (isPkiError(err, 'conflict')) return 'conflict';
        throw err;
      }
    },
  };
  return hot ? { ...viaPrisma, ...hot } : viaPrisma;
}
