/**
 * The two generated Prisma clients (SQLite, PostgreSQL) have the same models;
 * repositories are written once against the SQLite client's types.
 */
// Types only: the generated client loads when open.ts makes a client (lazy-client.ts), not with this module.
import type { PrismaClient as SqliteClient, Prisma } from '../generated/sqlite/client.js';
import { PkiError } from '../errors/pki-error.js';

/** A Prisma client of either flavour, typed as the SQLite one. */
export type Db = InstanceType<typeof SqliteClient>;
export type { Prisma };

/** The database flavour behind a store. */
export type Kind = 'sqlite' | 'postgres';

/**
 * The constraint an error violated, whichever way Prisma reports it: model
 * queries give P2002/P2003/P2025, raw queries P2010 with the driver
 * adapter's error kind inside.
 */
function violation(err: unknown): 'unique' | 'missing' | undefined {
  const e = err as { code?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: unknown } } } } | null;
  const kind = e?.code === 'P2010' ? e.meta?.driverAdapterError?.cause?.kind : undefined;
  if (e?.code === 'P2002' || kind === 'UniqueConstraintViolation') return 'unique';
  if (e?.code === 'P2025' || e?.code === 'P2003' || kind === 'ForeignKeyConstraintViolation') return 'missing';
  return undefined;
}

/**
 * Turns constraint and lookup errors into PkiErrors: a unique violation
 * becomes `conflict`, a missing record or foreign key `notFound` (when a
 * detail is given for it). Anything else is rethrown unchanged.
 */
export function rethrowAs(err: unknown, details: { conflict?: string; notFound?: string }): never {
  const v = violation(err);
  if (v === 'unique' && details.conflict) throw new PkiError('conflict', details.conflict, { cause: err });
  if (v === 'missing' && details.notFound) throw new PkiError('notFound', details.notFound, { cause: err });
  throw err;
}

/** Prisma returns Bytes as Uint8Array; the ports speak Buffer (a view, no copy). */
export const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
/** {@link buf} for nullable columns. */
export const bufOrNull = (b: Uint8Array | null): Buffer | null => (b ? buf(b) : null);
/** Prisma 7 wants Uint8Array<ArrayBuffer> for Bytes; a Buffer is one, typed loosely. */
export const bytes = (b: Buffer): Uint8Array<ArrayBuffer> => new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength);

/** Unique violations (P2002) become a `conflict` PkiError with `detail`; anything else is rethrown. */
export function conflictOr(err: unknown, detail: string): never {
  rethrowAs(err, { conflict: detail });
}
