/** API tokens: only the SHA-256 of each secret is stored. */
import type { ApiTokenRecord, TokenRepository, TokenRole } from '../tokens/ports.js';
import { rethrowAs, type Db } from './client.js';

const toToken = (r: Awaited<ReturnType<Db['apiToken']['findUniqueOrThrow']>>): ApiTokenRecord => ({ ...r, role: r.role as TokenRole });

/** {@link TokenRepository} over Prisma. */
export function tokenRepository(db: Db): TokenRepository {
  return {
    async insert(t) {
      try {
        await db.apiToken.create({ data: t });
      } catch (err) {
        rethrowAs(err, { conflict: `token "${t.id}" already exists` });
      }
    },
    async findByHash(hashHex) {
      const r = await db.apiToken.findUnique({ where: { hashHex } });
      return r && toToken(r);
    },
    list: async () => (await db.apiToken.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })).map(toToken),
    async revoke(id, at) {
      try {
        await db.apiToken.update({ where: { id }, data: { revokedAt: at } });
      } catch (err) {
        rethrowAs(err, { notFound: `no token "${id}"` });
      }
    },
  };
}
