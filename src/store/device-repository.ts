/**
 * The device registry (issue 10) over Prisma, both flavours. `insertMany`
 * takes a factory list (100,000 devices) in one transaction: the ids that
 * already exist are looked up first (so the conflict names them), then the
 * rows go in. Prisma's createMany took 31 s (SQLite) and 62 s (PostgreSQL)
 * for 100,000 devices, so: on PostgreSQL, INSERT … SELECT FROM unnest of one
 * array per column, {@link pgChunk} rows a statement; on SQLite, one
 * IMMEDIATE transaction of prepared statements (device-sqlite.ts, which also
 * takes the enrollment path: find, beginEnrollment, endEnrollment).
 */
import { crlReasons } from '../pki/crl-reason.js';
import { PkiError } from '../errors/pki-error.js';
import type { DeviceRepository, ManufacturerCaRecord, ManufacturerCaRepository, NewDevice } from '../ra/devices/ports.js';
import { buf, bytes, rethrowAs, type Db } from './client.js';
import { someIds, sqliteDevices, toDevice, type SqliteDeviceConnection } from './device-sqlite.js';

/** Rows per INSERT … SELECT FROM unnest(…) on PostgreSQL. */
const pgChunk = 10_000;
/** Ids per `IN (…)` lookup. */
const lookupChunk = 5000;
/** A factory list is one transaction; Prisma's default of 5 s is too short for the largest. */
const bulkTimeoutMs = 10 * 60_000;

/** A certificate issued to a device that is still valid (retiring revokes these). */
export interface DeviceCertificateRef {
  issuerId: string;
  serialHex: string;
}

/** {@link DeviceRepository} plus what retiring a device needs from the certificates. */
export interface DeviceStoreRepository extends DeviceRepository {
  /** The device's certificates with status `valid` (issuer, serial), oldest first. */
  validCertificatesOf(deviceId: string): Promise<DeviceCertificateRef[]>;
  /** The device's certificates on hold (certificateHold), oldest first; only those held by `revokedBy` when given. */
  heldCertificatesOf(deviceId: string, revokedBy?: string): Promise<DeviceCertificateRef[]>;
  /** Which of `ids` are registered (any order). */
  existing(ids: readonly string[]): Promise<string[]>;
  /** Whether the device was ever issued a certificate (valid or revoked, expired or not). */
  everIssued(deviceId: string): Promise<boolean>;
}

