/**
 * Token objects of the PKCS#11 keystore: what each KeyAlgorithm is in
 * PKCS#11 terms, the key-pair templates, finding objects, and reading a
 * public key object back into an SPKI.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import os from 'node:os';
import pkcs11js from 'pkcs11js';
import { PkiError } from '../errors/pki-error.js';
import { oid, readOid, readOne, Tag, value } from '../pki/der.js';
import { call, CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA } from './pkcs11-token.js';
import type { KeyAlgorithm } from './signing-key.js';

type Handle = Buffer;

/** How a KeyAlgorithm is generated and used in a token. */
export interface TokenAlgorithm {
  readonly keyType: number;
  readonly generate: number;
  readonly sign: number;
  /** Hash computed here before CKM_ECDSA (which signs a digest); null when the mechanism hashes itself or needs none. */
  readonly preHash: 'sha256' | 'sha384' | null;
  /** Length of the raw signature the token returns. */
  readonly signatureBytes: number;
  /** DER of CKA_EC_PARAMS (a namedCurve OID) for EC keys. */
  readonly ecParams?: Buffer;
  readonly modulusBits?: number;
}

// RFC 5480 §2.1.1.1 namedCurve OIDs; RFC 8410 §3 id-Ed25519 (SoftHSM2 2.6 takes it as CKA_EC_PARAMS).
const curves = { p256: '1.2.840.10045.3.1.7', p384: '1.3.132.0.34', ed25519: '1.3.101.112' } as const;

/**
 * The token's view of `algorithm`. ECDSA uses CKM_ECDSA over our own
 * SHA-256/384 digest (CKM_ECDSA_SHA384 is not in every token, SoftHSM2 2.6
 * included); RSA uses CKM_SHA256_RSA_PKCS (PKCS#1 v1.5, RFC 8017 §8.2) with
 * e = 65537; Ed25519 uses CKM_EDDSA (pure EdDSA, PKCS#11 v3.0 §6.3.15).
 */
export function tokenAlgorithm(algorithm: KeyAlgorithm): TokenAlgorithm {
  switch (algorithm) {
    case 'ecdsa-p256':
      return { keyType: pkcs11js.CKK_EC, generate: pkcs11js.CKM_EC_KEY_PAIR_GEN, sign: pkcs11js.CKM_ECDSA, preHash: 'sha256', signatureBytes: 64, ecParams: oid(curves.p256) };
    case 'ecdsa-p384':
      return { keyType: pkcs11js.CKK_EC, generate: pkcs11js.CKM_EC_KEY_PAIR_GEN, sign: pkcs11js.CKM_ECDSA, preHash: 'sha384', signatureBytes: 96, ecParams: oid(curves.p384) };
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096': {
      const bits = Number(algorithm.slice(4));
      return { keyType: pkcs11js.CKK_RSA, generate: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN, sign: pkcs11js.CKM_SHA256_RSA_PKCS, preHash: null, signatureBytes: bits / 8, modulusBits: bits };
    }
    case 'ed25519':
      return { keyType: CKK_EC_EDWARDS, generate: CKM_EC_EDWARDS_KEY_PAIR_GEN, sign: CKM_EDDSA, preHash: null, signatureBytes: 64, ecParams: oid(curves.ed25519) };
  }
}

/**
 * CKA_ID of a key id: `p11:<hex>` is those octets (the form generate picks,
 * so `pkcs11-tool --id <hex>` and `pkcs11:id=…` URIs find the key); any
 * other id is its UTF-8 octets (ids callers choose, e.g. `pending-<ca>`).
 */
export function ckaIdOf(keyId: string): Buffer {
  const hex = /^p11:((?:[0-9a-f]{2}){1,64})$/.exec(keyId);
  return hex ? Buffer.from(hex[1]!, 'hex') : Buffer.from(keyId, 'utf8');
}

/** Key ids go into CKA_LABEL, messages and AAD: 1 to 200 characters without control characters. */
export function checkKeyId(keyId: string): void {
  // eslint-disable-next-line no-control-regex
  if (keyId.length === 0 || keyId.length > 200 || /[\u0000-\u001f\u007f]/.test(keyId)) {
    throw new PkiError('invalidConfig', 'a key id is 1 to 200 characters without control characters');
  }
}

/** The attributes naming one key: its label and id (both set from the key id, both matched on load). */
export const keyNameOf = (keyId: string): pkcs11js.Template => [
  { type: pkcs11js.CKA_LABEL, value: keyId },
  { type: pkcs11js.CKA_ID, value: ckaIdOf(keyId) },
];

/**
 * Key-pair templates for C_GenerateKeyPair: both halves are token objects
 * named by the key id. The private key is private (login needed), sensitive
 * and non-extractable (its value never leaves the token, and PKCS#11 forbids
 * undoing either), and may only sign; the public key may only verify.
 */
