/** Key blobs, API tokens and the audit chain. */
import type { AuditRecord, AuditRepository } from '../audit/ports.js';
import type { KeyBlobRepository } from '../keys/ports.js';
import type { ApiTokenRecord, TokenRepository, TokenRole } from '../tokens/ports.js';
import { conflictOr, type Db, type Kind } from './client.js';
import type { SqliteHotPath } from './sqlite-hot-path.js';

export function keyBlobRepository(db: Db): KeyBlobRepository {
  return {
    async insert(blob) {
      try {
        await db.keyBlob.create({ data: blob });
      } catch (err) {
        conflictOr(err, `key "${blob.id}" already exists; keys are never overwritten`);
      }
    },
    find: (id) => db.keyBlob.findUnique({ where: { id } }),
    async setState(id, state) {
      await db.keyBlob.update({ where: { id }, data: { state } });
    },
  };
}

const toToken = (r: Awaited<ReturnType<Db['apiToken']['findUniqueOrThrow']>>): ApiTokenRecord => ({ ...r, role: r.role as TokenRole });

export function tokenRepository(db: Db): TokenRepository {
  return {
    async insert(t) {
      try {
        await db.apiToken.create({ data: t });
      } catch (err) {
        conflictOr(err, 'token already exists');
      }
    },
    findByHash: async (hashHex) => {
      const r = await db.apiToken.findUnique({ where: { hashHex } });
      return r && toToken(r);
    },
    list: async () => (await db.apiToken.findMany({ orderBy: { createdAt: 'asc' } })).map(toToken),
    async revoke(id, at) {
      await db.apiToken.update({ where: { id }, data: { revokedAt: at } });
    },
  };
}

/** Advisory lock key shared by every node appending to the audit chain ("TRELLIS" in ASCII). */
const auditLockKey = 0x5452454c4c4953n;

export function auditRepository(db: Db, kind: Kind, hot?: SqliteHotPath): AuditRepository {
  return {
    async append(drafts, chain) {
      if (drafts.length === 0) return [];
      if (hot) return hot.appendAudit(drafts, chain);
      return db.$transaction(async (tx) => {
        // Serialise appenders: SQLite has one writer; PostgreSQL nodes take a transaction-scoped advisory lock.
        if (kind === 'postgres') await tx.$executeRaw`SELECT pg_advisory_xact_lock(${auditLockKey})`;
        const last = await tx.auditEvent.findFirst({ orderBy: { seq: 'desc' }, select: { seq: true, hash: true } });
        let prevHash = last?.hash ?? '0'.repeat(64);
        let seq = last?.seq ?? 0;
        const rows: AuditRecord[] = drafts.map((d) => {
          const data = JSON.stringify(d.data);
          seq += 1;
          const hash = chain(prevHash, seq, d, data);
          const row = { seq, at: d.at, type: d.type, actor: d.actor, data, prevHash, hash };
          prevHash = hash;
          return row;
        });
        await tx.auditEvent.createMany({ data: rows });
        return rows;
      });
    },
    range: (fromSeq, limit) => db.auditEvent.findMany({ where: { seq: { gte: fromSeq } }, orderBy: { seq: 'asc' }, take: limit }),
    last: () => db.auditEvent.findFirst({ orderBy: { seq: 'desc' } }),
  };
}
