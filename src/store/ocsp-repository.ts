import type { OcspResponseRepository } from '../ocsp/ports.js';
import { buf, type Db } from './client.js';

/** Upserts per transaction in putMany. */
const putBatch = 32;

export function ocspResponseRepository(db: Db): OcspResponseRepository {
  return {
    async get(issuerId, serialHex) {
      const r = await db.ocspResponse.findUnique({ where: { issuerId_serialHex: { issuerId, serialHex } } });
      return r && { ...r, der: buf(r.der) };
    },
    async putMany(responses) {
      // Prisma keeps a compiled plan per batch shape (up to 1,000 of them), and a batch of n upserts is a shape of
      // its own whose plan grows with n: batches of every size from 1 to a few hundred held ~40 MB per process under
      // OCSP load. Batches of 32, then the rest in powers of two, are at most 6 shapes.
      for (let at = 0; at < responses.length; ) {
        const left = responses.length - at;
        const n = left >= putBatch ? putBatch : 2 ** Math.floor(Math.log2(left));
        const chunk = responses.slice(at, at + n);
        at += n;
        await db.$transaction(
          chunk.map((r) => {
            const data = { der: new Uint8Array(r.der), thisUpdate: r.thisUpdate, nextUpdate: r.nextUpdate };
            return db.ocspResponse.upsert({ where: { issuerId_serialHex: { issuerId: r.issuerId, serialHex: r.serialHex } }, create: { issuerId: r.issuerId, serialHex: r.serialHex, ...data }, update: data });
          }),
        );
      }
    },
    expiring: (before, limit) => db.ocspResponse.findMany({ where: { nextUpdate: { lt: before } }, orderBy: { nextUpdate: 'asc' }, take: limit, select: { issuerId: true, serialHex: true } }),
    async delete(issuerId, serialHex) {
      await db.ocspResponse.deleteMany({ where: { issuerId, serialHex } });
    },
  };
}
