/**
 * RFC 9773 (ACME Renewal Information) windows an operator pulled forward,
 * e.g. ahead of a mass revocation: two nullable columns on the certificate.
 * A certificate without them gets the window computed from its validity.
 */
import type { RenewalWindowRepository } from '../ra/acme/ports.js';
import type { Db, Prisma } from './client.js';

/** Serials per UPDATE: well below the bound-parameter limits of both databases. */
const serialChunk = 1_000;

/** {@link RenewalWindowRepository} over Prisma (both flavours). */
export function renewalWindowRepository(db: Db): RenewalWindowRepository {
  return {
    async windowOf(issuerId, serialHex) {
      const r = await db.certificate.findUnique({ where: { issuerId_serialHex: { issuerId, serialHex } }, select: { renewalWindowStart: true, renewalWindowEnd: true } });
      return r?.renewalWindowStart && r.renewalWindowEnd ? { start: r.renewalWindowStart, end: r.renewalWindowEnd } : null;
    },
    async setWindow(filter, window, now = new Date(Date.now())) {
      const where: Prisma.CertificateWhereInput = {
        status: 'valid',
        notAfter: { gt: now },
        ...(filter.issuerId !== undefined ? { issuerId: filter.issuerId } : {}),
        ...(filter.profile !== undefined ? { profile: filter.profile } : {}),
        ...(filter.issuedBefore !== undefined ? { issuedAt: { lt: filter.issuedBefore } } : {}),
      };
      const data = { renewalWindowStart: window.start, renewalWindowEnd: window.end };
      if (filter.serialHexes === undefined) return (await db.certificate.updateMany({ where, data })).count;
      const chunks: string[][] = [];
      for (let i = 0; i < filter.serialHexes.length; i += serialChunk) chunks.push(filter.serialHexes.slice(i, i + serialChunk));
      // One transaction: a long list is set entirely or not at all.
      const results = await db.$transaction(chunks.map((serialHex) => db.certificate.updateMany({ where: { ...where, serialHex: { in: serialHex } }, data })));
      return results.reduce((sum, r) => sum + r.count, 0);
    },
  };
}
