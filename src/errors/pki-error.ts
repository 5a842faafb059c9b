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
] as const;

/** One of {@link errorTypes}. */
export type ErrorType = (typeof errorTypes)[number];

/** An error with a closed type and a detail that is safe to show to a client (never key material). */
export class PkiError extends Error {
  constructor(
    readonly type: ErrorType,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(detail, options);
    this.name = 'PkiError';
  }
}

/** True when `err` is a PkiError, optionally of the given type. */
export function isPkiError(err: unknown, type?: ErrorType): err is PkiError {
  return err instanceof PkiError && (type === undefined || err.type === type);
}
