/** Signature AlgorithmIdentifiers (RFC 5758, RFC 4055, RFC 8410) and verification with node:crypto. */
import { verify, type KeyObject } from 'node:crypto';
import { OID } from './oids.js';
import { PkiError } from '../errors/pki-error.js';

/** Hash per accepted signature algorithm; null = pure EdDSA. SHA-1 and RSA-PSS are not accepted. */
const hashOf: Record<string, 'sha256' | 'sha384' | 'sha512' | null> = {
  [OID.ecdsaWithSHA256]: 'sha256',
  [OID.ecdsaWithSHA384]: 'sha384',
  [OID.ecdsaWithSHA512]: 'sha512',
  [OID.sha256WithRSA]: 'sha256',
  [OID.sha384WithRSA]: 'sha384',
  [OID.sha512WithRSA]: 'sha512',
  [OID.ed25519]: null,
};

/** Key type each signature algorithm needs (so an RSA OID over an EC key is refused, not "verified"). */
const keyTypeOf: Record<string, string> = {
  [OID.ecdsaWithSHA256]: 'ec', [OID.ecdsaWithSHA384]: 'ec', [OID.ecdsaWithSHA512]: 'ec',
  [OID.sha256WithRSA]: 'rsa', [OID.sha384WithRSA]: 'rsa', [OID.sha512WithRSA]: 'rsa',
  [OID.ed25519]: 'ed25519',
};

/** Verifies `signature` over `data`; false on mismatch, PkiError for unsupported algorithms. */
export function verifySignature(algOid: string, publicKey: KeyObject, data: Uint8Array, signature: Uint8Array, what: string): boolean {
  if (!(algOid in hashOf)) {
    const why = algOid === OID.sha1WithRSA ? 'SHA-1 signatures are not accepted' : algOid === OID.rsassaPss ? 'RSA-PSS signatures are not supported' : `unsupported signature algorithm ${algOid}`;
    throw new PkiError('badCSR', `${what}: ${why}`);
  }
  if (keyTypeOf[algOid] !== publicKey.asymmetricKeyType) return false;
  try {
    return verify(hashOf[algOid] ?? null, data, { key: publicKey, dsaEncoding: 'der' }, signature);
  } catch {
    // OpenSSL raises on structurally invalid signatures (e.g. bad ECDSA DER): that is a failed verification.
    return false;
  }
}
