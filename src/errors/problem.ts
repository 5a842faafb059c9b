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
  badAttestationStatement: { acme: 'badAttestationStatement', status: 400, title: 'Bad attestation statement' },
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

/** The detail of every 5xx problem: nothing about the fault itself, only the id to find it in the log. */
export const internalErrorDetail = (requestId: string | undefined): string =>
  requestId ? `internal error; quote request id ${requestId}` : 'internal error; see the server log';

/**
 * The problem for any thrown value. Client errors (4xx) carry the PkiError's
 * detail. Server faults (5xx: lintFailed, keyIntegrity, invalidConfig,
 * badPassphrase, serverInternal, and anything that is not a PkiError) are
 * one generic serverInternal problem that names only the request id: their
 * messages (key ids, lint findings, configuration text) stay in the log.
 */
export function problemFor(err: unknown, flavour: 'api' | 'acme' = 'api', requestId?: string): ProblemDocument {
  const e = err instanceof PkiError ? err : null;
  const type: ErrorType = e?.type ?? 'serverInternal';
  const p = problems[type];
  const typeUri = (t: ErrorType) => (flavour === 'acme' ? `urn:ietf:params:acme:error:${problems[t].acme}` : `urn:trellis:problem:${t}`);
  if (p.status >= 500) {
    return { type: typeUri('serverInternal'), title: problems.serverInternal.title, status: p.status, detail: internalErrorDetail(requestId) };
  }
  return {
    ...e?.extra,
    type: typeUri(type),
    title: p.title,
    status: p.status,
    detail: e ? e.message : 'internal error; see the server log',
    ...(e?.subproblems?.length ? { subproblems: e.subproblems.map((sp) => ({ ...sp, type: typeUri(sp.type) })) } : {}),
  };
}

/** What the log keeps of a server fault (5xx): the error type, the stack and its cause. */
export function faultFields(mapped: unknown, err: unknown): Record<string, unknown> {
  const cause = (err as { cause?: unknown } | null)?.cause;
  return {
    ...(mapped instanceof PkiError ? { type: mapped.type } : {}),
    error: String((err as Error)?.stack ?? err),
    ...(cause !== undefined ? { cause: String((cause as Error)?.stack ?? cause) } : {}),
  };
}

/**
 * body-parser errors carry a `type`; turn them into precise problems
 * (anything else is returned unchanged). A body that fails to decode under
 * its Content-Encoding (corrupt gzip, deflate, br) comes as a 400 http-error
 * without a type, holding the zlib error: the client's mistake, not ours.
 */
export function fromBodyParserError(err: unknown): unknown {
  const e = err as { type?: string; status?: unknown; expose?: unknown; code?: unknown; encoding?: unknown; charset?: unknown };
  if (e?.type === 'entity.too.large') return new PkiError('payloadTooLarge', 'request body exceeds the size limit', { cause: err });
  if (e?.type === 'entity.parse.failed') return new PkiError('malformed', 'request body is not valid JSON', { cause: err });
  if (e?.type === 'encoding.unsupported') {
    return new PkiError('unsupportedMediaType', typeof e.encoding === 'string' ? `unsupported Content-Encoding "${e.encoding.slice(0, 32)}" (identity, gzip, deflate, br)` : 'unsupported body encoding', { cause: err });
  }
  if (e?.type === 'charset.unsupported') return new PkiError('unsupportedMediaType', typeof e.charset === 'string' ? `unsupported charset "${e.charset.slice(0, 32)}"` : 'unsupported body charset', { cause: err });
  if (e?.type === 'request.aborted') return new PkiError('malformed', 'request aborted', { cause: err });
  if (e?.type === 'request.size.invalid') return new PkiError('malformed', 'request body length does not match Content-Length', { cause: err });
  if (e?.type === undefined && e?.expose === true && e.status === 400) {
    const zlib = typeof e.code === 'string' && /^(Z_|ERR__ERROR_|ERR_BROTLI|ERR_ZSTD)/.test(e.code);
    return new PkiError('malformed', zlib ? 'request body does not decode under its Content-Encoding' : 'request body could not be read', { cause: err });
  }
  return err;
}
