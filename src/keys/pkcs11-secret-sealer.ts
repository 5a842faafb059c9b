/**
 * The SecretSealer of the PKCS#11 keystore: the stored format of
 * secret-sealer.ts (header, 12-octet IV, ciphertext, 16-octet tag; purpose and
 * id in the AAD), sealed with CKM_AES_GCM (NIST SP 800-38D) under an AES-256
 * key that never leaves the token. The interface is synchronous, so it uses
 * pkcs11js's synchronous calls on a session of its own: a synchronous call
 * runs to the end before any other JavaScript, so that session never has two
 * operations at once.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { PkiError } from '../errors/pki-error.js';
import type { SecretSealer } from './ports.js';
import { isSealedSecret, sealedSecretAad, sealedSecretFormat } from './secret-sealer.js';
import { safeCause, type Token } from './pkcs11-token.js';

type Handle = Buffer;
const { magic, ivBytes, tagBytes } = sealedSecretFormat;

/** AES-256-GCM sealing in the token. Built by Pkcs11Keystore.openSecretSealer; stops working when the keystore closes. */
export class Pkcs11SecretSealer implements SecretSealer {
  readonly #token: Token;
  readonly #session: Handle;
  readonly #key: Handle;
  readonly #keyId: string;
  readonly #random: (size: number) => Buffer;
  #closed = false;

  constructor(token: Token, session: Handle, key: Handle, keyId: string, randomBytes: (size: number) => Buffer = nodeRandomBytes) {
    this.#token = token;
    this.#session = session;
    this.#key = key;
    this.#keyId = keyId;
    this.#random = randomBytes;
  }

  isSealed(stored: Uint8Array): boolean {
    return isSealedSecret(stored);
  }

  seal(purpose: string, id: string, secret: Uint8Array): Buffer {
    const iv = this.#random(ivBytes);
    const p11 = this.#open();
    try {
      p11.C_EncryptInit(this.#session, this.#mechanism(iv, purpose, id), this.#key);
      // CKM_AES_GCM returns ciphertext || tag (PKCS#11 v2.40 §2.10.2).
      const out = p11.C_Encrypt(this.#session, Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength), Buffer.alloc(secret.byteLength + tagBytes));
      return Buffer.concat([magic, iv, out]);
    } catch (err) {
      throw new PkiError('serverInternal', `sealing ${purpose} "${id.slice(0, 64)}" in the token failed`, { cause: safeCause(err) });
    }
  }

  open(purpose: string, id: string, stored: Uint8Array): Buffer {
    const what = `sealed ${purpose} "${id.slice(0, 64)}"`;
    if (!this.isSealed(stored)) throw new PkiError('keyIntegrity', `${what} has no sealed-secret header`);
    const b = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
    const iv = b.subarray(magic.length, magic.length + ivBytes);
    const ctAndTag = b.subarray(magic.length + ivBytes);
    const p11 = this.#open();
    try {
      p11.C_DecryptInit(this.#session, this.#mechanism(iv, purpose, id), this.#key);
      return p11.C_Decrypt(this.#session, ctAndTag, Buffer.alloc(ctAndTag.length));
    } catch (err) {
      // After the header check the only failure left is the tag (SoftHSM2 2.6 says CKR_GENERAL_ERROR, others CKR_ENCRYPTED_DATA_INVALID).
      throw new PkiError('keyIntegrity', `${what} does not authenticate (edited, or copied from another row)`, { cause: safeCause(err) });
    }
  }

  /** Closes the sealer's session (the keystore calls it on close). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#token.pkcs11.C_CloseSession(this.#session);
  }

  #open(): pkcs11js.PKCS11 {
    if (this.#closed) throw new PkiError('forbidden', 'the PKCS#11 keystore is closed');
    return this.#token.pkcs11;
  }

  #mechanism(iv: Buffer, purpose: string, id: string): pkcs11js.Mechanism {
    const parameter: pkcs11js.GcmParams = { type: pkcs11js.CK_PARAMS_AES_GCM, iv, ivBits: ivBytes * 8, aad: sealedSecretAad(this.#keyId, purpose, id), tagBits: tagBytes * 8 };
    return { mechanism: pkcs11js.CKM_AES_GCM, parameter };
  }

  /** Never print handles: util.inspect and JSON see only the key id. */
  toJSON(): object {
    return { secretSealer: this.#keyId };
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SecretSealer(${this.#keyId})`;
  }
}
