import { decodeBasicConstraints } from '../../pki/extensions.js';
import { findExtension } from '../../pki/certificate.js';
import { constrainedNamesOfCertificate, constrainingCaOf, findNameConstraintViolation, type ConstrainingCa } from '../../pki/name-constraints.js';
import { OID } from '../../pki/oids.js';
import type { LintRule } from '../types.js';

/** RFC 5280 §4.2.1.10: only in CA certificates, and MUST be critical. */
export const nameConstraints: LintRule = {
  id: 'e_name_constraints_invalid',
  source: 'RFC 5280 §4.2.1.10',
  check: ({ cert }) => {
    const ext = findExtension(cert, OID.nameConstraints);
    if (!ext) return null;
    const bc = findExtension(cert, OID.basicConstraints);
    if (!bc || !decodeBasicConstraints(bc.valueDer).ca) return 'nameConstraints in a non-CA certificate';
    return ext.critical ? null : 'nameConstraints MUST be critical';
  },
};

/**
 * RFC 5280 §4.2.1.10, §6.1.3 (b)-(c): the subject and SANs of the certificate
 * about to be signed lie within the name constraints of its issuer and of
 * every CA above it (src/pki/name-constraints.ts has the matching rules). The
 * CA core refuses such requests first (ca/policy.ts); this re-checks the TBS itself.
 */
export const nameConstraintsSatisfied: LintRule = {
  id: 'e_name_constraints_violated',
  source: 'RFC 5280 §4.2.1.10',
  check: ({ cert, issuer, chain }) => {
    if (!issuer) return null;
    const cas = [issuer, ...(chain ?? [])].map(constrainingCaOf).filter((c): c is ConstrainingCa => c !== null);
    if (cas.length === 0) return null;
    return findNameConstraintViolation(constrainedNamesOfCertificate(cert), cas)?.detail ?? null;
  },
};
