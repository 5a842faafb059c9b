/** ACME accounts (RFC 8555 §7.3): one per account key, found by id (`kid`) or key thumbprint. */
import { isPkiError } from '../errors/pki-error.js';
import type { AcmeAccountRepository } from '../ra/acme/ports.js';
import { toAccount } from './acme-rows.js';
import type { AcmePgHotPath } from './acme-pg.js';
import type { AcmeSqliteHotPath } from './acme-sqlite.js';
import { rethrowAs, type Db } from './client.js';

/**
 * {@link AcmeAccountRepository}: creation and the lookups of every request
 * run on the flavour's hot path (`hot`: acme-sqlite.ts or acme-pg.ts);
 * updates and key rollover, which are rare, go through Prisma.
 */
export function acmeAccountRepository(db: Db, hot: AcmeSqliteHotPath['accounts'] | AcmePgHotPath['accounts']): AcmeAccountRepository {
  return {
    ...hot,
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
}
