/** A SigningKey over a node:crypto private KeyObject: synchronous OpenSSL signing, the hot path. */
import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import type { KeyAlgorithm, SigningKey } from './signing-key.js';

/** node:crypto hash for an algorithm (null: Ed25519 hashes internally). */
export const hashFor = (algorithm: KeyAlgorithm): 'sha256' | 'sha384' | null =>
  algorithm === 'ecdsa-p384' ? 'sha384' : algorithm === 'ed25519' ? null : 'sha256';

export class NodeSigningKey implements SigningKey {
  readonly publicKey: KeyObject;
  readonly spkiDer: Buffer;
  readonly #privateKey: KeyObject;
  readonly #hash: 'sha256' | 'sha384' | null;

  constructor(
    readonly keyId: string,
    readonly algorithm: KeyAlgorithm,
    privateKey: KeyObject,
  ) {
    this.#privateKey = privateKey;
    this.#hash = hashFor(algorithm);
    this.publicKey = createPublicKey(privateKey);
    this.spkiDer = this.publicKey.export({ type: 'spki', format: 'der' });
  }

  /** Synchronous signature (ECDSA as DER ECDSA-Sig-Value). */
  signSync(data: Uint8Array): Buffer {
    return sign(this.#hash, data, { key: this.#privateKey, dsaEncoding: 'der' });
  }

  async sign(data: Uint8Array): Promise<Buffer> {
    return this.signSync(data);
  }

  /** Never print key material: util.inspect and JSON see only the public facts. */
  toJSON(): object {
    return { keyId: this.keyId, algorithm: this.algorithm };
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `NodeSigningKey(${this.keyId}, ${this.algorithm})`;
  }
}
