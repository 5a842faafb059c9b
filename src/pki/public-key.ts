/** SubjectPublicKeyInfo → node KeyObject plus the facts key policy needs. */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { PkiError } from '../errors/pki-error.js';
import { children, expectTag, readBitString, readOid, readOne, Tag, type Tlv } from './der.js';
import { OID } from './oids.js';

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
  const fast = loadUncompressedEc(spkiDer);
  if (fast) return fast;
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch (err) {
    throw new PkiError('badPublicKey', 'public key cannot be decoded (invalid encoding, unsupported algorithm or invalid EC point)', { cause: err });
  }
  return { publicKey, info: describeKey(publicKey) };
}

const jwkCurves: Record<string, { crv: 'P-256' | 'P-384'; size: number }> = {
  [OID.secp256r1]: { crv: 'P-256', size: 32 },
  [OID.secp384r1]: { crv: 'P-384', size: 48 },
};

/**
 * Uncompressed P-256/P-384 points load through JWK coordinates, which in
 * OpenSSL 3 costs half of the generic DER decoder (~65 vs ~120 µs, measured);
 * OpenSSL still checks the point is on the curve. Anything else returns null.
 */
function loadUncompressedEc(spkiDer: Buffer): { publicKey: KeyObject; info: PublicKeyInfo } | null {
  let alg: Tlv[];
  let point: Buffer;
  try {
    const spki = children(readOne(spkiDer, Tag.SEQUENCE));
    if (spki.length !== 2) return null;
    alg = children(expectTag(spki[0], Tag.SEQUENCE, 'AlgorithmIdentifier'));
    if (alg.length !== 2 || readOid(alg[0]!) !== OID.ecPublicKey || alg[1]!.tag !== Tag.OID) return null;
    const bits = readBitString(spki[1]!);
    if (bits.unused !== 0) return null;
    point = bits.bytes;
  } catch {
    return null; // not a well-formed EC SPKI: let the generic decoder produce the error
  }
  const curve = jwkCurves[readOid(alg[1]!)];
  if (!curve || point.length !== 1 + 2 * curve.size || point[0] !== 0x04) return null;
  try {
    const publicKey = createPublicKey({
      key: { kty: 'EC', crv: curve.crv, x: point.subarray(1, 1 + curve.size).toString('base64url'), y: point.subarray(1 + curve.size).toString('base64url') },
      format: 'jwk',
    });
    return { publicKey, info: { kind: 'ec', curve: curve.crv } };
  } catch (err) {
    throw new PkiError('badPublicKey', 'public key cannot be decoded (invalid EC point)', { cause: err });
  }
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
