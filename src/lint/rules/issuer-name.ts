import type { LintRule } from '../types.js';

/** RFC 5280 §4.1.2.4: the issuer field MUST be non-empty and equal the issuer's subject (byte copy keeps chaining exact). */
export const issuerName: LintRule = {
  id: 'e_issuer_name_mismatch',
  source: 'RFC 5280 §4.1.2.4, §7.1',
  check: ({ cert, issuer }) => {
    if (cert.issuer.length === 0) return 'empty issuer name';
    const expected = issuer ? issuer.subjectDer : cert.subjectDer;
    return cert.issuerDer.equals(expected) ? null : "issuer name differs from the issuer's subject";
  },
};
