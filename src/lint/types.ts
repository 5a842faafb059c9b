import type { ParsedCertificate } from '../pki/certificate.js';

/** What a lint sees: the exact certificate to be signed (its TBS as it will be signed, with an empty signature value) and its issuer. */
export interface LintInput {
  cert: ParsedCertificate;
  /** The issuing CA certificate; null when the certificate is self-signed. */
  issuer: ParsedCertificate | null;
  /** The CA certificates above the issuer (its parent first, up to the root when known), for rules over the whole chain. */
  chain?: readonly ParsedCertificate[];
}

/**
 * One pre-issuance lint. `id` starts with e_ (error: blocks issuance) or w_
 * (warning: recorded), `source` cites the rule. `check` returns a finding or null.
 */
export interface LintRule {
  id: string;
  source: string;
  check(input: LintInput): string | null;
}

export interface LintFinding {
  id: string;
  source: string;
  detail: string;
}
