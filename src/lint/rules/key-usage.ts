import { decodeBasicConstraints, decodeKeyUsage } from '../../pki/extensions.js';
import { findExtension } from '../../pki/certificate.js';
import { OID } from '../../pki/oids.js';
import type { LintRule } from '../types.js';

/**
 * RFC 5280 §4.2.1.3: CA certificates MUST have keyUsage with keyCertSign;
 * keyCertSign only when cA is TRUE; at least one bit set; SHOULD be critical.
 */
export const keyUsage: LintRule = {
  id: 'e_key_usage_invalid',
  source: 'RFC 5280 §4.2.1.3',
  check: ({ cert }) => {
    const ext = findExtension(cert, OID.keyUsage);
    const bcExt = findExtension(cert, OID.basicConstraints);
    const ca = bcExt ? decodeBasicConstraints(bcExt.valueDer).ca : false;
    if (!ext) return ca ? 'CA certificate without keyUsage' : null;
    const ku = decodeKeyUsage(ext.valueDer);
    if (ku.size === 0) return 'keyUsage with no bits set';
    if (ca && !ku.has('keyCertSign')) return 'CA certificate without keyCertSign';
    if (!ca && ku.has('keyCertSign')) return 'keyCertSign in a non-CA certificate';
    if (!ext.critical) return 'keyUsage should be critical';
    return null;
  },
};
