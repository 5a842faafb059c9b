/**
 * External account binding keys (RFC 8555 §7.3.4): created by the operator,
 * bound to one account once. The HMAC key column holds the key sealed by the
 * online keystore's secret sealer (purpose `acme-eab-hmac`, id = the EAB key
 * id); a key stored in clear by an older version is sealed in place the
 * first time it is read with a sealer, or by {@link resealLegacyEabKeys}.
 */
import type { SecretSealer } from '../keys/ports.js';
import type { AcmeEabKeyRecord, AcmeEabKeyRepository } from '../ra/acme/ports.js';
import { buf, bytes, rethrowAs, type Db } from './client.js';
import { requireSealer } from './sealed-secrets.js';

/** What EAB HMAC keys are sealed for (part of the authenticated data). */
export const eabSealPurpose = 'acme-eab-hmac';

type Row = Awaited<ReturnType<Db['acmeEabKey']['findUniqueOrThrow']>>;

/**
 * Replaces a clear HMAC key with its sealed form, only if the row still holds
 * that clear key (another process may have sealed it first: its value stands).
 */
async function reseal(db: Db, sealer: SecretSealer, keyId: string, clear: Buffer): Promise<boolean> {
  const sealed = sealer.seal(eabSealPurpose, keyId, clear);
  const n = await db.$executeRaw`UPDATE "AcmeEabKey" SET "hmacKey" = ${bytes(sealed)} WHERE "keyId" = ${keyId} AND "hmacKey" = ${bytes(clear)}`;
  return n === 1;
}

/**
 * {@link AcmeEabKeyRepository} over Prisma (both flavours; none of it is on
 * the request hot path). `create` and `find` need the sealer (`forbidden`
 * before cmd binds one); `list` never opens a key and returns every
 * `hmacKey` empty.
 */
export function acmeEabKeyRepository(db: Db, sealer: () => SecretSealer | null): AcmeEabKeyRepository {
  const open = async (r: Row): Promise<AcmeEabKeyRecord> => {
    const s = requireSealer(sealer, 'EAB keys');
    const stored = buf(r.hmacKey);
    let hmacKey: Buffer;
    if (s.isSealed(stored)) {
      hmacKey = s.open(eabSealPurpose, r.keyId, stored);
    } else {
      hmacKey = Buffer.from(stored);
      await reseal(db, s, r.keyId, hmacKey);
    }
    return { ...r, hmacKey };
  };
  return {
    async create(key) {
      const sealed = requireSealer(sealer, 'EAB keys').seal(eabSealPurpose, key.keyId, key.hmacKey);
      try {
        await db.acmeEabKey.create({ data: { keyId: key.keyId, hmacKey: bytes(sealed), directory: key.directory, createdAt: key.createdAt } });
      } catch (err) {
        rethrowAs(err, { conflict: `EAB key "${key.keyId}" already exists` });
      }
    },
    async find(keyId) {
      const r = await db.acmeEabKey.findUnique({ where: { keyId } });
      return r && open(r);
    },
    async bind(keyId, accountId, at) {
      // Conditional on the key still being unbound: two accounts racing for one key, one wins.
      const { count } = await db.acmeEabKey.updateMany({ where: { keyId, boundAccountId: null }, data: { boundAccountId: accountId, boundAt: at } });
      return count === 1;
    },
    list: async () =>
      (await db.acmeEabKey.findMany({ orderBy: [{ createdAt: 'asc' }, { keyId: 'asc' }], omit: { hmacKey: true } })).map((r) => ({ ...r, hmacKey: Buffer.alloc(0) })),
  };
}

/** Seals every EAB key still stored in clear; returns how many this call sealed. */
export async function resealLegacyEabKeys(db: Db, sealer: SecretSealer): Promise<number> {
  let n = 0;
  for (const r of await db.acmeEabKey.findMany({ select: { keyId: true, hmacKey: true } })) {
    const stored = buf(r.hmacKey);
    if (!sealer.isSealed(stored) && (await reseal(db, sealer, r.keyId, Buffer.from(stored)))) n += 1;
  }
  return n;
}
