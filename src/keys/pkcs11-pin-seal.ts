/**
 * A token PIN kept in memory to log in again after a lost login
 * (pkcs11-token.ts), sealed with AES-256-GCM (NIST SP 800-38D) under a
 * random key made for this PIN alone and held in a Buffer of its own.
 *
 * What this buys: the PIN's bytes are never in memory as they are, only for
 * the one C_Login that needs them (then the Buffer is wiped), so they do not
 * turn up in an inspected object, a log line, an error, a child's
 * environment, or a search of a memory dump for the PIN. What it does not
 * buy: someone who can read all of the process's memory finds the key
 * beside the ciphertext (and could sign with the logged-in token anyway).
 * Wiped on {@link wipe}; nothing opens after that.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { PkiError } from '../errors/pki-error.js';

/** One sealed PIN; never shows its contents to inspection or JSON. */
export class SealedPin {
  readonly #key: Buffer;
  readonly #iv: Buffer;
  readonly #sealed: Buffer;
  readonly #tag: Buffer;
  #wiped = false;

  /** Seals a copy of `pin`; the caller's Buffer is not changed (the caller clears it). */
  constructor(pin: Buffer) {
    this.#key = randomBytes(32);
    this.#iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, this.#iv);
    this.#sealed = Buffer.concat([cipher.update(pin), cipher.final()]);
    this.#tag = cipher.getAuthTag();
  }

  /** The PIN in a new Buffer, which the caller wipes (`fill(0)`) as soon as it is used; `forbidden` after {@link wipe}. */
  open(): Buffer {
    if (this.#wiped) throw new PkiError('forbidden', 'the PKCS#11 PIN was cleared: the token is closed');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, this.#iv);
    decipher.setAuthTag(this.#tag);
    return Buffer.concat([decipher.update(this.#sealed), decipher.final()]);
  }

  /** Overwrites the key, IV, ciphertext and tag with zeros. */
  wipe(): void {
    this.#wiped = true;
    for (const b of [this.#key, this.#iv, this.#sealed, this.#tag]) b.fill(0);
  }

  toJSON(): object {
    return { pin: this.#wiped ? 'wiped' : 'sealed' };
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SealedPin(${this.#wiped ? 'wiped' : 'sealed'})`;
  }
}
