/**
 * Secrets every node of an instance shares (e.g. the ACME nonce HMAC key),
 * created once by whoever asks first. The value column holds the secret
 * sealed by the online keystore's secret sealer (purpose `instance-secret`,
 * id = the secret's name); a value stored in clear by an older version is
 * sealed in place the first time it is read with a sealer, or by
 * {@link resealLegacyInstanceSecrets}.
 */
import type { SecretSealer } from '../keys/ports.js';
import type { InstanceSecretRepository } from '../ra/acme/ports.js';
import { buf, bytes, type Db } from './client.js';
import { requireSealer } from './sealed-secrets.js';

/** What instance secrets are sealed for (part of the authenticated data). */
export const instanceSecretSealPurpose = 'instance-secret';

/** The InstanceSecret table, through Prisma ({@link prismaSecretRows}) or prepared statements (sqlite-serving.ts). */
export interface SecretRows {
  find(name: string): Promise<Buffer | null>;
  all(): Promise<{ name: string; value: Buffer }[]>;
  /** Inserts the row unless one of that name exists. */
  insertIfAbsent(name: string, value: Buffer): Promise<void>;
  /** Sets the value to `sealed` only if the row still holds `clear`; true if it did. */
  replace(name: string, sealed: Buffer, clear: Buffer): Promise<boolean>;
}

/** {@link SecretRows} over Prisma (both flavours). */
export function prismaSecretRows(db: Db): SecretRows {
  return {
    find: async (name) => {
      const r = await db.instanceSecret.findUnique({ where: { name } });
      return r && buf(r.value);
    },
    all: async () => (await db.instanceSecret.findMany()).map((r) => ({ name: r.name, value: buf(r.value) })),
    insertIfAbsent: async (name, value) => {
      await db.$executeRaw`INSERT INTO "InstanceSecret" ("name","value") VALUES (${name}, ${bytes(value)}) ON CONFLICT ("name") DO NOTHING`;
    },
    replace: async (name, sealed, clear) => (await db.$executeRaw`UPDATE "InstanceSecret" SET "value" = ${bytes(sealed)} WHERE "name" = ${name} AND "value" = ${bytes(clear)}`) === 1,
  };
}

/** Replaces a clear value with its sealed form, only if the row still holds that clear value. */
const reseal = (rows: SecretRows, sealer: SecretSealer, name: string, clear: Buffer): Promise<boolean> => rows.replace(name, sealer.seal(instanceSecretSealPurpose, name, clear), clear);

/** {@link InstanceSecretRepository} over `rows` (read once per process). Needs the sealer (`forbidden` before cmd binds one). */
export function instanceSecretRepository(rows: SecretRows, sealer: () => SecretSealer | null): InstanceSecretRepository {
  const read = async (s: SecretSealer, name: string): Promise<Buffer | null> => {
    const stored = await rows.find(name);
    if (!stored) return null;
    if (s.isSealed(stored)) return s.open(instanceSecretSealPurpose, name, stored);
    const clear = Buffer.from(stored);
    await reseal(rows, s, name, clear);
    return clear;
  };
  return {
    async getOrCreate(name, create) {
      const s = requireSealer(sealer, 'instance secrets');
      const existing = await read(s, name);
      if (existing) return existing;
      // Another process or node may insert first: then its value stands, and
      // reading back after the insert gives every caller that one value.
      await rows.insertIfAbsent(name, s.seal(instanceSecretSealPurpose, name, create()));
      const stored = await read(s, name);
      if (!stored) throw new Error(`instance secret "${name}" was inserted but cannot be read back`);
      return stored;
    },
  };
}

/** Seals every instance secret still stored in clear; returns how many this call sealed. */
export async function resealLegacyInstanceSecrets(rows: SecretRows, sealer: SecretSealer): Promise<number> {
  let n = 0;
  for (const r of await rows.all()) {
    if (!sealer.isSealed(r.value) && (await reseal(rows, sealer, r.name, Buffer.from(r.value)))) n += 1;
  }
  return n;
}
