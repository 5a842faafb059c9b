/**
 * A request listener built by the first request that reaches it: serve's
 * admin API (express, its routes and the device registry) loads then, not
 * at start, so a worker that answers only the front's hot paths (OCSP, CRLs,
 * issuance) never loads it (docs/performance.md, Memory). Requests that
 * arrive while it loads wait, their bodies unread. When building fails, each
 * waiting request gets a 500 problem, the error is logged, and the next
 * request tries again.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { faultFields, problemFor } from '../errors/problem.js';
import type { Logger } from './log.js';

export function lazyApp(build: () => Promise<RequestListener>, log: Logger): RequestListener {
  let app: RequestListener | undefined;
  let building: Promise<RequestListener> | undefined;
  return (req, res) => {
    if (app) return void app(req, res);
    building ??= build().then(
      (built) => (app = built),
      (err: unknown) => {
        building = undefined;
        throw err;
      },
    );
    building.then(
      (built) => built(req, res),
      (err: unknown) => failed(req, res, err, log),
    );
  };
}

/** A 500 problem document (the request id only) and the log line with the error. */
function failed(req: IncomingMessage, res: ServerResponse, err: unknown, log: Logger): void {
  const doc = problemFor(err, 'api', req.requestId);
  const text = JSON.stringify(doc);
  res.locals = { ...res.locals, problem: doc.type };
  res.writeHead(doc.status, { 'content-type': 'application/problem+json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
  log({ level: 'error', msg: 'request failed', reqId: req.requestId, path: req.url, ...faultFields(err, err) });
}
