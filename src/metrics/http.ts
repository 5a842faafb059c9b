/**
 * `GET /metrics` (Prometheus text format) and `GET /readyz` on the node:http
 * hot path, before express. Neither asks for a credential: Prometheus and
 * orchestrators call them, and neither says anything secret.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readiness } from './readiness.js';

type HotHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

const pathOf = (url: string | undefined): string => (url ?? '').split('?', 1)[0]!;

function refuseMethod(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return false;
  res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain', 'cache-control': 'no-store' });
  res.end('method not allowed\n');
  return true;
}

/** `/metrics`: 200 with the exposition; 503 (text, no detail) when it cannot be gathered, the cause in the log. */
export function metricsHandler(render: () => Promise<{ contentType: string; text: string }>, log?: (e: Record<string, unknown>) => void): HotHandler {
  return (req, res) => {
    if (pathOf(req.url) !== '/metrics') return false;
    if (refuseMethod(req, res)) return true;
    render().then(
      ({ contentType, text }) => {
        res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        log?.({ level: 'error', msg: 'metrics failed', reqId: req.requestId, error: String(err) });
        res.writeHead(503, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        res.end('metrics unavailable\n');
      },
    );
    return true;
  };
}

/** `/readyz`: 200 `{"status":"ready"}`, or 503 `{"status":"not ready","failed":[{check,reason}…]}`; `check` gets the request's id, for what it logs. */
export function readinessHandler(check: (reqId: string | undefined) => Promise<Readiness>, log?: (e: Record<string, unknown>) => void): HotHandler {
  const send = (req: IncomingMessage, res: ServerResponse, status: number, body: unknown) => {
    const json = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : json);
  };
  return (req, res) => {
    if (pathOf(req.url) !== '/readyz') return false;
    if (refuseMethod(req, res)) return true;
    check(req.requestId).then(
      (r) => send(req, res, r.ready ? 200 : 503, r.ready ? { status: 'ready' } : { status: 'not ready', failed: r.failed }),
      (err: unknown) => {
        log?.({ level: 'error', msg: 'readiness check failed', reqId: req.requestId, error: String(err) });
        send(req, res, 503, { status: 'not ready', failed: [{ check: 'readiness', reason: 'the readiness check failed' }] });
      },
    );
    return true;
  };
}
