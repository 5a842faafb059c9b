import type { KeyObject } from 'node:crypto';
import type { SecretSealer } from './ports.js';

/**
 * Key algorithms Trellis can hold or accept. The name fixes the signature
 * algorithm too: ECDSA P-256 signs with SHA-256, P-384 with SHA-384, RSA with
 * SHA-256 (PKCS#1 v1.5), Ed25519 with pure EdDSA (RFC 8410).
 */
export const keyAlgorithms = ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ed25519'] as const;
export type KeyAlgorithm = (typeof keyAlgorithms)[number];

/**
 * What the CA core sees of a private key: its algorithm, its public key, and a
 * sign operation. Software and PKCS#11 keys implement it; nothing else about
 * the key is reachable.
 */
export interface SigningKey {
  /** Opaque, stable id of the key in its keystore (never secret). */
  readonly keyId: string;
  readonly algorithm: KeyAlgorithm;
  /** DER SubjectPublicKeyInfo. */
  readonly spkiDer: Buffer;
  readonly publicKey: KeyObject;
  /**
   * Signs `data` with the algorithm's hash. ECDSA signatures come back as a DER
   * `ECDSA-Sig-Value` (the X.509 encoding), not IEEE P1363.
   */
  sign(data: Uint8Array): Promise<Buffer>;
}

/** Where CA keys are generated and unlocked (software keystore now, PKCS#11 later). */
export interface Keystore {
  /** Generates a key inside the store; never overwrites an existing id. */
  generate(algorithm: KeyAlgorithm, opts?: { id?: string }): Promise<SigningKey>;
  /** Unlocks a stored key. */
  load(keyId: string): Promise<SigningKey>;
  /** Wipes a key for good (NIST SP 800-57 destruction): nothing opens it again. `notFound` for an unknown id. */
  destroy(keyId: string): Promise<void>;
  /** Opens the instance's secret sealer (EAB HMAC keys, the ACME nonce key), creating its key on first use. */
  openSecretSealer(): Promise<SecretSealer>;
}
