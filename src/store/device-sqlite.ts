/**
 * The device registry's enrollment path on SQLite: better-sqlite3 prepared
 * statements on the store's raw connection instead of Prisma (Prisma cost
 * about 0.4 ms of CPU per query in bench:enroll's profile, five queries per
 * enrollment), plus the factory-list bulk insert. Writes run in IMMEDIATE
 * transactions under the queue every write of the store takes, and resolve
 * once on disk (wal-sync.ts), as the certificate hot path does.
 * Values are read and written exactly as Prisma does (DateTime as ISO text).
 */
import type Database from 'better-sqlite3';
import { PkiError } from '../errors/pki-error.js';
import type { DeviceRecord, DeviceStatus, EnrollmentLease, NewDevice, ReprovisionPolicy } from '../ra/devices/ports.js';
import { withWriteLock } from './sqlite-hot-path.js';
import { sqliteDate, sqliteDateOf } from './sqlite-date.js';
import type { SerialQueue } from './sqlite-serial.js';
import type { WalSync } from './wal-sync.js';

/** The raw SQLite connection of a store, its write queue and WAL sync (open.ts). */
export interface SqliteDeviceConnection {
  raw: Database.Database;
  queue: SerialQueue;
  wal?: WalSync | undefined;
}

/** A Device row as the database holds it (both flavours, through Prisma or not). */
export interface DeviceRow {
  id: string;
  status: string;
  profile: string;
  issuerId: string | null;
  reprovision: string;
  attributes: string;
  secretHash: string | null;
  eabKeyId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

function attributesOf(r: DeviceRow): Record<string, string> {
  const parsed: unknown = JSON.parse(r.attributes);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every((v) => typeof v === 'string')) {
    throw new Error(`device ${r.id}: stored attributes are not a JSON object of strings`);
  }
  return parsed as Record<string, string>;
}

/** A stored row as a {@link DeviceRecord} (the lease column stays inside the store). */
export const toDevice = (r: DeviceRow): DeviceRecord => ({
  id: r.id,
  status: r.status as DeviceStatus,
  profile: r.profile,
  issuerId: r.issuerId,
  reprovision: r.reprovision as ReprovisionPolicy,
  attributes: attributesOf(r),
  secretHash: r.secretHash,
  eabKeyId: r.eabKeyId,
  createdAt: r.createdAt,
  updatedAt: r.updatedAt,
});

type RawRow = Omit<DeviceRow, 'createdAt' | 'updatedAt'> & { createdAt: string; updatedAt: string };
const fromRaw = (r: RawRow): DeviceRecord => toDevice({ ...r, createdAt: sqliteDateOf(r.createdAt), updatedAt: sqliteDateOf(r.updatedAt) });

/** Names at most a few ids of a longer list. */
export function someIds(ids: readonly string[]): string {
  const shown = ids.slice(0, 5).map((id) => `"${id}"`).join(', ');
  return ids.length > 5 ? `${shown} and ${ids.length - 5} more` : shown;
}

const columns = `"id","status","profile","issuerId","reprovision","attributes","secretHash","eabKeyId","createdAt","updatedAt"`;

function prepare(raw: Database.Database) {
  const exists = raw.prepare('SELECT 1 FROM "Device" WHERE "id" = ?').pluck();
  const insert = raw.prepare(`INSERT INTO "Device" (${columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const take = raw.prepare(
    `UPDATE "Device" SET "enrollingUntil" = ?, "updatedAt" = ?, "secretHash" = CASE WHEN ? IS NULL THEN "secretHash" ELSE NULL END
     WHERE "id" = ? AND ("enrollingUntil" IS NULL OR "enrollingUntil" <= ?) AND (? IS NULL OR "secretHash" = ?) RETURNING ${columns}`,
  );
  const why = raw.prepare(`SELECT "secretHash" FROM "Device" WHERE "id" = ?`);
  const release = raw.prepare(
    `UPDATE "Device" SET "enrollingUntil" = CASE WHEN "enrollingUntil" = ? THEN NULL ELSE "enrollingUntil" END, "updatedAt" = ?,
       "status" = CASE WHEN ? AND "status" = 'registered' THEN 'active' ELSE "status" END,
       "secretHash" = COALESCE("secretHash", ?)
     WHERE "id" = ?`,
  );
  return {
    find: raw.prepare(`SELECT ${columns} FROM "Device" WHERE "id" = ?`),
    insertMany: raw.transaction((devices: NewDevice[], at: string) => {
      const existing = devices.filter((d) => exists.get(d.id) !== undefined).map((d) => d.id);
      if (existing.length > 0) throw new PkiError('conflict', `devices already registered: ${someIds(existing.sort())}`);
      for (const d of devices) insert.run(d.id, d.status, d.profile, d.issuerId, d.reprovision, JSON.stringify(d.attributes), d.secretHash, d.eabKeyId, at, at);
    }),
    begin: raw.transaction((id: string, secretHash: string | null, until: string, at: string): DeviceRecord | 'busy' | 'badSecret' | 'notFound' => {
      const row = take.get(until, at, secretHash, id, at, secretHash, secretHash) as RawRow | undefined;
      if (row) return fromRaw(row);
      const now = why.get(id) as { secretHash: string | null } | undefined;
      if (!now) return 'notFound';
      return secretHash !== null && now.secretHash !== secretHash ? 'badSecret' : 'busy';
    }),
    end: raw.transaction((id: string, until: string, issued: boolean, restoreSecret: string | null, at: string) => {
      release.run(until, at, issued ? 1 : 0, issued ? null : restoreSecret, id);
    }),
  };
}

/** The enrollment path and bulk insert of the device registry on one SQLite store. */
export function sqliteDevices({ raw, queue, wal }: SqliteDeviceConnection) {
  // Prepared on first use (a store opened before migrating has no Device table yet).
  let stmts: ReturnType<typeof prepare> | undefined;
  const s = () => (stmts ??= prepare(raw));
  const durably = <T>(commit: Promise<T>): Promise<T> => (wal ? wal.after(commit) : commit);
  const write = <T>(fn: () => T): Promise<T> => durably(queue.run(() => withWriteLock(fn)));
  return {
    find: (id: string): Promise<DeviceRecord | null> =>
      queue.run(() => {
        const r = s().find.get(id) as RawRow | undefined;
        return r ? fromRaw(r) : null;
      }),
    insertMany: (devices: NewDevice[], at: Date): Promise<void> =>
      write(() => s().insertMany.immediate(devices, sqliteDate(at))).catch((err: unknown) => {
        if ((err as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) throw new PkiError('conflict', 'some of these devices were registered meanwhile', { cause: err });
        throw err;
      }),
    beginEnrollment: (id: string, lease: EnrollmentLease) =>
      write(() => s().begin.immediate(id, lease.secretHash ?? null, sqliteDate(lease.until), sqliteDate(lease.at))),
    endEnrollment: (id: string, lease: Pick<EnrollmentLease, 'until'>, end: { issued: boolean; restoreSecret?: string; at: Date }): Promise<void> =>
      write(() => s().end.immediate(id, sqliteDate(lease.until), end.issued, end.restoreSecret ?? null, sqliteDate(end.at))),
  };
}
