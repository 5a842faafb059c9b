/**
 * How a custodian proves who they are. Stored as JSON in Custodian.credential:
 *
 * ```
 * { "type": "passphrase", "kdf": { "alg": "scrypt", "N", "r", "p", "salt": b64(16) }, "hash": b64(32) }
 * { "type": "key", "algorithm": "ed25519" | "ecdsa-p256", "spki": b64(DER SubjectPublicKeyInfo) }
 * ```
 *
 * A passphrase is checked by deriving scrypt again and comparing in constant
 * time; a key holder signs the approval message (request id, operation hash,
 * custodian name) with the private key, which never reaches the CA machine.
 */
import { createPrivateKey, createPublicKey, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { PkiError } from '../errors/pki-error.js';

/** scrypt cost (RFC 7914 §2). */
export interface KdfParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/**
 * The passphrase KDF, given by cmd (the keystore's scrypt cost and bounds;
 * only ca and cmd import keys).
 */
export interface PassphraseKdf {
  /** Cost for new credentials. */
  readonly params: KdfParams;
  /** Whether stored parameters are within the bounds the keystore derives with. */
  paramsOk(params: KdfParams): boolean;
  /** scrypt(passphrase, salt, 32, params). */
  derive(passphrase: string, salt: Buffer, params: KdfParams): Promise<Buffer>;
}

/** Algorithms of custodian keys. */
export const custodianKeyAlgorithms = ['ed25519', 'ecdsa-p256'] as const;
export type CustodianKeyAlgorithm = (typeof custodianKeyAlgorithms)[number];

const b64 = (bytes?: number) =>
  z.string().refine((s) => {
    const b = Buffer.from(s, 'base64');
    return b.toString('base64') === s && (bytes === undefined || b.length === bytes);
  });

const credentialSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('passphrase'), kdf: z.object({ alg: z.literal('scrypt'), N: z.number(), r: z.number(), p: z.number(), salt: b64(16) }).strict(), hash: b64(32) }).strict(),
  z.object({ type: z.literal('key'), algorithm: z.enum(custodianKeyAlgorithms), spki: b64() }).strict(),
]);
/** A parsed credential. */
export type Credential = z.infer<typeof credentialSchema>;

/** Parses a stored credential (`keyIntegrity` when it does not match the format). */
export function parseCredential(name: string, json: string): Credential {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new PkiError('keyIntegrity', `custodian "${name}": stored credential is not JSON`, { cause: err });
  }
  const r = credentialSchema.safeParse(raw);
  if (!r.success) throw new PkiError('keyIntegrity', `custodian "${name}": stored credential does not match the format`, { cause: r.error });
  return r.data;
}

/** A new passphrase credential: scrypt at the KDF's cost under a fresh 16-byte salt. */
export async function passphraseCredential(kdf: PassphraseKdf, passphrase: string, salt: Buffer): Promise<Credential> {
  const hash = await kdf.derive(passphrase, salt, kdf.params);
  return { type: 'passphrase', kdf: { alg: 'scrypt', ...kdf.params, salt: salt.toString('base64') }, hash: hash.toString('base64') };
}

/** The algorithm of a custodian key, or `badPublicKey` for anything but Ed25519 and P-256. */
function algorithmOf(key: KeyObject): CustodianKeyAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256';
  throw new PkiError('badPublicKey', `a custodian key must be Ed25519 or ECDSA P-256, not ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''}`);
}

/** A key credential from a public key PEM; a private key is refused (it stays with its custodian). */
export function keyCredential(publicKeyPem: string): Credential {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(publicKeyPem)) throw new PkiError('badPublicKey', 'give the custodian\'s public key (openssl pkey -pubout), not the private key');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: publicKeyPem, format: 'pem' });
  } catch (err) {
    throw new PkiError('badPublicKey', 'not a PEM public key', { cause: err });
  }
  return { type: 'key', algorithm: algorithmOf(key), spki: key.export({ type: 'spki', format: 'der' }).toString('base64') };
}

/** The bytes a custodian signs: domain, version, request id, operation hash and their own name. */
export function approvalMessage(requestId: string, hash: string, custodian: string): Buffer {
  return Buffer.from(JSON.stringify(['trellis-quorum-approval', 1, requestId, hash, custodian]), 'utf8');
}

/** Signs the approval message with a custodian's private key PEM (PKCS#8, optionally encrypted with `keyPassphrase`). */
export function signApproval(privateKeyPem: string, keyPassphrase: string | undefined, requestId: string, hash: string, custodian: string): Buffer {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPassphrase === undefined ? { key: privateKeyPem, format: 'pem' } : { key: privateKeyPem, format: 'pem', passphrase: keyPassphrase });
  } catch (err) {
    throw new PkiError('badPublicKey', 'cannot read the custodian key file (a PEM private key; an encrypted one needs its passphrase)', { cause: err });
  }
  const msg = approvalMessage(requestId, hash, custodian);
  return algorithmOf(key) === 'ed25519' ? sign(null, msg, key) : sign('sha256', msg, { key, dsaEncoding: 'der' });
}

/** What a custodian gives to approve: their passphrase, or a signature over {@link approvalMessage}. */
export type ApprovalProof = { passphrase: string } | { signature: Buffer };

/**
 * Checks a proof against a credential: `true` only for the right passphrase
 * (compared in constant time) or a signature that verifies. A proof of the
 * other kind is `unauthorized`, naming what the custodian needs.
 */
export async function checkProof(kdf: PassphraseKdf, name: string, credential: Credential, proof: ApprovalProof, message: Buffer): Promise<boolean> {
  if (credential.type === 'passphrase') {
    if (!('passphrase' in proof)) throw new PkiError('unauthorized', `custodian "${name}" approves with a passphrase, not a key`);
    const params = { N: credential.kdf.N, r: credential.kdf.r, p: credential.kdf.p };
    if (!kdf.paramsOk(params)) throw new PkiError('keyIntegrity', `custodian "${name}": stored scrypt parameters are out of bounds`);
    const derived = await kdf.derive(proof.passphrase, Buffer.from(credential.kdf.salt, 'base64'), params);
    try {
      return timingSafeEqual(derived, Buffer.from(credential.hash, 'base64'));
    } finally {
      derived.fill(0);
    }
  }
  if (!('signature' in proof)) throw new PkiError('unauthorized', `custodian "${name}" approves with a key file (--key), not a passphrase`);
  return verifySignature(credential, proof.signature, message);
}

/** Whether `signature` verifies over `message` under a key credential. */
export function verifySignature(credential: Extract<Credential, { type: 'key' }>, signature: Buffer, message: Buffer): boolean {
  const key = createPublicKey({ key: Buffer.from(credential.spki, 'base64'), format: 'der', type: 'spki' });
  // node returns false (does not throw) for a signature that is not even DER.
  return credential.algorithm === 'ed25519' ? verify(null, message, key, signature) : verify('sha256', message, { key, dsaEncoding: 'der' }, signature);
}
