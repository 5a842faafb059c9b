/**
 * The express application: the admin API (/api/v1, generated from the route
 * table in api/). ACME is answered on the front (src/acme/dispatch.ts).
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { z } from 'zod';
import { systemClock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import type { TokenVerifier } from '../tokens/tokens.js';
import type { Logger } from './log.js';
import { fromBodyParserError } from '../errors/problem.js';
import { faultFields, sendProblem } from './problem.js';
import { authenticator, type CertificateAuthenticator } from './auth.js';
import type { ApiDeps } from './api/deps.js';
import { apiRoutes } from './api/routes.js';
import { invalidInput } from './api/input.js';
import { mountRoutes } from './api/table.js';

export { pemChain } from './api/issue.js';

/** What the admin API reads beyond issuing and revoking; an app built without them (a unit test's) answers those routes with 404. */
type ReadSide = 'tokenStore' | 'queries' | 'cas' | 'profiles' | 'audit' | 'verifyAudit' | 'clock';

export interface AppDeps extends Omit<ApiDeps, ReadSide>, Partial<Pick<ApiDeps, ReadSide>> {
  /** Checks bearer tokens and the console cookie. */
  tokens: Pick<TokenVerifier, 'verify'>;
  /** mTLS for operators (serve --tls); absent: client certificates are no credential. */
  certificates?: CertificateAuthenticator | undefined;
  log: Logger;
  bodyLimitBytes: number;
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const json = express.json({ limit: deps.bodyLimitBytes, type: () => true });
  /** Parses the JSON body (after authentication) against a strict schema. */
  async function readJson<T>(req: Request, res: Response, schema: z.ZodType<T>): Promise<T> {
    if (!req.is('application/json')) throw new PkiError('unsupportedMediaType', 'send the request as application/json');
    await new Promise<void>((resolve, reject) => json(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
    const body = schema.safeParse(req.body);
    if (!body.success) throw invalidInput(body.error, 'body');
    return body.data;
  }

  const missing = (what: string) =>
    new Proxy({}, {
      get: () => () => Promise.reject(new PkiError('notFound', `this server was built without ${what}`)),
    });
  const api: ApiDeps = {
    tokenStore: missing('a token store') as ApiDeps['tokenStore'],
    queries: missing('the admin queries') as ApiDeps['queries'],
    cas: missing('a CA repository') as ApiDeps['cas'],
    profiles: new Map(),
    audit: missing('an audit log') as ApiDeps['audit'],
    verifyAudit: () => Promise.reject(new PkiError('notFound', 'this server was built without an audit log')),
    clock: systemClock,
    ...deps,
  };
  mountRoutes(app, apiRoutes(api), { authenticate: authenticator({ tokens: deps.tokens, ...(deps.certificates ? { certificates: deps.certificates } : {}) }), readJson });

  app.use((_req, _res) => {
    throw new PkiError('notFound', 'no such resource');
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const mapped = fromBodyParserError(err);
    // An export already streaming cannot become a problem document: end it short (the client sees a truncated NDJSON).
    if (res.headersSent) {
      deps.log({ level: 'error', msg: 'response failed after its headers', reqId: req.requestId, path: req.path, ...faultFields(mapped, err) });
      res.destroy();
      return;
    }
    const doc = sendProblem(res, mapped, 'api', req.requestId);
    // A server fault: the client gets the request id only; this log line (same id) has the type, message and stack.
    if (doc.status >= 500) deps.log({ level: 'error', msg: 'request failed', reqId: req.requestId, path: req.path, ...faultFields(mapped, err) });
    res.locals.problem = doc.type;
  });
  return app;
}
