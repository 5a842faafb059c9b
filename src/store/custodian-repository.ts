/** Custodians of the quorum (issue 11) over Prisma, both flavours. */
import { PkiError } from '../errors/pki-error.js';
import type { CustodianRepository } from '../quorum/ports.js';
import { rethrowAs, type Db } from './client.js';

/** {@link CustodianRepository} over Prisma. */
export function custodianRepository(db: Db): CustodianRepository {
  return {
    async insert(row) {
      try {
        await db.custodian.create({ data: { ...row, removedAt: null } });
      } catch (err) {
        rethrowAs(err, { conflict: `custodian "${row.name}" already exists` });
      }
    },
    find: (name) => db.custodian.findUnique({ where: { name } }),
    list: () => db.custodian.findMany({ orderBy: [{ createdAt: 'asc' }, { name: 'asc' }] }),
    async remove(name, at) {
      // Only a current custodian gets the time: a second remove keeps the first (the audit log has it).
      const { count } = await db.custodian.updateMany({ where: { name, removedAt: null }, data: { removedAt: at } });
      if (count === 1) return true;
      if (!(await db.custodian.findUnique({ where: { name } }))) throw new PkiError('notFound', `no custodian "${name}"`);
      return false;
    },
  };
}
