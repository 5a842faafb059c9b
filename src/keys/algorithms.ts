/**
 * What each KeyAlgorithm means in node:crypto and X.509 terms: how to generate
 * it, which hash it signs with, which AlgorithmIdentifier names its
 * signatures, and which KeyAlgorithm (if any) a public key is.
 */
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { KeyAlgorithm } from './signing-key.js';
import { describeKey, type PublicKeyInfo } from '../pki/public-key.js';

/** The hash node:crypto signs with for `algorithm` (null: Ed25519 hashes internally, RFC 8032). */
export function hashFor(algorithm: KeyAlgorithm): 'sha256' | 'sha384' | null {
  return signatureAlgorithmOf(algorithm).hash;
}

/** The X.509 signature AlgorithmIdentifier of a key: `oid`, and whether `parameters` is an explicit NULL. */
export interface SignatureAlgorithm {
  readonly oid: string;
  readonly hash: 'sha256' | 'sha384' | null;
  readonly paramsNull: boolean;
}

/**
 * The AlgorithmIdentifier of certificates, CRLs and OCSP responses signed by a
 * key of `algorithm`. RFC 5758 §3.2: ecdsa-with-SHA* omit the parameters.
 * RFC 4055 §5: sha256WithRSAEncryption carries NULL parameters. RFC 8410 §3:
 * id-Ed25519 omits them.
 */
export function signatureAlgorithmOf(algorithm: KeyAlgorithm): SignatureAlgorithm {
  switch (algorithm) {
    case 'ecdsa-p256':
      return { oid: '1.2.840.10045.4.3.2', hash: 'sha256', paramsNull: false };
    case 'ecdsa-p384':
      return { oid: '1.2.840.10045.4.3.3', hash: 'sha384', paramsNull: false };
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096':
      return { oid: '1.2.840.113549.1.1.11', hash: 'sha256', paramsNull: true };
    case 'ed25519':
      return { oid: '1.3.101.112', hash: null, paramsNull: false };
  }
}

/** A public (or private) key described in the terms key policy uses (the one description, from pki/). */
export type PublicKeyDescription = PublicKeyInfo;
export { describeKey as describePublicKey };

/**
 * The KeyAlgorithm `key` is, or its description when it is none of them (for
 * a policy check to say why it is refused). RSA counts only with e = 65537.
 */
export function keyAlgorithmOfPublicKey(key: KeyObject): KeyAlgorithm | PublicKeyDescription {
  const d = describeKey(key);
  switch (d.kind) {
    case 'rsa':
      if (d.publicExponent !== 65537n) return d;
      return d.bits === 2048 ? 'rsa-2048' : d.bits === 3072 ? 'rsa-3072' : d.bits === 4096 ? 'rsa-4096' : d;
    case 'ec':
      return d.curve === 'P-256' ? 'ecdsa-p256' : d.curve === 'P-384' ? 'ecdsa-p384' : d;
    case 'ed25519':
      return 'ed25519';
    case 'other':
      return d;
  }
}

const generateKeyPairAsync = promisify(generateKeyPair);

/**
 * Generates a private key of `algorithm` with OpenSSL's CSPRNG, off the event
 * loop (RSA-4096 takes about a second). RSA uses e = 65537 explicitly.
 */
export async function generatePrivateKey(algorithm: KeyAlgorithm): Promise<KeyObject> {
  switch (algorithm) {
    case 'ecdsa-p256':
      return (await generateKeyPairAsync('ec', { namedCurve: 'P-256' })).privateKey;
    case 'ecdsa-p384':
      return (await generateKeyPairAsync('ec', { namedCurve: 'P-384' })).privateKey;
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096':
      return (await generateKeyPairAsync('rsa', { modulusLength: Number(algorithm.slice(4)), publicExponent: 0x10001 })).privateKey;
    case 'ed25519':
      return (await generateKeyPairAsync('ed25519', {})).privateKey;
  }
}
