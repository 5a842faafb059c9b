/** Signature AlgorithmIdentifiers for the keys a CA may hold (RFC 5758 §3.2, RFC 4055 §5, RFC 8410 §3). */
import { derNull, oid, seq } from '../pki/der.js';
import { OID } from '../pki/oids.js';
import type { KeyAlgorithm } from '../keys/signing-key.js';

/**
 * AlgorithmIdentifier DER for certificates and CRLs signed by a key of this
 * algorithm. ECDSA and EdDSA omit parameters; sha256WithRSAEncryption carries NULL.
 */
export function signatureAlgorithmDer(algorithm: KeyAlgorithm): Buffer {
  switch (algorithm) {
    case 'ecdsa-p256':
      return seq(oid(OID.ecdsaWithSHA256));
    case 'ecdsa-p384':
      return seq(oid(OID.ecdsaWithSHA384));
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096':
      return seq(oid(OID.sha256WithRSA), derNull);
    case 'ed25519':
      return seq(oid(OID.ed25519));
  }
}