export function keyPairTemplates(t: TokenAlgorithm, keyId: string): { publicKey: pkcs11js.Template; privateKey: pkcs11js.Template } {
  const name = keyNameOf(keyId);
  const params: pkcs11js.Template = t.ecParams
    ? [{ type: pkcs11js.CKA_EC_PARAMS, value: t.ecParams }]
    : [{ type: pkcs11js.CKA_MODULUS_BITS, value: t.modulusBits! }, { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }];
  return {
    publicKey: [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: t.keyType },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: false },
      { type: pkcs11js.CKA_VERIFY, value: true },
      { type: pkcs11js.CKA_ENCRYPT, value: false },
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
      ...params,
      ...name,
    ],
    privateKey: [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: t.keyType },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_SIGN, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
      ...name,
    ],
  };
}

/** Every object matching `template` (C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal on one session). */
export function findObjects(pkcs11: pkcs11js.PKCS11, session: Handle, template: pkcs11js.Template): Handle[] {
  call('C_FindObjectsInit', () => pkcs11.C_FindObjectsInit(session, template));
  try {
    const found: Handle[] = [];
    for (let batch = call('C_FindObjects', () => pkcs11.C_FindObjects(session, 64)); batch.length > 0; batch = call('C_FindObjects', () => pkcs11.C_FindObjects(session, 64))) found.push(...batch);
    return found;
  } finally {
    call('C_FindObjectsFinal', () => pkcs11.C_FindObjectsFinal(session));
  }
}

/** Attribute values of one object, in the order asked. */
export function attributes(pkcs11: pkcs11js.PKCS11, session: Handle, object: Handle, types: number[]): Buffer[] {
  const got = call('C_GetAttributeValue', () => pkcs11.C_GetAttributeValue(session, object, types.map((type) => ({ type }))));
  return types.map((type) => got.find((a) => a.type === type)?.value ?? Buffer.alloc(0));
}

/** A CK_ULONG attribute value (native byte order and width). */
export function ulongOf(b: Buffer): number {
  const le = os.endianness() === 'LE';
  if (b.length === 8) return Number(le ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0));
  if (b.length === 4) return le ? b.readUInt32LE(0) : b.readUInt32BE(0);
  throw new PkiError('keyIntegrity', `a CK_ULONG attribute is ${b.length} octets`);
}

/** A CK_BBOOL attribute value. */
export const boolOf = (b: Buffer): boolean => b.length === 1 && b[0] !== 0;

/**
 * The public key of a public key object, as node:crypto reads it. EC points
 * come as the DER OCTET STRING PKCS#11 v2.40 §2.3.3 specifies, or raw from
 * tokens that skip the wrapping; both are accepted.
 */
export function readPublicKey(pkcs11: pkcs11js.PKCS11, session: Handle, object: Handle, what: string): KeyObject {
  const [keyTypeDer] = attributes(pkcs11, session, object, [pkcs11js.CKA_KEY_TYPE]);
  const keyType = ulongOf(keyTypeDer!);
  try {
    if (keyType === pkcs11js.CKK_RSA) {
      const [n, e] = attributes(pkcs11, session, object, [pkcs11js.CKA_MODULUS, pkcs11js.CKA_PUBLIC_EXPONENT]);
      return createPublicKey({ key: { kty: 'RSA', n: n!.toString('base64url'), e: e!.toString('base64url') }, format: 'jwk' });
    }
    if (keyType === pkcs11js.CKK_EC || keyType === CKK_EC_EDWARDS) {
      const [params, pointDer] = attributes(pkcs11, session, object, [pkcs11js.CKA_EC_PARAMS, pkcs11js.CKA_EC_POINT]);
      const curve = readOid(readOne(params!, Tag.OID));
      if (keyType === CKK_EC_EDWARDS) {
        if (curve !== curves.ed25519) throw new PkiError('badPublicKey', `${what} is on Edwards curve ${curve}, not Ed25519`);
        return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: unwrapPoint(pointDer!, 32).toString('base64url') }, format: 'jwk' });
      }
      const size = curve === curves.p256 ? 32 : curve === curves.p384 ? 48 : 0;
      if (size === 0) throw new PkiError('badPublicKey', `${what} is on curve ${curve}, not P-256 or P-384`);
      const point = unwrapPoint(pointDer!, 1 + 2 * size);
      if (point[0] !== 0x04) throw new PkiError('keyIntegrity', `${what}: the EC point is not uncompressed`);
      const x = point.subarray(1, 1 + size).toString('base64url');
      const y = point.subarray(1 + size).toString('base64url');
      return createPublicKey({ key: { kty: 'EC', crv: size === 32 ? 'P-256' : 'P-384', x, y }, format: 'jwk' });
    }
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('keyIntegrity', `${what}: the token's public key does not parse`, { cause: new Error(String((err as Error).message)) });
  }
  throw new PkiError('badPublicKey', `${what} has key type 0x${keyType.toString(16)}, not RSA, EC or EC_EDWARDS`);
}

/** A point of `length` octets, raw or wrapped in a DER OCTET STRING. */
function unwrapPoint(b: Buffer, length: number): Buffer {
  if (b.length === length) return b;
  const inner = value(readOne(b, Tag.OCTET_STRING));
  if (inner.length !== length) throw new PkiError('keyIntegrity', `an EC point is ${inner.length} octets, not ${length}`);
  return inner;
}
