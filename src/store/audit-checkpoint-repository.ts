/**
 * Signed audit checkpoints. A checkpoint is stored only on top of the newest
 * one (its window starts where that one ends), in one conditional statement,
 * so the workers and nodes of an instance, each running a checkpointer, store
 * one checkpoint per window: SQLite has one writer; PostgreSQL takes an
 * advisory lock so that two transactions cannot both see the same newest one.
 */
import type { AuditCheckpointRecord, AuditCheckpointRepository } from '../audit/checkpoint-ports.js';
import { buf, bytes, type Db, type Kind } from './client.js';
import { sqliteDate } from './sqlite-date.js';

/** Advisory lock key of checkpoint writers ("TRLSCKP" in ASCII); the audit chain uses another. */
const checkpointLockKey = 0x54524c53434b50n;

type Row = Omit<AuditCheckpointRecord, 'signature'> & { signature: Uint8Array };
const toRecord = (r: Row): AuditCheckpointRecord => ({ ...r, signature: buf(r.signature) });

/** {@link AuditCheckpointRepository} for either database flavour. */
export function auditCheckpointRepository(db: Db, kind: Kind): AuditCheckpointRepository {
  const newest = () => db.auditCheckpoint.findFirst({ orderBy: [{ eventCount: 'desc' }, { id: 'desc' }] });
  return {
    async addAfter(baseEvents, cp) {
      const sig = bytes(cp.signature);
      let inserted: number;
      if (kind === 'sqlite') {
        inserted = await db.$executeRaw`INSERT INTO "AuditCheckpoint" ("eventCount", "headHash", "at", "body", "signature", "signerSerialHex")
          SELECT ${cp.eventCount}, ${cp.headHash}, ${sqliteDate(cp.at)}, ${cp.body}, ${sig}, ${cp.signerSerialHex}
          WHERE COALESCE((SELECT MAX("eventCount") FROM "AuditCheckpoint"), 0) = ${baseEvents}`;
      } else {
        inserted = await db.$transaction(async (tx) => {
          await tx.$executeRaw`SELECT pg_advisory_xact_lock(${checkpointLockKey})`;
          return tx.$executeRaw`INSERT INTO "AuditCheckpoint" ("eventCount", "headHash", "at", "body", "signature", "signerSerialHex")
            SELECT ${cp.eventCount}, ${cp.headHash}, ${cp.at.toISOString()}::timestamp(3), ${cp.body}, ${sig}, ${cp.signerSerialHex}
            WHERE COALESCE((SELECT MAX("eventCount") FROM "AuditCheckpoint"), 0) = ${baseEvents}`;
        });
      }
      if (inserted !== 1) return null;
      const r = await db.auditCheckpoint.findFirst({ where: { eventCount: cp.eventCount, headHash: cp.headHash, body: cp.body }, orderBy: { id: 'desc' } });
      return r && toRecord(r);
    },
    async latest() {
      const r = await newest();
      return r && toRecord(r);
    },
    async page(after, limit) {
      const rows = await db.auditCheckpoint.findMany({
        where: after ? { OR: [{ eventCount: { gt: after.eventCount } }, { eventCount: after.eventCount, id: { gt: after.id } }] } : {},
        orderBy: [{ eventCount: 'asc' }, { id: 'asc' }],
        take: limit,
      });
      return rows.map(toRecord);
    },
    async findById(id) {
      const r = await db.auditCheckpoint.findUnique({ where: { id } });
      return r && toRecord(r);
    },
  };
}
