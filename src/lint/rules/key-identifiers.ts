import { decodeAuthorityKeyIdentifier, decodeBasicConstraints, decodeSubjectKeyIdentifier } from '../../pki/extensions.js';
import { findExtension } from '../../pki/certificate.js';
import { OID } from '../../pki/oids.js';
import type { LintRule } from '../types.js';

/** RFC 5280 §4.2.1.2: CA certificates MUST have a subject key identifier (and leaves SHOULD). */
export const subjectKeyIdentifier: LintRule = {
  id: 'e_subject_key_identifier_missing',
  source: 'RFC 5280 §4.2.1.2',
  check: ({ cert }) => {
    const ski = findExtension(cert, OID.subjectKeyIdentifier);
    if (!ski) return 'no subjectKeyIdentifier';
    if (ski.critical) return 'subjectKeyIdentifier MUST be non-critical';
    return decodeSubjectKeyIdentifier(ski.valueDer).length === 0 ? 'empty subjectKeyIdentifier' : null;
  },
};

/** RFC 5280 §4.2.1.1: AKI MUST be present except in self-signed CA certificates, non-critical, and match the issuer's SKI. */
export const authorityKeyIdentifier: LintRule = {
  id: 'e_authority_key_identifier_invalid',
  source: 'RFC 5280 §4.2.1.1',
  check: ({ cert, issuer }) => {
    const aki = findExtension(cert, OID.authorityKeyIdentifier);
    if (!issuer) return null;
    if (!aki) return 'no authorityKeyIdentifier';
    if (aki.critical) return 'authorityKeyIdentifier MUST be non-critical';
    const issuerSki = findExtension(issuer, OID.subjectKeyIdentifier);
    const keyId = decodeAuthorityKeyIdentifier(aki.valueDer);
    if (issuerSki && keyId && !decodeSubjectKeyIdentifier(issuerSki.valueDer).equals(keyId)) return "authorityKeyIdentifier does not match the issuer's subjectKeyIdentifier";
    const bc = findExtension(issuer, OID.basicConstraints);
    if (!bc || !decodeBasicConstraints(bc.valueDer).ca) return 'issuer is not a CA';
    return null;
  },
};
