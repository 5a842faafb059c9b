/** Sends problem documents over express (the table lives in errors/problem.ts). */
import type { Response } from 'express';
import { PkiError } from '../errors/pki-error.js';
import { problemFor, type ProblemDocument } from '../errors/problem.js';

export { faultFields, problemFor, problems, type ProblemDocument } from '../errors/problem.js';

/** Writes the problem document (and Retry-After when the error carries one); a 5xx names only `requestId`. */
export function sendProblem(res: Response, err: unknown, flavour: 'api' | 'acme' = 'api', requestId?: string): ProblemDocument {
  const doc = problemFor(err, flavour, requestId);
  if (err instanceof PkiError && err.retryAfterSeconds !== undefined) res.set('Retry-After', String(err.retryAfterSeconds));
  res.status(doc.status).type('application/problem+json').send(JSON.stringify(doc));
  return doc;
}
