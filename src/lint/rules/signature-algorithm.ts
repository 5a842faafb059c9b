import type { LintRule } from '../types.js';

/** RFC 5280 §4.1.1.2 / §4.1.2.3: tbsCertificate.signature MUST equal signatureAlgorithm. */
export const signatureAlgorithmMatch: LintRule = {
  id: 'e_signature_algorithm_mismatch',
  source: 'RFC 5280 §4.1.2.3',
  check: ({ cert }) => (cert.tbsSignature.der.equals(cert.signatureAlgorithm.der) ? null : 'TBS signature algorithm differs from the outer one'),
};
