/** SubjectPublicKeyInfo → node KeyObject plus the facts key policy needs. */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { PkiError } from '../errors/pki-error.js';

/** What a public key is, in the terms profiles use. */
export type PublicKeyInfo =
  | { kind: 'rsa'; bits: number; publicExponent: bigint }
  | { kind: 'ec'; curve: string }
  | { kind: 'ed25519' }
  | { kind: 'other'; type: string };

const curveNames: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521', prime192v1: 'P-192', secp224r1: 'P-224' };

/**
 * Loads a DER SPKI. OpenSSL rejects EC points that are not on the curve while
 * decoding, so an invalid point surfaces here as `badPublicKey`.
 */
export function loadSpki(spkiDer: Buffer): { publicKey: KeyObject; info: PublicKeyInfo } {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch (err) {
    throw new PkiError('badPublicKey', 'public key cannot be decoded (invalid encoding, unsupported algorithm or invalid EC point)', { cause: err });
  }
  return { publicKey, info: describeKey(publicKey) };
}

/** Describes a node KeyObject (public or private). */
export function describeKey(key: KeyObject): PublicKeyInfo {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { kind: 'rsa', bits: d.modulusLength ?? 0, publicExponent: d.publicExponent ?? 0n };
    case 'ec':
      return { kind: 'ec', curve: curveNames[d.namedCurve ?? ''] ?? d.namedCurve ?? 'unknown' };
    case 'ed25519':
      return { kind: 'ed25519' };
    default:
      return { kind: 'other', type: key.asymmetricKeyType ?? 'unknown' };
  }
}

/** Human form for messages: "RSA 2048", "ECDSA P-256", "Ed25519". */
export function keyLabel(info: PublicKeyInfo): string {
  switch (info.kind) {
    case 'rsa': return `RSA ${info.bits}`;
    case 'ec': return `ECDSA ${info.curve}`;
    case 'ed25519': return 'Ed25519';
    case 'other': return info.type;
  }
}
