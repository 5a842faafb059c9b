/**
 * The validation authority's public surface (RFC 8555 §8, RFC 8737, RFC
 * 8738): what the RA calls, and the CIDR parsing that `trellis serve` uses to
 * check `--acme-allow-address` at start (`parseCidrs` throws `invalidConfig`).
 *
 * How a validation runs, in short (details in each file):
 * - one budget (`timeoutMs`, default 10 s) covers DNS, every connection and
 *   every redirect; each TCP connect also has `connectTimeoutMs` (5 s);
 * - DNS names are resolved (A, then AAAA) through the configured resolver,
 *   once per validation; IP identifiers skip DNS (RFC 8738 §4);
 * - every address passes the address policy before it is connected to, and
 *   the connection goes to that address, with the name in Host / SNI;
 * - one attempt per address family: the first permitted IPv4 address, then,
 *   if it cannot be connected to, the first permitted IPv6 address;
 * - http-01 follows at most `maxRedirects` (10) redirects, only to `http:` on
 *   the http-01 port and `https:` on the tls-alpn-01 port, never back to a
 *   URL already fetched, and reads at most `maxBodyBytes` (8 KiB);
 * - tls-alpn-01 offers only acme-tls/1, TLS 1.2 or higher, and checks the
 *   single SAN and the critical acmeIdentifier extension.
 */
export { createValidator, validatorDefaults } from './validator.js';
export { createAddressPolicy, parseCidr, parseCidrs, cidrContains, deniedRanges } from './address-policy.js';
export type { AddressDecision, AddressPolicy, Cidr, DeniedRange } from './address-policy.js';
export { parseResolverAddress } from './resolve.js';
export type {
  ChallengeValidator,
  ValidationChallengeType,
  ValidationError,
  ValidationErrorType,
  ValidationIdentifier,
  ValidationRecord,
  ValidationRequest,
  ValidationResult,
  ValidatorOptions,
} from './types.js';
