/**
 * The two generated Prisma clients (SQLite, PostgreSQL) have the same models;
 * repositories are written once against the SQLite client's types.
 */
import { PrismaClient as SqliteClient, Prisma } from '../generated/sqlite/client.js';
import { PkiError } from '../errors/pki-error.js';

export type Db = InstanceType<typeof SqliteClient>;
export type Tx = Omit<Db, '$connect' | '$disconnect' | '$on' | '$transaction' | '$extends'>;
export { Prisma };

export type Kind = 'sqlite' | 'postgres';

/** Unique constraint violations (P2002) become `conflict`; anything else is rethrown. */
export function conflictOr(err: unknown, detail: string): never {
  if ((err as { code?: string })?.code === 'P2002') throw new PkiError('conflict', detail, { cause: err });
  throw err;
}

export const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
export const bufOrNull = (b: Uint8Array | null): Buffer | null => (b ? buf(b) : null);
