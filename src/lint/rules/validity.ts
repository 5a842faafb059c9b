import { Tag } from '../../pki/der.js';
import type { LintRule } from '../types.js';

/** RFC 5280 §4.1.2.5: notBefore precedes notAfter; UTCTime through 2049, GeneralizedTime from 2050. */
export const validityEncoding: LintRule = {
  id: 'e_validity_invalid',
  source: 'RFC 5280 §4.1.2.5',
  check: ({ cert }) => {
    if (cert.notAfter.getTime() <= cert.notBefore.getTime()) return 'notAfter is not after notBefore';
    for (const [name, d, tag] of [['notBefore', cert.notBefore, cert.notBeforeTag], ['notAfter', cert.notAfter, cert.notAfterTag]] as const) {
      const want = d.getUTCFullYear() < 2050 ? Tag.UTCTime : Tag.GeneralizedTime;
      if (tag !== want) return `${name} uses the wrong time type for ${d.getUTCFullYear()}`;
    }
    return null;
  },
};

/** RFC 5280 §6.1.3 (a)(2): a certificate outliving its issuer fails path validation after the issuer expires. */
export const validityWithinIssuer: LintRule = {
  id: 'e_validity_exceeds_issuer',
  source: 'RFC 5280 §6.1.3',
  check: ({ cert, issuer }) =>
    issuer && cert.notAfter.getTime() > issuer.notAfter.getTime() ? `notAfter ${cert.notAfter.toISOString()} is after the issuer's ${issuer.notAfter.toISOString()}` : null,
};
