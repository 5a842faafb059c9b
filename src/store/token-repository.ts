/** API tokens: only the SHA-256 of each secret is stored. */
import { PkiError } from '../errors/pki-error.js';
import type { ApiTokenRecord, TokenRepository, TokenRole } from '../tokens/ports.js';
import { rethrowAs, type Db } from './client.js';
import { hotPathOf, type ApiTokenRow } from './sqlite-hot-path.js';

type Row = Awaited<ReturnType<Db['apiToken']['findUniqueOrThrow']>>;

/** The `profiles` column: JSON text of an array of profile names, or NULL for "every profile enrollable over the API". */
function profilesOf(r: Row | ApiTokenRow): string[] | null {
  if (r.profiles === null) return null;
  const parsed: unknown = JSON.parse(r.profiles);
  if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string')) throw new Error(`token ${r.id}: stored profiles are not a JSON array of names`);
  return parsed as string[];
}

const toToken = (r: Row | ApiTokenRow): ApiTokenRecord => ({ ...r, role: r.role as TokenRole, profiles: profilesOf(r) });

/** {@link TokenRepository} over Prisma. */
export function tokenRepository(db: Db): TokenRepository {
  return {
    async insert({ profiles, expiresAt, ...t }) {
      try {
        await db.apiToken.create({ data: { ...t, profiles: profiles ? JSON.stringify(profiles) : null, expiresAt: expiresAt ?? null } });
      } catch (err) {
        rethrowAs(err, { conflict: `token "${t.id}" already exists` });
      }
    },
    async findByHash(hashHex) {
      // Every API request runs this: on SQLite through a prepared statement (sqlite-hot-path.ts).
      const hot = hotPathOf(db);
      const r = hot ? await hot.tokenByHash(hashHex) : await db.apiToken.findUnique({ where: { hashHex } });
      return r && toToken(r);
    },
    list: async () => (await db.apiToken.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })).map(toToken),
    async revoke(id, at) {
      // Only a live token gets the time: a second revoke keeps the first (the audit log has it).
      const { count } = await db.apiToken.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: at } });
      const r = await db.apiToken.findUnique({ where: { id } });
      if (!r) throw new PkiError('notFound', `no token "${id}"`);
      return { token: toToken(r), alreadyRevoked: count === 0 };
    },
    async touch(id, at, unlessAfter) {
      await db.apiToken.updateMany({ where: { id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lte: unlessAfter } }] }, data: { lastUsedAt: at } });
    },
  };
}
