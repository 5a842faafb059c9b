/** Pre-issuance lints run on the exact to-be-signed certificate (one rule per file under rules/). */
import { PkiError } from '../errors/pki-error.js';
import { dnsNameNumericTld, ipAddressUnspecified } from './rules/address-like-names.js';
import { basicConstraints } from './rules/basic-constraints.js';
import { caCertificate, signatureAlgorithmAllowed } from './rules/ca-certificate.js';
import { extensionUnique } from './rules/extension-unique.js';
import { issuerName } from './rules/issuer-name.js';
import { authorityKeyIdentifier, subjectKeyIdentifier } from './rules/key-identifiers.js';
import { keyUsage } from './rules/key-usage.js';
import { nameConstraints, nameConstraintsSatisfied } from './rules/name-constraints.js';
import { ocspSigning } from './rules/ocsp-signing.js';
import { serialNumber } from './rules/serial.js';
import { signatureAlgorithmMatch } from './rules/signature-algorithm.js';
import { subjectAltName } from './rules/subject-alt-name.js';
import { validityEncoding, validityWithinIssuer } from './rules/validity.js';
import { versionV3 } from './rules/version.js';
import type { LintFinding, LintInput, LintRule } from './types.js';

export type { LintFinding, LintInput, LintRule } from './types.js';

/** Every rule, in the order findings are reported. */
export const lintRules: readonly LintRule[] = [
  versionV3, serialNumber, signatureAlgorithmMatch, issuerName, validityEncoding, validityWithinIssuer,
  extensionUnique, basicConstraints, keyUsage, subjectKeyIdentifier, authorityKeyIdentifier,
  subjectAltName, nameConstraints, ocspSigning,
  nameConstraintsSatisfied,
  dnsNameNumericTld, ipAddressUnspecified,
];

/**
 * The rules for a CA certificate Trellis did not sign but will sign with (an
 * issuing CA imported from an external root), checked against that root:
 * every structural rule above, that it is a CA with keyCertSign and cRLSign,
 * and a SHA-2 or EdDSA signature. Serial length is left out: the entropy of
 * a serial is the signing CA's duty (CA/B BR §7.1), not the subject's.
 */
export const caCertificateRules: readonly LintRule[] = [
  versionV3, signatureAlgorithmMatch, signatureAlgorithmAllowed, issuerName, validityEncoding, validityWithinIssuer,
  extensionUnique, caCertificate, basicConstraints, keyUsage, subjectKeyIdentifier, authorityKeyIdentifier,
  subjectAltName, nameConstraints, ocspSigning, nameConstraintsSatisfied,
];

/** Runs every rule; a rule that throws (undecodable extension) is itself a finding. */
export function runLints(input: LintInput, rules: readonly LintRule[] = lintRules): LintFinding[] {
  const findings: LintFinding[] = [];
  for (const rule of rules) {
    let detail: string | null;
    try {
      detail = rule.check(input);
    } catch (err) {
      detail = `rule failed to decode the certificate: ${(err as Error).message}`;
    }
    if (detail !== null) findings.push({ id: rule.id, source: rule.source, detail });
  }
  return findings;
}

/** Throws `lintFailed` listing every error finding (warnings, w_*, pass). */
export function assertLintClean(input: LintInput, rules?: readonly LintRule[]): LintFinding[] {
  const findings = runLints(input, rules);
  throwOnErrors(findings, 'pre-issuance lint failed');
  return findings;
}

const findingsOfError = new WeakMap<PkiError, LintFinding[]>();

/**
 * Throws `lintFailed` when `findings` hold an error (e_*): the message lists
 * each rule id and detail, and {@link lintFindingsOf} gives the findings back
 * (for the audit event). `what` starts the message ("CRL lint failed").
 */
export function throwOnErrors(findings: readonly LintFinding[], what: string): void {
  const errors = findings.filter((f) => f.id.startsWith('e_'));
  if (errors.length === 0) return;
  const err = new PkiError('lintFailed', `${what}: ${errors.map((f) => `${f.id} (${f.detail})`).join('; ')}`);
  findingsOfError.set(err, errors);
  throw err;
}

/** The error findings behind a `lintFailed` error thrown here; null for any other error. */
export function lintFindingsOf(err: unknown): LintFinding[] | null {
  return err instanceof PkiError ? (findingsOfError.get(err) ?? null) : null;
}
