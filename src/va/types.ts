/**
 * The validation authority's contract with its one caller, the registration
 * authority: what to validate (RFC 8555 §8 http-01, RFC 8737 tls-alpn-01, for
 * the identifier types of RFC 8555 §9.7.7 and RFC 8738) and how it went.
 */
import type { Clock } from '../clock/clock.js';
import type { ErrorType } from '../errors/pki-error.js';

/** The challenge types this validator implements. */
export type ValidationChallengeType = 'http-01' | 'tls-alpn-01';

/** An identifier to validate; DNS names without a wildcard label (RFC 8555 §7.1.3: the RA strips `*.`). */
export interface ValidationIdentifier {
  type: 'dns' | 'ip';
  value: string;
}

/** One challenge to check. `keyAuthorization` is `token || '.' || base64url(JWK thumbprint)` (RFC 8555 §8.1). */
export interface ValidationRequest {
  type: ValidationChallengeType;
  identifier: ValidationIdentifier;
  /** base64url without padding (RFC 8555 §8.3, RFC 8737 §3). */
  token: string;
  keyAuthorization: string;
}

/** The Trellis error types a validation can end with (RFC 8555 §6.7 names). */
export type ValidationErrorType = Extract<ErrorType, 'connection' | 'dns' | 'tls' | 'incorrectResponse' | 'unauthorized' | 'malformed'>;

/** Why a validation failed; `detail` says what was fetched, from which address, and what was wrong. */
export interface ValidationError {
  type: ValidationErrorType;
  detail: string;
}

/**
 * One connection the validator made (one per redirect hop for http-01), kept
 * for the audit trail like Boulder's validationRecord.
 */
export interface ValidationRecord {
  /** The URL fetched (http-01 only). */
  url?: string;
  /** The DNS name or IP literal connected to. */
  hostname: string;
  port: number;
  /** Every address the name resolved to (the literal itself for an IP), IPv4 first. */
  addressesResolved: string[];
  /** The address actually connected to. */
  addressUsed: string;
}

/** The outcome of one validation; `records` lists the connections that were made, in order. */
export type ValidationResult =
  | { status: 'valid'; validatedAt: Date; address: string; records: ValidationRecord[] }
  | { status: 'invalid'; error: ValidationError; records: ValidationRecord[] };

/** Validator settings; all optional, parsed once by `createValidator` (a bad value throws `invalidConfig`). */
export interface ValidatorOptions {
  /** Port for http-01 and for `http:` redirect targets; default 80 (RFC 8555 §8.3). */
  http01Port?: number;
  /** Port for tls-alpn-01 and for `https:` redirect targets; default 443 (RFC 8737 §3). */
  tlsAlpn01Port?: number;
  /** `HOST:PORT` (or `[V6]:PORT`, or a bare address for port 53) of the DNS server; default the system's configured servers. */
  resolver?: string;
  /** CIDRs (or bare addresses) that may be connected to even though the default deny list covers them. */
  allow?: readonly string[];
  /** Total budget for one validation, DNS and every redirect hop included; default 10 000. */
  timeoutMs?: number;
  /** Budget for establishing one TCP connection; default 5 000, never more than what is left of `timeoutMs`. */
  connectTimeoutMs?: number;
  /** Redirects http-01 follows at most; default 10. */
  maxRedirects?: number;
  /** Largest http-01 body read; default 8 KiB (a key authorization is about 87 bytes). */
  maxBodyBytes?: number;
  /** Source of `validatedAt`; default the system clock. */
  clock?: Clock;
}

/** Checks challenges. `validate` resolves `invalid` for every remote failure and never rejects for one. */
export interface ChallengeValidator {
  validate(req: ValidationRequest): Promise<ValidationResult>;
}
