/**
 * The hash-chained audit log. Appends are serialised across processes and
 * nodes, so seq has no gaps and each prevHash is the hash before it: SQLite
 * has one writer (an IMMEDIATE transaction on the hot path), PostgreSQL takes
 * a transaction-scoped advisory lock before it reads the last event.
 */
import { genesisHash } from '../audit/audit-log.js';
import type { AuditChain, AuditDraft, AuditRecord, AuditRepository } from '../audit/ports.js';
import type { Db, Prisma } from './client.js';
import type { SqliteHotPath } from './sqlite-hot-path.js';

/** Advisory lock key shared by every node appending to the audit chain ("TRELLIS" in ASCII). */
const auditLockKey = 0x5452454c4c4953n;

/**
 * Appends `drafts` to the chain inside the caller's PostgreSQL transaction:
 * the advisory lock is held until that transaction ends, so the events
 * commit or roll back with the change they record. Take it after the
 * transaction's own row writes: the lock is then held for the append and the
 * commit only, and a transaction waiting for it never holds the lock while
 * it waits for rows.
 */
export async function appendAuditInTx(tx: Prisma.TransactionClient, drafts: AuditDraft[], chain: AuditChain): Promise<AuditRecord[]> {
  if (drafts.length === 0) return [];
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${auditLockKey})`;
  const last = await tx.auditEvent.findFirst({ orderBy: { seq: 'desc' }, select: { seq: true, hash: true } });
  let prevHash = last?.hash ?? genesisHash;
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
}

/** {@link AuditRepository}: the SQLite hot path when given, else Prisma with an advisory lock (PostgreSQL). */
export function auditRepository(db: Db, hot?: SqliteHotPath): AuditRepository {
  return {
    async append(drafts, chain) {
      if (drafts.length === 0) return [];
      if (hot) return hot.appendAudit(drafts, chain);
      return db.$transaction((tx) => appendAuditInTx(tx, drafts, chain));
    },
    // `take`, not `seq < fromSeq + limit`: after a deleted stretch of the chain the
    // next page must start at the next surviving event, so the verifier sees the gap.
    range: (fromSeq, limit) => db.auditEvent.findMany({ where: { seq: { gte: fromSeq } }, orderBy: { seq: 'asc' }, take: limit }),
    last: () => db.auditEvent.findFirst({ orderBy: { seq: 'desc' } }),
  };
}
