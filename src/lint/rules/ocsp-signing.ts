import { decodeExtKeyUsage } from '../../pki/extensions.js';
import { findExtension } from '../../pki/certificate.js';
import { OID } from '../../pki/oids.js';
import type { LintRule } from '../types.js';

/**
 * RFC 6960 §4.2.2.2: a delegated responder certificate carries id-kp-OCSPSigning;
 * §4.2.2.2.1: with id-pkix-ocsp-nocheck it cannot be revoked, so OCSPSigning
 * must not be mixed with other purposes and nocheck must not appear elsewhere.
 */
export const ocspSigning: LintRule = {
  id: 'e_ocsp_signing_misuse',
  source: 'RFC 6960 §4.2.2.2',
  check: ({ cert }) => {
    const eku = findExtension(cert, OID.extKeyUsage);
    const purposes = eku ? decodeExtKeyUsage(eku.valueDer) : [];
    const nocheck = !!findExtension(cert, OID.ocspNoCheck);
    const signer = purposes.includes(OID.OCSPSigning);
    if (signer && purposes.length > 1) return 'OCSPSigning combined with other extended key usages';
    if (nocheck && !signer) return 'id-pkix-ocsp-nocheck without OCSPSigning';
    return null;
  },
};
