/**
 * Errors to problem documents: RFC 9457 (formerly RFC 7807) for the admin API,
 * RFC 8555 §6.7 types for ACME. The Record makes a forgotten mapping a compile error.
 */
import type { Response } from 'express';
import { PkiError, type ErrorType } from '../errors/pki-error.js';

export const problems: Record<ErrorType, { acme: string; status: number; title: string }> = {
  malformed: { acme: 'malformed', status: 400, title: 'Malformed request' },
  unauthorized: { acme: 'unauthorized', status: 401, title: 'Unauthorized' },
  forbidden: { acme: 'unauthorized', status: 403, title: 'Forbidden' },
  badCSR: { acme: 'badCSR', status: 400, title: 'Bad certificate signing request' },
  badPublicKey: { acme: 'badPublicKey', status: 400, title: 'Public key refused' },
  rejectedIdentifier: { acme: 'rejectedIdentifier', status: 400, title: 'Identifier refused by policy' },
  badProfile: { acme: 'malformed', status: 400, title: 'Bad or unknown profile' },
  orderNotReady: { acme: 'orderNotReady', status: 403, title: 'Order not ready' },
  alreadyRevoked: { acme: 'alreadyRevoked', status: 400, title: 'Already revoked' },
  notFound: { acme: 'malformed', status: 404, title: 'Not found' },
  conflict: { acme: 'malformed', status: 409, title: 'Conflict' },
  payloadTooLarge: { acme: 'malformed', status: 413, title: 'Request body too large' },
  unsupportedMediaType: { acme: 'malformed', status: 415, title: 'Unsupported media type' },
  badPassphrase: { acme: 'serverInternal', status: 500, title: 'CA key locked' },
  keyIntegrity: { acme: 'serverInternal', status: 500, title: 'CA key integrity failure' },
  invalidConfig: { acme: 'serverInternal', status: 500, title: 'Server misconfigured' },
  lintFailed: { acme: 'serverInternal', status: 500, title: 'Pre-issuance lint failed' },
  serverInternal: { acme: 'serverInternal', status: 500, title: 'Internal error' },
};

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
}

/**
 * The problem for any thrown value. Only PkiError details reach the client;
 * anything else becomes serverInternal and its detail stays in the log.
 */
export function problemFor(err: unknown, flavour: 'api' | 'acme' = 'api'): ProblemDocument {
  const e = err instanceof PkiError ? err : null;
  const type: ErrorType = e?.type ?? 'serverInternal';
  const p = problems[type];
  return {
    type: flavour === 'acme' ? `urn:ietf:params:acme:error:${p.acme}` : `urn:trellis:problem:${type}`,
    title: p.title,
    status: p.status,
    detail: e ? e.message : 'internal error; see the server log',
  };
}

export function sendProblem(res: Response, err: unknown, flavour: 'api' | 'acme' = 'api'): ProblemDocument {
  const doc = problemFor(err, flavour);
  res.status(doc.status).type('application/problem+json').send(JSON.stringify(doc));
  return doc;
}