const rowOf = (d: NewDevice, at: Date) => ({
  id: d.id,
  status: d.status,
  profile: d.profile,
  issuerId: d.issuerId,
  reprovision: d.reprovision,
  attributes: JSON.stringify(d.attributes),
  secretHash: d.secretHash,
  eabKeyId: d.eabKeyId,
  createdAt: at,
  updatedAt: at,
});

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** {@link DeviceRepository} over Prisma; `sqlite` (SQLite stores) takes the bulk insert. */
export function deviceRepository(db: Db, sqlite?: SqliteDeviceConnection): DeviceStoreRepository {
  const fast = sqlite && sqliteDevices(sqlite);
  return {
    async insert(device, at) {
      try {
        await db.device.create({ data: rowOf(device, at) });
      } catch (err) {
        rethrowAs(err, { conflict: `device "${device.id}" is already registered` });
      }
    },
    async insertMany(devices, at) {
      if (devices.length === 0) return;
      const seen = new Set<string>();
      const repeated = devices.filter((d) => (seen.has(d.id) ? true : (seen.add(d.id), false))).map((d) => d.id);
      if (repeated.length > 0) throw new PkiError('conflict', `device ids repeated in the list: ${someIds(repeated)}`);
      if (fast) return fast.insertMany(devices, at);
      try {
        await db.$transaction(
          async (tx) => {
            // PostgreSQL: unnest of one array per column, so a statement carries 10 parameters whatever its rows.
            const existing: string[] = [];
            for (const ids of chunks([...seen], lookupChunk)) {
              existing.push(...(await tx.$queryRawUnsafe<{ id: string }[]>('SELECT "id" FROM "Device" WHERE "id" = ANY($1::text[])', ids)).map((r) => r.id));
            }
            if (existing.length > 0) throw new PkiError('conflict', `devices already registered: ${someIds(existing.sort())}`);
            const when = at.toISOString().replace('Z', '');
            for (const part of chunks(devices, pgChunk)) {
              const col = <K extends keyof NewDevice>(k: K) => part.map((d) => d[k]);
              await tx.$executeRawUnsafe(
                `INSERT INTO "Device" ("id", "status", "profile", "issuerId", "reprovision", "attributes", "secretHash", "eabKeyId", "createdAt", "updatedAt")
                 SELECT u.*, $9::timestamp(3), $9::timestamp(3)
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS u`,
                col('id'),
                col('status'),
                col('profile'),
                col('issuerId'),
                col('reprovision'),
                part.map((d) => JSON.stringify(d.attributes)),
                col('secretHash'),
                col('eabKeyId'),
                when,
              );
            }
          },
          { timeout: bulkTimeoutMs, maxWait: bulkTimeoutMs },
        );
      } catch (err) {
        rethrowAs(err, { conflict: 'some of these devices were registered meanwhile' });
      }
    },
    async find(id) {
      if (fast) return fast.find(id);
      const r = await db.device.findUnique({ where: { id } });
      return r && toDevice(r);
    },
    async list({ after, limit, status }) {
      const rows = await db.device.findMany({
        where: { ...(after !== undefined ? { id: { gt: after } } : {}), ...(status ? { status } : {}) },
        orderBy: { id: 'asc' },
        take: limit,
      });
      return rows.map(toDevice);
    },
    async setStatus(id, from, to, at) {
      const { count } = await db.device.updateMany({ where: { id, status: { in: [...from] } }, data: { status: to, updatedAt: at } });
      return count === 1;
    },
    async beginEnrollment(id, lease) {
      if (fast) return fast.beginEnrollment(id, lease);
      const { count } = await db.device.updateMany({
        where: { id, OR: [{ enrollingUntil: null }, { enrollingUntil: { lte: lease.at } }], ...(lease.secretHash !== undefined ? { secretHash: lease.secretHash } : {}) },
        data: { enrollingUntil: lease.until, updatedAt: lease.at, ...(lease.secretHash !== undefined ? { secretHash: null } : {}) },
      });
      const r = await db.device.findUnique({ where: { id } });
      if (!r) return 'notFound';
      if (count === 1) return toDevice(r);
      return lease.secretHash !== undefined && r.secretHash !== lease.secretHash ? 'badSecret' : 'busy';
    },
    async endEnrollment(id, lease, end) {
      if (fast) return fast.endEnrollment(id, lease, end);
      await db.$transaction([
        db.device.updateMany({ where: { id, enrollingUntil: lease.until }, data: { enrollingUntil: null, updatedAt: end.at } }),
        ...(end.issued ? [db.device.updateMany({ where: { id, status: 'registered' }, data: { status: 'active', updatedAt: end.at } })] : []),
        ...(!end.issued && end.restoreSecret !== undefined ? [db.device.updateMany({ where: { id, secretHash: null }, data: { secretHash: end.restoreSecret, updatedAt: end.at } })] : []),
      ]);
    },
    async setEnrollment(id, profile, issuerId, at) {
      const { count } = await db.device.updateMany({ where: { id }, data: { profile, issuerId, updatedAt: at } });
      if (count === 0) throw new PkiError('notFound', `no device "${id}"`);
    },
    async setEabKey(id, eabKeyId, at) {
      const { count } = await db.device.updateMany({ where: { id }, data: { eabKeyId, updatedAt: at } });
      if (count === 0) throw new PkiError('notFound', `no device "${id}"`);
    },
    count: (status) => db.device.count({ where: status ? { status } : {} }),
    async validCertificatesOf(deviceId) {
      return db.certificate.findMany({ where: { deviceId, status: 'valid' }, select: { issuerId: true, serialHex: true }, orderBy: { id: 'asc' } });
    },
    async heldCertificatesOf(deviceId, revokedBy) {
      return db.certificate.findMany({
        where: { deviceId, status: 'revoked', revocationReason: crlReasons.certificateHold, ...(revokedBy !== undefined ? { revokedBy } : {}) },
        select: { issuerId: true, serialHex: true },
        orderBy: { id: 'asc' },
      });
    },
    async existing(ids) {
      const found: string[] = [];
      for (const part of chunks(ids, lookupChunk)) found.push(...(await db.device.findMany({ where: { id: { in: part } }, select: { id: true } })).map((r) => r.id));
      return found;
    },
    async everIssued(deviceId) {
      return (await db.certificate.findFirst({ where: { deviceId, status: { in: ['valid', 'revoked'] } }, select: { id: true } })) !== null;
    },
  };
}

/** {@link ManufacturerCaRepository} over Prisma. */
export function manufacturerCaRepository(db: Db): ManufacturerCaRepository {
  return {
    async insert(ca, at) {
      try {
        await db.manufacturerCa.create({ data: { ...ca, certDer: bytes(ca.certDer), createdAt: at } });
      } catch (err) {
        rethrowAs(err, { conflict: `manufacturer CA "${ca.name}" (or its certificate, SHA-256 ${ca.sha256}) is already trusted` });
      }
    },
    list: async (): Promise<ManufacturerCaRecord[]> =>
      (await db.manufacturerCa.findMany({ orderBy: [{ createdAt: 'asc' }, { name: 'asc' }] })).map((r) => ({ ...r, certDer: buf(r.certDer) })),
  };
}
