/**
 * The closed set of error types that code below `http/` may throw. Each maps to
 * one RFC 8555 / RFC 9457 problem in `http/problem.ts`; `docs/errors.md` lists them all.
 */
export const errorTypes = [
  'malformed',
  'unauthorized',
  'forbidden',
  'badCSR',
  'badPublicKey',
  'rejectedIdentifier',
  'badProfile',
  'orderNotReady',
  'alreadyRevoked',
  'notFound',
  'conflict',
  'payloadTooLarge',
  'unsupportedMediaType',
  'badPassphrase',
  'keyIntegrity',
  'invalidConfig',
  'lintFailed',
  'serverInternal',
  // ACME (RFC 8555 §6.7, RFC 9773); validation failures carry the RFC's names.
  'badNonce',
  'badSignatureAlgorithm',
  'accountDoesNotExist',
  'externalAccountRequired',
  'rateLimited',
  'unsupportedIdentifier',
  'badRevocationReason',
  'incorrectResponse',
  'connection',
  'dns',
  'tls',
  'invalidContact',
  'alreadyReplaced',
  // draft-ietf-acme-device-attest.
  'badAttestationStatement',
] as const;

/** One of {@link errorTypes}. */
export type ErrorType = (typeof errorTypes)[number];

/** Extra members of the problem document and response headers some types need. */
export interface PkiErrorOptions {
  cause?: unknown;
  /** Seconds for a Retry-After header (rateLimited, tryLater-like answers). */
  retryAfterSeconds?: number;
  /** Extra problem members, e.g. `algorithms` for badSignatureAlgorithm (RFC 8555 §6.2). */
  extra?: Record<string, unknown>;
  /** RFC 8555 §6.7.1 subproblems, one per identifier. */
  subproblems?: { type: ErrorType; detail: string; identifier?: { type: string; value: string } }[];
}

/** An error with a closed type and a detail that is safe to show to a client (never key material). */
export class PkiError extends Error {
  readonly retryAfterSeconds: number | undefined;
  readonly extra: Record<string, unknown> | undefined;
  readonly subproblems: PkiErrorOptions['subproblems'];
  constructor(
    readonly type: ErrorType,
    detail: string,
    options?: PkiErrorOptions,
  ) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PkiError';
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.extra = options?.extra;
    this.subproblems = options?.subproblems;
  }
}

/** True when `err` is a PkiError, optionally of the given type. */
export function isPkiError(err: unknown, type?: ErrorType): err is PkiError {
  return err instanceof PkiError && (type === undefined || err.type === type);
}
