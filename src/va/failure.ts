/**
 * The error the validation steps throw internally. `validator.ts` turns it
 * into an `invalid` result; it never leaves `src/va`.
 */
import type { ValidationErrorType } from './types.js';

/** A validation that failed for a reason the ACME client should see. */
export class ValidationFailure extends Error {
  constructor(
    readonly type: ValidationErrorType,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(detail, options);
    this.name = 'ValidationFailure';
  }
}

/** The `code` of a Node system error (`ECONNREFUSED`), else its message. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
