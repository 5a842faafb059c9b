/**
 * Sealed secrets: small secrets other modules keep in the database (ACME EAB
 * HMAC keys, the shared nonce HMAC key) stored encrypted, like CA keys, under
 * the online passphrase.
 *
 * Key hierarchy: the online passphrase → scrypt master key → the envelope of
 * one secret-sealing key (32 random octets, key blob `secretSealingKeyId`,
 * algorithm `secret-aes-256`, the v2 format of envelope.ts) → each sealed
 * secret. The sealing key is opened once per process while the passphrase
 * (or the master key of its salt) is at hand, and then held as a KeyObject,
 * so sealing keeps working after `forgetPassphrase()`.
 *
 * A sealed secret, the bytes stored in the secret's own column:
 *
 * ```
 * "TRLSSEC" 0x01   magic and format version (8 octets)
 * iv               12 random octets
 * ciphertext       as long as the secret
 * tag              16 octets (AES-256-GCM, NIST SP 800-38D)
 * ```
 *
 * The additional authenticated data is the JSON array
 * `["trellis-sealed-secret", 1, sealingKeyId, purpose, id]`: a sealed value
 * copied to another row (another EAB key id, another secret name) or used for
 * another purpose does not open. Values stored in clear before sealing
 * existed (32 random octets) lack the header; the store recognises them with
 * {@link SecretSealer.isSealed} and seals them when it first sees them.
 */
import { createCipheriv, createDecipheriv, type KeyObject } from 'node:crypto';
import { PkiError } from '../errors/pki-error.js';
import type { SecretSealer } from './ports.js';

/** Key blob id of the instance's secret-sealing key. */
export const secretSealingKeyId = 'trellis-secret-sealing-key';

const magic = Buffer.from('TRLSSEC\x01', 'latin1');
const ivBytes = 12;
const tagBytes = 16;

/** The stored format above, for other sealers of the same format (the PKCS#11 keystore's). */
export const sealedSecretFormat = { magic, ivBytes, tagBytes } as const;

/** True when `stored` has the sealed-secret header and room for an IV and a tag. */
export function isSealedSecret(stored: Uint8Array): boolean {
  return stored.length >= magic.length + ivBytes + tagBytes && magic.equals(Buffer.from(stored.buffer, stored.byteOffset, magic.length));
}

/** The additional authenticated data of one sealed secret (see the format above). */
export function sealedSecretAad(sealingKeyId: string, purpose: string, id: string): Buffer {
  return Buffer.from(JSON.stringify(['trellis-sealed-secret', 1, sealingKeyId, purpose, id]), 'utf8');
}

/** AES-256-GCM sealing of small secrets under the opened secret-sealing key. Built by SoftwareKeystore.openSecretSealer. */
export class SoftwareSecretSealer implements SecretSealer {
  readonly #key: KeyObject;
  readonly #keyId: string;
  readonly #random: (size: number) => Buffer;

  /** `key` is the 32-octet AES key as a secret KeyObject (its bytes never sit in a Buffer here). */
  constructor(key: KeyObject, keyId: string, randomBytes: (size: number) => Buffer) {
    if (key.type !== 'secret' || key.symmetricKeySize !== 32) throw new PkiError('keyIntegrity', `key "${keyId}": the secret-sealing key is not 32 octets`);
    this.#key = key;
    this.#keyId = keyId;
    this.#random = randomBytes;
  }

  isSealed(stored: Uint8Array): boolean {
    return isSealedSecret(stored);
  }

  seal(purpose: string, id: string, secret: Uint8Array): Buffer {
    const iv = this.#random(ivBytes);
    const c = createCipheriv('aes-256-gcm', this.#key, iv, { authTagLength: tagBytes });
    c.setAAD(this.#aad(purpose, id));
    const ct = Buffer.concat([c.update(secret), c.final()]);
    return Buffer.concat([magic, iv, ct, c.getAuthTag()]);
  }

  open(purpose: string, id: string, stored: Uint8Array): Buffer {
    const what = `sealed ${purpose} "${id.slice(0, 64)}"`;
    if (!this.isSealed(stored)) throw new PkiError('keyIntegrity', `${what} has no sealed-secret header`);
    const b = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
    const iv = b.subarray(magic.length, magic.length + ivBytes);
    const ct = b.subarray(magic.length + ivBytes, b.length - tagBytes);
    const d = createDecipheriv('aes-256-gcm', this.#key, iv, { authTagLength: tagBytes });
    d.setAAD(this.#aad(purpose, id));
    d.setAuthTag(b.subarray(b.length - tagBytes));
    const head = d.update(ct);
    try {
      return Buffer.concat([head, d.final()]);
    } catch (err) {
      // After the header check the only failure left is the tag: the value was edited, or belongs to another row.
      throw new PkiError('keyIntegrity', `${what} does not authenticate (edited, or copied from another row)`, { cause: new Error(String((err as Error).message)) });
    } finally {
      head.fill(0);
    }
  }

  #aad(purpose: string, id: string): Buffer {
    return sealedSecretAad(this.#keyId, purpose, id);
  }

  /** Never print the key: util.inspect and JSON see only the key id. */
  toJSON(): object {
    return { secretSealer: this.#keyId };
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SecretSealer(${this.#keyId})`;
  }
}
