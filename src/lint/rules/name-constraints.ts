import { decodeBasicConstraints } from '../../pki/extensions.js';
import { findExtension } from '../../pki/certificate.js';
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
