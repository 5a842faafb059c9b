import type { OcspResponseRepository } from '../ocsp/ports.js';
import { buf, type Db } from './client.js';

/** Upserts per transaction in putMany: other queries run between them. */
const putChunk = 32;

export function ocspResponseRepository(db: Db): OcspResponseRepository {
  return {
    async get(issuerId, serialHex) {
      const r = await db.ocspResponse.findUnique({ where: { issuerId_serialHex: { issuerId, serialHex } } });
      return r && { ...r, der: buf(r.der) };
    },
    async putMany(responses) {
      // One upsert at a time, in transactions of up to 32: Prisma keeps a compiled plan per shape of a batch
      // ($transaction([...]); up to 1,000), and a batch's shape changes with its size and with which of its values
      // happen to be equal (equal values share a placeholder). Under OCSP load one process held 85 such plans
      // (3,075 compiled INSERTs) and compiled new ones all along; a single upsert is one shape.
      for (let at = 0; at < responses.length; at += putChunk) {
        const chunk = responses.slice(at, at + putChunk);
        await db.$transaction(async (tx) => {
          for (const r of chunk) {
            const data = { der: new Uint8Array(r.der), thisUpdate: r.thisUpdate, nextUpdate: r.nextUpdate };
            await tx.ocspResponse.upsert({ where: { issuerId_serialHex: { issuerId: r.issuerId, serialHex: r.serialHex } }, create: { issuerId: r.issuerId, serialHex: r.serialHex, ...data }, update: data });
          }
        });
      }
    },
    expiring: (before, limit) => db.ocspResponse.findMany({ where: { nextUpdate: { lt: before } }, orderBy: { nextUpdate: 'asc' }, take: limit, select: { issuerId: true, serialHex: true } }),
    async delete(issuerId, serialHex) {
      await db.ocspResponse.deleteMany({ where: { issuerId, serialHex } });
    },
  };
}
