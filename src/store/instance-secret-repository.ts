/** Secrets every node of an instance shares (e.g. the ACME nonce HMAC key), created once by whoever asks first. */
import type { InstanceSecretRepository } from '../ra/acme/ports.js';
import { buf, bytes, type Db } from './client.js';

/** {@link InstanceSecretRepository} over Prisma (read once per process; both flavours). */
export function instanceSecretRepository(db: Db): InstanceSecretRepository {
  const read = async (name: string) => {
    const r = await db.instanceSecret.findUnique({ where: { name } });
    return r && buf(r.value);
  };
  return {
    async getOrCreate(name, create) {
      const existing = await read(name);
      if (existing) return existing;
      // Another process or node may insert first: then its value stands, and
      // reading back after the insert gives every caller that one value.
      await db.$executeRaw`INSERT INTO "InstanceSecret" ("name","value") VALUES (${name}, ${bytes(create())}) ON CONFLICT ("name") DO NOTHING`;
      const stored = await read(name);
      if (!stored) throw new Error(`instance secret "${name}" was inserted but cannot be read back`);
      return stored;
    },
  };
}
