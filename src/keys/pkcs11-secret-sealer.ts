/**
 * The SecretSealer of the PKCS#11 keystore: the stored format of
 * secret-sealer.ts (header, 12-octet IV, ciphertext, 16-octet tag; purpose and
 * id in the AAD), sealed with CKM_AES_GCM (NIST SP 800-38D) under an AES-256
 * key that never leaves the token. The interface is synchronous, so it uses
 * pkcs11js's synchronous calls on a session of its own: a synchronous call
 * runs to the end before any other JavaScript, so that session never has two
 * operations at once. After a lost login (pkcs11-token.ts) the token logs in
 * again, and the sealer opens a new session, finds its key again by CKA_ID
 * and tries the operation once more.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { PkiError } from '../errors/pki-error.js';
import type { SecretSealer } from './ports.js';
import { isSealedSecret, sealedSecretAad, sealedSecretFormat } from './secret-sealer.js';
import { ckaIdOf, findObjects } from './pkcs11-objects.js';
import { assertLoggedIn, closeGone, codeOf, loginLost, safeCause, type Token } from './pkcs11-token.js';

type Handle = Buffer;

/** CKA_LABEL of the instance's secret-sealing key in the token. */
export const pkcs11SealerLabel = 'trellis-secret-sealer';
const { magic, ivBytes, tagBytes } = sealedSecretFormat;

/** AES-256-GCM sealing in the token. Built by Pkcs11Keystore.openSecretSealer; stops working when the keystore closes. */
export class Pkcs11SecretSealer implements SecretSealer {
  readonly #token: Token;
  #session: Handle;
  #key: Handle;
  /** The token generation #session and #key belong to. */
  #generation: number;
  readonly #keyId: string;
  readonly #random: (size: number) => Buffer;
  #closed = false;

  /** `key` is the AES key's handle and the token generation it was found in; `session` is opened by the caller (a stale one is replaced on first use). */
  constructor(token: Token, session: Handle, key: { handle: Handle; generation: number }, keyId: string, randomBytes: (size: number) => Buffer = nodeRandomBytes) {
    this.#token = token;
    this.#session = session;
    this.#key = key.handle;
    this.#generation = key.generation;
    this.#keyId = keyId;
    this.#random = randomBytes;
  }

  isSealed(stored: Uint8Array): boolean {
    return isSealedSecret(stored);
  }

  seal(purpose: string, id: string, secret: Uint8Array): Buffer {
    const iv = this.#random(ivBytes);
    try {
      return this.#recovering((p11) => {
        p11.C_EncryptInit(this.#session, this.#mechanism(iv, purpose, id), this.#key);
        // CKM_AES_GCM returns ciphertext || tag (PKCS#11 v2.40 §2.10.2).
        const out = p11.C_Encrypt(this.#session, Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength), Buffer.alloc(secret.byteLength + tagBytes));
        return Buffer.concat([magic, iv, out]);
      });
    } catch (err) {
      if (err instanceof PkiError) throw err;
      throw new PkiError('serverInternal', `sealing ${purpose} "${id.slice(0, 64)}" in the token failed`, { cause: safeCause(err) });
    }
  }

  open(purpose: string, id: string, stored: Uint8Array): Buffer {
    const what = `sealed ${purpose} "${id.slice(0, 64)}"`;
    if (!this.isSealed(stored)) throw new PkiError('keyIntegrity', `${what} has no sealed-secret header`);
    const b = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
    const iv = b.subarray(magic.length, magic.length + ivBytes);
    const ctAndTag = b.subarray(magic.length + ivBytes);
    try {
      return this.#recovering((p11) => {
        p11.C_DecryptInit(this.#session, this.#mechanism(iv, purpose, id), this.#key);
        return p11.C_Decrypt(this.#session, ctAndTag, Buffer.alloc(ctAndTag.length));
      });
    } catch (err) {
      if (err instanceof PkiError) throw err;
      if (loginLost.has(codeOf(err))) throw new PkiError('serverInternal', `opening ${what}: PKCS#11 token "${this.#token.label}" failed again after the login was restored`, { cause: safeCause(err) });
      // After the header check the only failure left is the tag (SoftHSM2 2.6 says CKR_GENERAL_ERROR, others CKR_ENCRYPTED_DATA_INVALID).
      throw new PkiError('keyIntegrity', `${what} does not authenticate (edited, or copied from another row)`, { cause: safeCause(err) });
    }
  }

  /** Runs `op`; after a failure a lost login explains, has the token recover and runs it once more on a new session with the key found again. */
  #recovering<T>(op: (p11: pkcs11js.PKCS11) => T): T {
    const p11 = this.#open();
    const seen = this.#token.generation;
    try {
      this.#refresh();
      return op(p11);
    } catch (err) {
      if (!loginLost.has(codeOf(err))) throw err;
      this.#token.recover(seen);
      this.#refresh();
      return op(p11);
    }
  }

  /** After the token recovered: a new session, and the key found again by its label and CKA_ID. */
  #refresh(): void {
    if (this.#generation === this.#token.generation) return;
    const p11 = this.#token.pkcs11;
    closeGone(p11, this.#session);
    this.#session = this.#token.openSession();
    this.#generation = this.#token.generation;
    assertLoggedIn(p11, this.#session, this.#token.label);
    const found = findObjects(p11, this.#session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_LABEL, value: pkcs11SealerLabel },
      { type: pkcs11js.CKA_ID, value: ckaIdOf(this.#keyId) },
    ]);
    if (found.length !== 1) throw new PkiError('keyIntegrity', `the secret-sealing key ${this.#keyId} is not in PKCS#11 token "${this.#token.label}" any more`);
    this.#key = found[0]!;
  }

  /** Closes the sealer's session (the keystore calls it on close). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // A session the token already forgot (the login was lost) needs no closing.
    closeGone(this.#token.pkcs11, this.#session);
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
