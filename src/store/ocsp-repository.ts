import type { OcspResponseRepository } from '../ocsp/ports.js';
import { buf, type Db } from './client.js';

export function ocspResponseRepository(db: Db): OcspResponseRepository {
  return {
    async get(issuerId, serialHex) {
      const r = await db.ocspResponse.findUnique({ where: { issuerId_serialHex: { issuerId, serialHex } } });
      return r && { ...r, der: buf(r.der) };
    },
    async putMany(responses) {
      if (responses.length === 0) return;
      await db.$transaction(
        responses.map((r) => {
          const data = { der: new Uint8Array(r.der), thisUpdate: r.thisUpdate, nextUpdate: r.nextUpdate };
          return db.ocspResponse.upsert({ where: { issuerId_serialHex: { issuerId: r.issuerId, serialHex: r.serialHex } }, create: { issuerId: r.issuerId, serialHex: r.serialHex, ...data }, update: data });
        }),
      );
    },
    expiring: (before, limit) => db.ocspResponse.findMany({ where: { nextUpdate: { lt: before } }, orderBy: { nextUpdate: 'asc' }, take: limit, select: { issuerId: true, serialHex: true } }),
    async delete(issuerId, serialHex) {
      await db.ocspResponse.deleteMany({ where: { issuerId, serialHex } });
    },
  };
}
