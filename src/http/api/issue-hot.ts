/**
 * `POST /api/v1/certificates` answered on the lean node:http front, before
 * express: the issuance API is the busiest route of the admin API, and
 * express, its router and body-parser cost more CPU per certificate than the
 * CSR's signature check (docs/performance.md, issue 13). The body is checked
 * by the route's own zod schema (0.13 µs a parse).
 *
 * It answers exactly as the express route does (certificates.ts, table.ts,
 * app.ts): bearer token first (401 with WWW-Authenticate, 403 for a role that
 * may not issue), then Cache-Control: no-store, a JSON body of at most
 * `bodyLimitBytes` (413), parsed like body-parser's strict JSON (400), the
 * same strict schema with the same messages (400), the same RA call, the same
 * answers and problem documents. A request whose shape it does not take on
 * (no Authorization header: the console cookie or an operator certificate;
 * a query string; a Content-Encoding; another media type or charset; an
 * Accept header other than none, any, or one of the four types by name) is
 * left, untouched, to express: those rare cases keep one implementation. The
 * decision reads headers only, so nothing of the body has been consumed when
 * express gets the request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IssuedCertificate } from '../../ca/authority.js';
import { parseStrictJson } from '../../errors/json-body.js';
import { PkiError } from '../../errors/pki-error.js';
import { canonicalRole } from '../../tokens/roles.js';
import type { TokenVerifier } from '../../tokens/tokens.js';
import { assertAllowed, bearerOfHeader, type Principal } from '../auth.js';
import type { Logger } from '../log.js';
import { faultFields, problemFor } from '../problem.js';
import { issueBodyOf, issueFor, issuedAnswer, issuers, type IssueBody, type IssuedForm } from './issue.js';
import type { ApiDeps } from './deps.js';

/** What the hot issuance handler needs from serve. */
export interface IssueHotDeps {
  ra: ApiDeps['ra'];
  tokens: Pick<TokenVerifier, 'verify'>;
  /** server.bodyLimitBytes: the limit express.json() applies on the same route. */
  bodyLimitBytes: number;
  log: Logger;
}

type HotHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

const path = '/api/v1/certificates';
/**
 * `application/json` with no charset or UTF-8 (body-parser's default), as the
 * content-type package (2.x) reads it for type-is and body-parser: spaces and
 * tabs allowed around the type, the `;`, the `=` and the value. The only media
 * type taken here; any other spelling goes to express.
 */
const jsonType = /^application\/json[ \t]*(?:;[ \t]*charset[ \t]*=[ \t]*(?:utf-8|"utf-8")[ \t]*)?$/i;
/** The Accept values decided without content negotiation (req.accepts over the route's four types). */
const acceptForms: Record<string, IssuedForm> = {
  '*/*': 'pem',
  'application/pem-certificate-chain': 'pem',
  'application/x-pem-file': 'pem',
  'application/pkix-cert': 'der',
  'application/json': 'json',
};

/** The hot handler for `POST /api/v1/certificates`; false (not taken) for every other request and the shapes left to express. */
export function issueCertificateHandler(deps: IssueHotDeps): HotHandler {
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== path) return false;
    const h = req.headers;
    const authorization = h.authorization;
    if (authorization === undefined) return false;
    // type-is: a request without a body is no JSON (express answers 415).
    if (h['transfer-encoding'] === undefined && h['content-length'] === undefined) return false;
    const type = h['content-type'];
    if (type === undefined || !jsonType.test(type)) return false;
    const encoding = h['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
    const accept = h.accept;
    const form = accept === undefined ? 'pem' : acceptForms[accept];
    if (form === undefined) return false;
    serve(deps, req, res, authorization, form).catch((err: unknown) => fail(deps, req, res, err));
    return true;
  };
}

async function serve(deps: IssueHotDeps, req: IncomingMessage, res: ServerResponse, authorization: string, form: IssuedForm): Promise<void> {
  // Step 1: who is calling, and may they? Before any input is read (table.ts).
  let principal: Principal;
  try {
    const t = await deps.tokens.verify(bearerOfHeader(authorization) || undefined);
    principal = { id: t.id, role: canonicalRole(t.role), via: 'token', profiles: t.profiles };
  } catch (err) {
    // RFC 6750 §3: a 401 names the scheme that would work.
    if (err instanceof PkiError && err.type === 'unauthorized') res.setHeader('WWW-Authenticate', 'Bearer realm="trellis"');
    throw err;
  }
  assertAllowed(principal, issuers);
  // What a credential may read stays out of shared and browser caches.
  res.setHeader('Cache-Control', 'no-store');
  // Step 2: the body, parsed once against the route's strict schema.
  const body: IssueBody = issueBodyOf(parseStrictJson(await readBody(req, deps.bodyLimitBytes)));
  const issued: IssuedCertificate = await issueFor(deps.ra, principal, body);
  const answer = issuedAnswer(issued, form);
  // express's header order: Location, X-Trellis-Serial, Content-Type, Content-Length.
  res.statusCode = 201;
  res.setHeader('Location', `/api/v1/certificates/${issued.serialHex}`);
  res.setHeader('X-Trellis-Serial', issued.serialHex);
  res.setHeader('Content-Type', answer.contentType);
  res.setHeader('Content-Length', typeof answer.body === 'string' ? Buffer.byteLength(answer.body) : answer.body.length);
  res.end(answer.body);
}

/**
 * The body as raw-body reads it for body-parser: at most `limit` bytes
 * (`payloadTooLarge` once the rest has been read off, as body-parser does,
 * so the connection stays usable).
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    let over = declared !== undefined && Number(declared) > limit;
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) over = true;
      if (!over) chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      if (over) return reject(new PkiError('payloadTooLarge', 'request body exceeds the size limit'));
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
    };
    const onAbort = (err?: unknown) => {
      cleanup();
      reject(new PkiError('malformed', 'request aborted', err === undefined ? undefined : { cause: err }));
    };
    const onClose = () => {
      if (!req.complete) onAbort();
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}

/** The problem document app.ts's error middleware sends, with its log line for a server fault. */
function fail(deps: IssueHotDeps, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    deps.log({ level: 'error', msg: 'response failed after its headers', reqId: req.requestId, path, ...faultFields(err, err) });
    res.destroy();
    return;
  }
  const doc = problemFor(err, 'api', req.requestId);
  if (err instanceof PkiError && err.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(err.retryAfterSeconds));
  const text = JSON.stringify(doc);
  res.statusCode = doc.status;
  res.setHeader('Content-Type', 'application/problem+json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  // Before end: the access line (written on 'finish') names the problem type.
  res.locals = { ...res.locals, problem: doc.type };
  res.end(text);
  // A server fault: the client gets the request id only; this line (same id) has the type, message and stack.
  if (doc.status >= 500) deps.log({ level: 'error', msg: 'request failed', reqId: req.requestId, path, ...faultFields(err, err) });
}
