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

/** Replaces a clear value with its sealed form, only if the row still holds that clear value. */
async function reseal(db: Db, sealer: SecretSealer, name: string, clear: Buffer): Promise<boolean> {
  const sealed = sealer.seal(instanceSecretSealPurpose, name, clear);
  return (await db.$executeRaw`UPDATE "InstanceSecret" SET "value" = ${bytes(sealed)} WHERE "name" = ${name} AND "value" = ${bytes(clear)}`) === 1;
}

/** {@link InstanceSecretRepository} over Prisma (read once per process; both flavours). Needs the sealer (`forbidden` before cmd binds one). */
export function instanceSecretRepository(db: Db, sealer: () => SecretSealer | null): InstanceSecretRepository {
  const read = async (s: SecretSealer, name: string): Promise<Buffer | null> => {
    const r = await db.instanceSecret.findUnique({ where: { name } });
    if (!r) return null;
    const stored = buf(r.value);
    if (s.isSealed(stored)) return s.open(instanceSecretSealPurpose, name, stored);
    const clear = Buffer.from(stored);
    await reseal(db, s, name, clear);
    return clear;
  };
  return {
    async getOrCreate(name, create) {
      const s = requireSealer(sealer, 'instance secrets');
      const existing = await read(s, name);
      if (existing) return existing;
      // Another process or node may insert first: then its value stands, and
      // reading back after the insert gives every caller that one value.
      await db.$executeRaw`INSERT INTO "InstanceSecret" ("name","value") VALUES (${name}, ${bytes(s.seal(instanceSecretSealPurpose, name, create()))}) ON CONFLICT ("name") DO NOTHING`;
      const stored = await read(s, name);
      if (!stored) throw new Error(`instance secret "${name}" was inserted but cannot be read back`);
      return stored;
    },
  };
}

/** Seals every instance secret still stored in clear; returns how many this call sealed. */
export async function resealLegacyInstanceSecrets(db: Db, sealer: SecretSealer): Promise<number> {
  let n = 0;
  for (const r of await db.instanceSecret.findMany()) {
    const stored = buf(r.value);
    if (!sealer.isSealed(stored) && (await reseal(db, sealer, r.name, Buffer.from(stored)))) n += 1;
  }
  return n;
}
