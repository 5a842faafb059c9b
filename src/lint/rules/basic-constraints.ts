import { decodeBasicConstraints, decodeKeyUsage } from '../../pki/extensions.js';
import { findExtension } from '../../pki/certificate.js';
import { OID } from '../../pki/oids.js';
import type { LintRule } from '../types.js';

/**
 * RFC 5280 §4.2.1.9: CA certificates MUST carry a critical basicConstraints
 * with cA TRUE; pathLenConstraint only when cA is TRUE and keyCertSign is set.
 */
export const basicConstraints: LintRule = {
  id: 'e_basic_constraints_invalid',
  source: 'RFC 5280 §4.2.1.9',
  check: ({ cert }) => {
    const ext = findExtension(cert, OID.basicConstraints);
    const ku = findExtension(cert, OID.keyUsage);
    const certSign = ku ? decodeKeyUsage(ku.valueDer).has('keyCertSign') : false;
    if (!ext) return certSign ? 'keyCertSign without basicConstraints' : null;
    const bc = decodeBasicConstraints(ext.valueDer);
    if (bc.ca && !ext.critical) return 'basicConstraints MUST be critical in a CA certificate';
    if (bc.pathLen !== undefined && (!bc.ca || !certSign)) return 'pathLenConstraint without cA and keyCertSign';
    return null;
  },
};
