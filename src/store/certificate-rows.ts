/**
 * Certificate rows to records, one mapping for both ways a row is read:
 * Prisma (Date objects, Uint8Array) and the SQLite hot path's prepared
 * statements (Prisma's ISO text for DateTime, Buffer for Bytes).
 */
import type { CertificateRecord, CertificateStatus, RequestedVia } from '../ca/ports.js';
import { buf, bufOrNull, type Db } from './client.js';
import { sqliteDateOrNull } from './sqlite-date.js';

type Row = Awaited<ReturnType<Db['certificate']['findUniqueOrThrow']>>;

/** A Prisma Certificate row as a {@link CertificateRecord}. */
export const toRecord = (r: Row): CertificateRecord => ({
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
  deviceId: r.deviceId,
  revokedAt: r.revokedAt,
  revocationReason: r.revocationReason,
  invalidityDate: r.invalidityDate,
  revokedBy: r.revokedBy,
  holdReleasedAt: r.holdReleasedAt,
  createdAt: r.createdAt,
  issuedAt: r.issuedAt,
});

const dateColumns = ['notBefore', 'notAfter', 'revokedAt', 'invalidityDate', 'holdReleasedAt', 'createdAt', 'issuedAt'] as const;
type SqliteRow = Omit<Row, (typeof dateColumns)[number]> & Record<(typeof dateColumns)[number], string | null>;

/** A row as better-sqlite3 returns it (`SELECT *`) as a {@link CertificateRecord}. */
export function fromSqliteRow(r: SqliteRow): CertificateRecord {
  const withDates = { ...r } as unknown as Record<string, unknown>;
  for (const c of dateColumns) withDates[c] = sqliteDateOrNull(r[c]);
  return toRecord(withDates as Row);
}
