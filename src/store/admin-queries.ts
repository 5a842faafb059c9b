/**
 * Read queries of the admin API (/api/v1, issue 12): certificate lists with
 * filters and keyset pagination, the latest CRLs, ACME accounts and orders,
 * audit events, issuance per day. Each list is ordered by an indexed key and
 * continues after the last row shown (never OFFSET), so a page costs the same
 * on the last page of ten million rows as on the first, and rows inserted
 * meanwhile never shift a page.
 */
import type { CertificateRecord, CertificateStatus, RequestedVia } from '../ca/ports.js';
import type { AuditRecord } from '../audit/ports.js';
import type { AcmeAccountRecord, AcmeOrderRecord, StoredOrderStatus } from '../ra/acme/ports.js';
import { toAccount, toOrder } from './acme-rows.js';
import { bufOrNull, type Db, type Kind, type Prisma } from './client.js';
import { sqliteDate } from './sqlite-date.js';

/** Certificate status as the API shows it: `expired` is a valid row past notAfter. */
export type ShownCertificateStatus = Exclude<CertificateStatus, 'valid'> | 'valid' | 'expired';

/** Filters of {@link AdminQueries.certificates}. */
export interface CertificateFilter {
  issuerId?: string;
  profile?: string;
  status?: 'valid' | 'revoked' | 'expired' | 'pending' | 'failed';
  /** notAfter strictly after / before. */
  expiresAfter?: Date;
  expiresBefore?: Date;
  /** Serial prefix (lowercase hex), or a substring of the subject or of a SAN. */
  q?: string;
  /** Rows with an id below this one (the cursor). */
  beforeId?: number;
  limit: number;
  /** What `valid` and `expired` are measured against. */
  now: Date;
}

/** A certificate row without its key material or lint TBS. */
export type CertificateListRow = Pick<
  CertificateRecord,
  'id' | 'issuerId' | 'serialHex' | 'profile' | 'subject' | 'sans' | 'notBefore' | 'notAfter' | 'status' | 'revokedAt' | 'revocationReason' | 'requestedVia' | 'requestedBy' | 'issuedAt'
> & { deviceId: string | null };

/** The latest CRL of one CA and scope, without its DER. */
export interface CrlHead {
  caId: string;
  scope: string;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
}

/** Filters of {@link AdminQueries.auditEvents}. */
export interface AuditFilter {
  type?: string;
  actor?: string;
  since?: Date;
  until?: Date;
  /** Events after this seq (the cursor). */
  afterSeq?: number;
  limit: number;
}

/** Read queries of the admin API. Implemented here, over either database flavour. */
export interface AdminQueries {
  /** Newest first (id descending). */
  certificates(f: CertificateFilter): Promise<CertificateListRow[]>;
  /** Rows with this serial (one CA, or up to two of any CA, which is enough to tell "ambiguous"). */
  certificatesBySerial(serialHex: string, issuerId?: string): Promise<(CertificateListRow & { der: Buffer | null })[]>;
  /** The newest CRL of every (CA, scope). */
  latestCrls(): Promise<CrlHead[]>;
  /** ACME accounts by id. */
  acmeAccounts(f: { afterId?: string; limit: number }): Promise<AcmeAccountRecord[]>;
  /** ACME orders, newest first (createdAt, then id, descending). */
  acmeOrders(f: { status?: StoredOrderStatus; accountId?: string; before?: { createdAt: Date; id: string }; limit: number }): Promise<AcmeOrderRecord[]>;
  /** Audit events in seq order. */
  auditEvents(f: AuditFilter): Promise<AuditRecord[]>;
  /** Certificates issued and revoked per UTC day (YYYY-MM-DD) from `since` on; days without any are absent. */
  issuancePerDay(since: Date): Promise<{ day: string; issued: number; revoked: number }[]>;
}

const listColumns = {
  id: true,
  issuerId: true,
  serialHex: true,
  profile: true,
  subject: true,
  sans: true,
  notBefore: true,
  notAfter: true,
  status: true,
  revokedAt: true,
  revocationReason: true,
  requestedVia: true,
  requestedBy: true,
  deviceId: true,
  issuedAt: true,
} as const satisfies Prisma.CertificateSelect;

type ListRow = Prisma.CertificateGetPayload<{ select: typeof listColumns }>;
const toListRow = (r: ListRow): CertificateListRow => ({ ...r, status: r.status as CertificateStatus, requestedVia: r.requestedVia as RequestedVia });

/** The next string after every string starting with `prefix` (for an index range instead of LIKE). */
const prefixEnd = (prefix: string): string => prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);

