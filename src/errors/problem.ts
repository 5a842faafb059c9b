/**
 * Errors to problem documents: RFC 9457 (formerly RFC 7807) for the admin API,
 * RFC 8555 §6.7 types for ACME. The Record makes a forgotten mapping a compile error.
 */
import { PkiError, type ErrorType } from './pki-error.js';

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
  badNonce: { acme: 'badNonce', status: 400, title: 'Bad or replayed nonce' },
  badSignatureAlgorithm: { acme: 'badSignatureAlgorithm', status: 400, title: 'Unsupported JWS algorithm' },
  accountDoesNotExist: { acme: 'accountDoesNotExist', status: 400, title: 'No such account' },
  externalAccountRequired: { acme: 'externalAccountRequired', status: 400, title: 'External account binding required' },
  rateLimited: { acme: 'rateLimited', status: 429, title: 'Rate limit exceeded' },
  unsupportedIdentifier: { acme: 'unsupportedIdentifier', status: 400, title: 'Identifier type not supported' },
  badRevocationReason: { acme: 'badRevocationReason', status: 400, title: 'Revocation reason not allowed' },
  incorrectResponse: { acme: 'incorrectResponse', status: 403, title: 'Challenge response did not match' },
  connection: { acme: 'connection', status: 400, title: 'Could not connect to the validation target' },
  dns: { acme: 'dns', status: 400, title: 'DNS lookup failed' },
  tls: { acme: 'tls', status: 400, title: 'TLS error during validation' },
  invalidContact: { acme: 'invalidContact', status: 400, title: 'Contact URL refused' },
  alreadyReplaced: { acme: 'alreadyReplaced', status: 409, title: 'Certificate already replaced' },
};

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** RFC 8555 §6.7.1. */
  subproblems?: { type: string; detail: string; identifier?: { type: string; value: string } }[];
  [member: string]: unknown;
}

/**
 * The problem for any thrown value. Only PkiError details reach the client;
 * anything else becomes serverInternal and its detail stays in the log.
 */
export function problemFor(err: unknown, flavour: 'api' | 'acme' = 'api'): ProblemDocument {
  const e = err instanceof PkiError ? err : null;
  const type: ErrorType = e?.type ?? 'serverInternal';
  const p = problems[type];
  const typeUri = (t: ErrorType) => (flavour === 'acme' ? `urn:ietf:params:acme:error:${problems[t].acme}` : `urn:trellis:problem:${t}`);
  return {
    ...e?.extra,
    type: typeUri(type),
    title: p.title,
    status: p.status,
    detail: e ? e.message : 'internal error; see the server log',
    ...(e?.subproblems?.length ? { subproblems: e.subproblems.map((sp) => ({ ...sp, type: typeUri(sp.type) })) } : {}),
  };
}

/** body-parser errors carry a `type`; turn them into precise problems (anything else is returned unchanged). */
export function fromBodyParserError(err: unknown): unknown {
  const e = err as { type?: string };
  if (e?.type === 'entity.too.large') return new PkiError('payloadTooLarge', 'request body exceeds the size limit');
  if (e?.type === 'entity.parse.failed') return new PkiError('malformed', 'request body is not valid JSON');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return new PkiError('unsupportedMediaType', 'unsupported body encoding');
  if (e?.type === 'request.aborted') return new PkiError('malformed', 'request aborted');
  return err;
}
