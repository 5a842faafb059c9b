import { decodeBasicConstraints, decodeKeyUsage } from '../../pki/extensions.js';
import { findExtension } from '../../pki/certificate.js';
import { OID } from '../../pki/oids.js';
import type { LintRule } from '../types.js';

/**
 * For a certificate that must be a CA (an issuing CA imported from an
 * external root): RFC 5280 §4.2.1.9, basicConstraints present, critical,
 * cA TRUE; §4.2.1.3, keyUsage present with keyCertSign (and cRLSign: Trellis
 * signs its CRLs with the CA key, §5). The general rules only check these
 * when the certificate says it is a CA; this one insists that it does.
 */
export const caCertificate: LintRule = {
  id: 'e_ca_certificate_invalid',
  source: 'RFC 5280 §4.2.1.9, §4.2.1.3',
  check: ({ cert }) => {
    const bc = findExtension(cert, OID.basicConstraints);
    if (!bc) return 'no basicConstraints: not a CA certificate';
    if (!decodeBasicConstraints(bc.valueDer).ca) return 'basicConstraints cA is not TRUE';
    if (!bc.critical) return 'basicConstraints MUST be critical in a CA certificate';
    const ku = findExtension(cert, OID.keyUsage);
    if (!ku) return 'no keyUsage: a CA certificate needs keyCertSign';
    const usages = decodeKeyUsage(ku.valueDer);
    if (!usages.has('keyCertSign')) return 'keyUsage without keyCertSign';
    if (!usages.has('cRLSign')) return 'keyUsage without cRLSign: the CA could not sign its CRLs';
    return null;
  },
};

/** Signature algorithms Trellis accepts in a chain it serves: SHA-2 ECDSA and RSA (PKCS#1 v1.5, PSS), Ed25519. */
const allowed = new Set<string>([
  OID.ecdsaWithSHA256, OID.ecdsaWithSHA384, OID.ecdsaWithSHA512, OID.sha256WithRSA, OID.sha384WithRSA, OID.sha512WithRSA, OID.rsassaPss, OID.ed25519,
]);

/** CA/B BR §7.1.3.2: no SHA-1 (or anything weaker) in a certificate's signature. */
export const signatureAlgorithmAllowed: LintRule = {
  id: 'e_signature_algorithm_not_allowed',
  source: 'CA/B BR §7.1.3.2',
  check: ({ cert }) => (allowed.has(cert.signatureAlgorithm.oid) ? null : `signature algorithm ${cert.signatureAlgorithm.oid} is not allowed`),
};
