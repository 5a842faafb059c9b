/** A SigningKey whose private key stays in a PKCS#11 token: each signature is one C_SignInit + C_Sign on a pooled session. */
import { createHash, verify, type KeyObject } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { PkiError } from '../errors/pki-error.js';
import { seq, uintFromBytes } from '../pki/der.js';
import { hashFor } from './algorithms.js';
import type { TokenAlgorithm } from './pkcs11-objects.js';
import type { SessionPool } from './pkcs11-session-pool.js';
import { codeOf, safeCause } from './pkcs11-token.js';
import type { KeyAlgorithm, SigningKey } from './signing-key.js';

/** Codes that mean the key object is gone (destroyed by `destroy`, or by another process). */
const keyGone = new Set<number>([pkcs11js.CKR_KEY_HANDLE_INVALID, pkcs11js.CKR_OBJECT_HANDLE_INVALID]);

/** Where a key's private object is: its handle, the token generation the handle belongs to, and how to find it again. */
export interface KeyObjectRef {
  readonly handle: Buffer;
  readonly generation: number;
  /** Finds the private key again on `session` (after the login was restored): `notFound` when it is gone, `keyIntegrity` when its public key is not this key's. */
  readonly locate: (session: Buffer) => Buffer;
}

/**
 * A token key. Inspection and JSON show the id and algorithm; the object
 * handle is reachable only through `sign`. Built by Pkcs11Keystore, which
 * checks that the public key matches the private one before handing it out.
 */
export class Pkcs11SigningKey implements SigningKey {
  readonly spkiDer: Buffer;
  readonly #pool: SessionPool;
  readonly #locate: (session: Buffer) => Buffer;
  #handle: Buffer;
  #generation: number;
  readonly #t: TokenAlgorithm;

  constructor(
    readonly keyId: string,
    readonly algorithm: KeyAlgorithm,
    readonly publicKey: KeyObject,
    t: TokenAlgorithm,
    object: KeyObjectRef,
    pool: SessionPool,
  ) {
    this.spkiDer = publicKey.export({ type: 'spki', format: 'der' });
    this.#t = t;
    this.#handle = object.handle;
    this.#generation = object.generation;
    this.#locate = object.locate;
    this.#pool = pool;
  }

  /**
   * Signs `data` in the token, asynchronously (C_Sign runs on a libuv worker
   * thread, so a slow token never blocks the event loop). ECDSA comes back as
   * a DER ECDSA-Sig-Value: the token returns r || s (PKCS#11 v2.40 §2.3.1).
   * When the token lost its login, the pool logs in again and the signature
   * is tried once more (SessionPool.runRecovering), with the private key
   * found again by name; a signature made with a key found again is verified
   * with the public key before it is returned (`keyIntegrity` otherwise).
   * `notFound` when the key was destroyed; `forbidden` once the keystore is closed.
   */
  async sign(data: Uint8Array): Promise<Buffer> {
    const t = this.#t;
    const input = t.preHash ? createHash(t.preHash).update(data).digest() : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let signed: { raw: Buffer; located: boolean };
    try {
      signed = await this.#pool.runRecovering(async (session, generation) => {
        const located = generation > this.#generation;
        if (located) {
          // The handle is from before the login was restored: the token may have given the object a new one.
          this.#handle = this.#locate(session);
          this.#generation = generation;
        }
        this.#pool.pkcs11.C_SignInit(session, { mechanism: t.sign }, this.#handle);
        return { raw: await this.#pool.pkcs11.C_SignAsync(session, input, Buffer.alloc(t.signatureBytes)), located };
      });
    } catch (err) {
      if (err instanceof PkiError) throw err;
      if (keyGone.has(codeOf(err))) throw new PkiError('notFound', `key "${this.keyId}" is no longer in the token`, { cause: safeCause(err) });
      throw new PkiError('serverInternal', `PKCS#11 signature with key "${this.keyId}" failed`, { cause: safeCause(err) });
    }
    const { raw, located } = signed;
    if (raw.length !== t.signatureBytes) throw new PkiError('keyIntegrity', `key "${this.keyId}": the token returned a ${raw.length}-octet signature, not ${t.signatureBytes}`);
    const signature = t.sign === pkcs11js.CKM_ECDSA ? ecdsaSigValue(raw) : raw;
    if (located && !verify(hashFor(this.algorithm), data, { key: this.publicKey, dsaEncoding: 'der' }, signature)) {
      throw new PkiError('keyIntegrity', `key "${this.keyId}": the private key found again after the login was restored does not match its public key`);
    }
    return signature;
  }

  /** Never print the handle: util.inspect and JSON see only the public facts. */
  toJSON(): object {
    return { keyId: this.keyId, algorithm: this.algorithm, keystore: 'pkcs11' };
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Pkcs11SigningKey(${this.keyId}, ${this.algorithm})`;
  }
}

// RFC 5480 §2.2 (via RFC 5758 §3.2): ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }
/** DER ECDSA-Sig-Value from the IEEE P1363 form r || s (two halves of equal length). */
export function ecdsaSigValue(p1363: Buffer): Buffer {
  const half = p1363.length / 2;
  return seq(uintFromBytes(p1363.subarray(0, half)), uintFromBytes(p1363.subarray(half)));
}
