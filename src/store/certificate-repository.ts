import type { CertificateRecord, CertificateRepository, CertificateStatus, RequestedVia } from '../ca/ports.js';
import { buf, bufOrNull, conflictOr, Prisma, type Db, type Kind } from './client.js';
import type { SqliteHotPath } from './sqlite-hot-path.js';
import { crlReasons } from '../pki/crl-reason.js';

type Row = Awaited<ReturnType<Db['certificate']['findUniqueOrThrow']>>;
const toRecord = (r: Row): CertificateRecord => ({
  id: r.id,
  issuerId: r.issuerId,
  serialHex: r.serialHex,
  profile: r.profile,
  subject: r.subject,
  sans: r.sans,
  notBefore: r.notBefore,
  notAfter: r.notAfter,
  status: r.status as CertificateStatus,
  lintDer: buf(r.lintDer ?? new Uint8Array()),
  der: bufOrNull(r.der),
  crlShard: r.crlShard,
  requestedVia: r.requestedVia as RequestedVia,
  requestedBy: r.requestedBy,
  keyId: r.keyId,
  revokedAt: r.revokedAt,
  revocationReason: r.revocationReason,
  invalidityDate: r.invalidityDate,
  revokedBy: r.revokedBy,
  holdReleasedAt: r.holdReleasedAt,
  createdAt: r.createdAt,
  issuedAt: r.issuedAt,
});

const byIssuer = <T extends { issuerId: string }>(items: T[]) => {
  const m = new Map<string, T[]>();
  for (const i of items) m.set(i.issuerId, [...(m.get(i.issuerId) ?? []), i]);
  return m;
};

