/**
 * A SecretSealer for the store's contract tests, which may not import keys/
 * (the real one, keys/secret-sealer.ts, is tested there and end to end from
 * cmd). Same shape as the real one: a header, AES-256-GCM under a random key,
 * purpose and id authenticated, so a value moved to another row fails.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { PkiError } from '../../errors/pki-error.js';
import type { SecretSealer } from '../../keys/ports.js';

const header = Buffer.from('TESTSEAL', 'latin1');

/** A sealer with a key of its own; `sealed` counts what it sealed. */
export function testSealer(): SecretSealer & { sealed: number } {
  const key = randomBytes(32);
  const aad = (purpose: string, id: string) => Buffer.from(JSON.stringify([purpose, id]));
  const sealer = {
    sealed: 0,
    isSealed: (stored: Uint8Array) => stored.length >= header.length + 28 && header.equals(Buffer.from(stored).subarray(0, header.length)),
    seal(purpose: string, id: string, secret: Uint8Array) {
      sealer.sealed += 1;
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv).setAAD(aad(purpose, id));
      const ct = Buffer.concat([c.update(secret), c.final()]);
      return Buffer.concat([header, iv, ct, c.getAuthTag()]);
    },
    open(purpose: string, id: string, stored: Uint8Array) {
      const b = Buffer.from(stored);
      const d = createDecipheriv('aes-256-gcm', key, b.subarray(8, 20)).setAAD(aad(purpose, id));
      d.setAuthTag(b.subarray(b.length - 16));
      try {
        return Buffer.concat([d.update(b.subarray(20, b.length - 16)), d.final()]);
      } catch (err) {
        throw new PkiError('keyIntegrity', `sealed ${purpose} "${id}" does not authenticate`, { cause: err });
      }
    },
  };
  return sealer;
}