/** {@link AdminQueries} over Prisma. */
export function adminQueries(db: Db, kind: Kind): AdminQueries {
  // PostgreSQL LIKE is case-sensitive; SQLite's is not for ASCII. ILIKE makes both search alike.
  const contains = (s: string) => (kind === 'postgres' ? { contains: s, mode: 'insensitive' as const } : { contains: s });
  return {
    async certificates(f) {
      const and: Prisma.CertificateWhereInput[] = [];
      if (f.issuerId) and.push({ issuerId: f.issuerId });
      if (f.profile) and.push({ profile: f.profile });
      switch (f.status) {
        case 'valid':
          and.push({ status: 'valid', notAfter: { gt: f.now } });
          break;
        case 'expired':
          and.push({ status: 'valid', notAfter: { lte: f.now } });
          break;
        case 'revoked':
        case 'pending':
        case 'failed':
          and.push({ status: f.status });
          break;
        case undefined:
          break;
      }
      if (f.expiresAfter) and.push({ notAfter: { gt: f.expiresAfter } });
      if (f.expiresBefore) and.push({ notAfter: { lt: f.expiresBefore } });
      if (f.q) {
        const or: Prisma.CertificateWhereInput[] = [{ subject: contains(f.q) }, { sans: contains(f.q) }];
        const hex = f.q.toLowerCase();
        // Serials are stored as lowercase hex: a hex query is also a serial prefix, as an index range.
        if (/^[0-9a-f]{1,40}$/.test(hex)) or.unshift({ serialHex: { gte: hex, lt: prefixEnd(hex) } });
        and.push({ OR: or });
      }
      const page = async (beforeId: number | undefined, take: number) =>
        (await db.certificate.findMany({ where: { AND: [...and, ...(beforeId !== undefined ? [{ id: { lt: beforeId } }] : [])] }, orderBy: { id: 'desc' }, take, select: listColumns })).map(toListRow);
      const q = f.q?.toLowerCase();
      // LIKE reads "_" as any one character (Prisma does not escape it): the database then returns a
      // superset, and the rows that really contain q are kept, reading on until the page is full.
      if (!q?.includes('_')) return page(f.beforeId, f.limit);
      const holds = (r: CertificateListRow) => r.serialHex.startsWith(q) || r.subject.toLowerCase().includes(q) || r.sans.toLowerCase().includes(q);
      const out: CertificateListRow[] = [];
      for (let before = f.beforeId; ; ) {
        const rows = await page(before, f.limit);
        for (const r of rows) if (holds(r) && out.push(r) === f.limit) return out;
        if (rows.length < f.limit) return out;
        before = rows.at(-1)!.id;
      }
    },
    async certificatesBySerial(serialHex, issuerId) {
      // Through the unique (issuerId, serialHex) index, once per CA (a handful): serials are random, and an
      // index of their own would be one more random-order B-tree insert on every issuance.
      const issuers = issuerId !== undefined ? [issuerId] : (await db.certificateAuthority.findMany({ select: { id: true } })).map((c) => c.id);
      const rows = await db.certificate.findMany({
        where: { serialHex, issuerId: { in: issuers } },
        orderBy: { id: 'asc' },
        take: 2,
        select: { ...listColumns, der: true },
      });
      return rows.map(({ der, ...r }) => ({ ...toListRow(r), der: bufOrNull(der) }));
    },
    async latestCrls() {
      const groups = await db.crl.groupBy({ by: ['caId', 'scope'], _max: { crlNumber: true }, orderBy: [{ caId: 'asc' }, { scope: 'asc' }] });
      const out: CrlHead[] = [];
      for (const g of groups) {
        const r = await db.crl.findUnique({
          where: { caId_scope_crlNumber: { caId: g.caId, scope: g.scope, crlNumber: g._max.crlNumber! } },
          select: { caId: true, scope: true, crlNumber: true, thisUpdate: true, nextUpdate: true, entries: true },
        });
        if (r) out.push(r);
      }
      return out;
    },
    async acmeAccounts({ afterId, limit }) {
      const rows = await db.acmeAccount.findMany({ where: afterId !== undefined ? { id: { gt: afterId } } : {}, orderBy: { id: 'asc' }, take: limit });
      return rows.map(toAccount);
    },
    async acmeOrders({ status, accountId, before, limit }) {
      const where: Prisma.AcmeOrderWhereInput = {
        ...(status ? { status } : {}),
        ...(accountId ? { accountId } : {}),
        ...(before ? { OR: [{ createdAt: { lt: before.createdAt } }, { createdAt: before.createdAt, id: { lt: before.id } }] } : {}),
      };
      const rows = await db.acmeOrder.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: limit });
      return rows.map(toOrder);
    },
    async auditEvents({ type, actor, since, until, afterSeq, limit }) {
      const at = since || until ? { ...(since ? { gte: since } : {}), ...(until ? { lt: until } : {}) } : undefined;
      return db.auditEvent.findMany({
        where: { ...(type ? { type } : {}), ...(actor ? { actor } : {}), ...(at ? { at } : {}), ...(afterSeq !== undefined ? { seq: { gt: afterSeq } } : {}) },
        orderBy: { seq: 'asc' },
        take: limit,
      });
    },
    async issuancePerDay(since) {
      // One grouped pass over each time index (Certificate_issuedAt_idx, Certificate_revokedAt_idx).
      // SQLite keeps DateTime as ISO text (sqlite-hot-path.ts), so its first ten characters are the UTC day.
      const perDay = async (column: 'issuedAt' | 'revokedAt'): Promise<Map<string, number>> => {
        const rows =
          kind === 'sqlite'
            ? await db.$queryRawUnsafe<{ day: string; n: number | bigint }[]>(`SELECT substr("${column}", 1, 10) AS day, COUNT(*) AS n FROM "Certificate" WHERE "${column}" >= ? GROUP BY day`, sqliteDate(since))
            : await db.$queryRawUnsafe<{ day: string; n: number | bigint }[]>(`SELECT to_char("${column}", 'YYYY-MM-DD') AS day, COUNT(*) AS n FROM "Certificate" WHERE "${column}" >= $1 GROUP BY day`, since);
        return new Map(rows.map((r) => [r.day, Number(r.n)]));
      };
      const issued = await perDay('issuedAt');
      const revoked = await perDay('revokedAt');
      const days = [...new Set([...issued.keys(), ...revoked.keys()])].sort();
      return days.map((day) => ({ day, issued: issued.get(day) ?? 0, revoked: revoked.get(day) ?? 0 }));
    },
  };
}
