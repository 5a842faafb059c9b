/** External account binding keys (RFC 8555 §7.3.4): created by the operator, bound to one account once. */
import type { AcmeEabKeyRecord, AcmeEabKeyRepository } from '../ra/acme/ports.js';
import { buf, bytes, rethrowAs, type Db } from './client.js';

const toKey = (r: Awaited<ReturnType<Db['acmeEabKey']['findUniqueOrThrow']>>): AcmeEabKeyRecord => ({ ...r, hmacKey: buf(r.hmacKey) });

/** {@link AcmeEabKeyRepository} over Prisma (both flavours; none of it is on the request hot path). */
export function acmeEabKeyRepository(db: Db): AcmeEabKeyRepository {
  return {
    async create(key) {
      try {
        await db.acmeEabKey.create({ data: { keyId: key.keyId, hmacKey: bytes(key.hmacKey), directory: key.directory, createdAt: key.createdAt } });
      } catch (err) {
        rethrowAs(err, { conflict: `EAB key "${key.keyId}" already exists` });
      }
    },
    async find(keyId) {
      const r = await db.acmeEabKey.findUnique({ where: { keyId } });
      return r && toKey(r);
    },
    async bind(keyId, accountId, at) {
      // Conditional on the key still being unbound: two accounts racing for one key, one wins.
      const { count } = await db.acmeEabKey.updateMany({ where: { keyId, boundAccountId: null }, data: { boundAccountId: accountId, boundAt: at } });
      return count === 1;
    },
    list: async () => (await db.acmeEabKey.findMany({ orderBy: [{ createdAt: 'asc' }, { keyId: 'asc' }] })).map(toKey),
  };
}