export function certificateRepository(db: Db, kind: Kind, hot?: SqliteHotPath): CertificateRepository {
  // PostgreSQL needs the parameter types spelled out inside CASE.
  const bytea = kind === 'postgres' ? Prisma.raw('::bytea') : Prisma.empty;
  const text = kind === 'postgres' ? Prisma.raw('::text') : Prisma.empty;
  return {
    async insertIntents(intents) {
      if (intents.length === 0) return;
      if (hot) return hot.insertIntents(intents);
      try {
        // One INSERT statement: all rows or none.
        await db.certificate.createMany({
          data: intents.map((i) => ({ ...i, keyId: i.keyId ?? null, lintDer: new Uint8Array(i.lintDer), status: 'pending' })),
        });
      } catch (err) {
        conflictOr(err, 'serial number already used by this issuer');
      }
    },

    async completeIssued(items) {
      if (items.length === 0) return;
      if (hot) return hot.completeIssued(items);
      const issuedAt = items[0]!.issuedAt;
      for (const [issuerId, group] of byIssuer(items)) {
        // One UPDATE per issuer per batch: the per-row cost of Prisma updates would dominate issuance.
        const cases = Prisma.join(group.map((g) => Prisma.sql`WHEN ${g.serialHex}${text} THEN ${new Uint8Array(g.der)}${bytea}`), ' ');
        const serials = Prisma.join(group.map((g) => g.serialHex));
        const n = await db.$executeRaw`UPDATE "Certificate" SET "status" = 'valid', "issuedAt" = ${issuedAt}, "der" = CASE "serialHex" ${cases} END
          WHERE "issuerId" = ${issuerId} AND "status" = 'pending' AND "serialHex" IN (${serials})`;
        if (n !== group.length) throw new Error(`completeIssued updated ${n} of ${group.length} pending certificates`);
      }
    },

    async markFailed(items) {
      for (const [issuerId, group] of byIssuer(items)) {
        await db.certificate.updateMany({ where: { issuerId, status: 'pending', serialHex: { in: group.map((g) => g.serialHex) } }, data: { status: 'failed' } });
      }
    },

    findBySerial: async (issuerId, serialHex) => {
      const r = await db.certificate.findUnique({ where: { issuerId_serialHex: { issuerId, serialHex } } });
      return r && toRecord(r);
    },
    findBySerialAnyIssuer: async (serialHex) => (await db.certificate.findMany({ where: { serialHex } })).map(toRecord),
    count: (filter = {}) => db.certificate.count({ where: { ...(filter.issuerId ? { issuerId: filter.issuerId } : {}), ...(filter.status ? { status: filter.status } : {}) } }),

    async revoke(issuerId, serialHex, r) {
      // One conditional UPDATE: two concurrent revocations cannot both succeed.
      const { count } = await db.certificate.updateMany({
        where: { issuerId, serialHex, OR: [{ status: 'valid' }, { status: 'revoked', revocationReason: crlReasons.certificateHold }] },
        data: { status: 'revoked', revocationReason: r.reason, revokedAt: r.revokedAt, invalidityDate: r.invalidityDate, revokedBy: r.revokedBy, holdReleasedAt: null },
      });
      if (count === 1) return 'revoked';
      const existing = await db.certificate.findUnique({ where: { issuerId_serialHex: { issuerId, serialHex } }, select: { status: true } });
      return existing && existing.status === 'revoked' ? 'alreadyRevoked' : 'notFound';
    },

    async releaseHold(issuerId, serialHex, at) {
      const { count } = await db.certificate.updateMany({
        where: { issuerId, serialHex, status: 'revoked', revocationReason: crlReasons.certificateHold },
        data: { status: 'valid', holdReleasedAt: at, revokedAt: null, revocationReason: null, invalidityDate: null },
      });
      if (count === 1) return 'released';
      return (await db.certificate.count({ where: { issuerId, serialHex } })) ? 'notOnHold' : 'notFound';
    },

    async *revokedEntries(issuerId, shard, opts) {
      if (hot) {
        yield* hot.revokedEntries(issuerId, shard, opts.notAfterAfter, opts.pageSize ?? 10_000);
        return;
      }
      let after = '';
      for (;;) {
        const rows = await db.certificate.findMany({
          where: { issuerId, status: 'revoked', notAfter: { gt: opts.notAfterAfter }, serialHex: { gt: after }, ...(shard === null ? {} : { crlShard: shard }) },
          orderBy: { serialHex: 'asc' },
          take: opts.pageSize ?? 10_000,
          select: { serialHex: true, revokedAt: true, revocationReason: true, invalidityDate: true },
        });
        if (rows.length === 0) return;
        yield rows.map((x) => ({ serialHex: x.serialHex, revokedAt: x.revokedAt!, reason: x.revocationReason ?? 0, invalidityDate: x.invalidityDate }));
        after = rows[rows.length - 1]!.serialHex;
      }
    },

    async changedSince(issuerId, shard, since) {
      const scope = { issuerId, ...(shard === null ? {} : { crlShard: shard }) };
      const [revoked, released] = await Promise.all([
        db.certificate.findMany({ where: { ...scope, status: 'revoked', revokedAt: { gt: since } }, orderBy: { serialHex: 'asc' }, select: { serialHex: true, revokedAt: true, revocationReason: true, invalidityDate: true } }),
        db.certificate.findMany({ where: { ...scope, status: 'valid', holdReleasedAt: { gt: since } }, orderBy: { serialHex: 'asc' }, select: { serialHex: true } }),
      ]);
      return {
        revoked: revoked.map((x) => ({ serialHex: x.serialHex, revokedAt: x.revokedAt!, reason: x.revocationReason ?? 0, invalidityDate: x.invalidityDate })),
        released: released.map((x) => x.serialHex),
      };
    },

    async statusChangedSince(since, limit) {
      const rows = await db.certificate.findMany({
        where: { OR: [{ revokedAt: { gt: since } }, { holdReleasedAt: { gt: since } }] },
        select: { issuerId: true, serialHex: true, revokedAt: true, holdReleasedAt: true },
        take: limit,
      });
      return rows.map((r) => ({ issuerId: r.issuerId, serialHex: r.serialHex, at: [r.revokedAt, r.holdReleasedAt].filter((d): d is Date => !!d && d > since).sort((a, b) => b.getTime() - a.getTime())[0]! }));
    },

    async statusOf(issuerId, serialHex) {
      if (hot) return hot.statusOf(issuerId, serialHex);
      const r = await db.certificate.findUnique({ where: { issuerId_serialHex: { issuerId, serialHex } }, select: { status: true, revokedAt: true, revocationReason: true, notAfter: true } });
      return r && { ...r, status: r.status as CertificateStatus };
    },
  };
}
