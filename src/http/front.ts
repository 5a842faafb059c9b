/**
 * The lean node:http front. Hot, unauthenticated paths (health, CA
 * certificates; OCSP and CRLs next) are answered here without express;
 * everything else goes to the express app. One log line per request.
 * Every request gets an id (`req.requestId`: X-Request-Id, the access line,
 * and the `reqId` of every line its handlers log, 5xx problems) and its
 * client address (see request-context.ts) here, first.
 */
import http from 'node:http';
import type { Clock } from '../clock/clock.js';
import { accessLogger, type Logger } from './log.js';
import { isStatusPath, ownsBodyLimit, refuse, type RequestLimits } from './limits.js';
import { clientAddress, requestIdOf, trustedProxies } from './request-context.js';

export interface FrontDeps {
  app: http.RequestListener;
  /** DER certificate of a CA by id, for the caIssuers URL. */
  caCertificate(id: string): Buffer | undefined;
  ready(): boolean;
  log: Logger;
  clock: Clock;
  /** Log every request (off in benchmarks). */
  accessLog?: boolean;
  /**
   * Hot-path handlers tried in order before express (OCSP, CRLs); each returns true when it took the request. One
   * marked `writesRequestId` puts X-Request-Id (`req.requestId`) in every answer it gives itself; for the others the
   * front sets it before they run, so a marked handler listed after an unmarked one finds it set already (list it first).
   */
  hot?: ((req: http.IncomingMessage, res: http.ServerResponse) => boolean)[];
  /** CIDRs of proxies whose X-Forwarded-For names the client (default none); a bad entry throws invalidConfig. */
  trustedProxies?: readonly string[];
  /** Told of every answered request: the URL as received, the status sent and the seconds taken (the latency metrics). */
  observe?: (url: string, status: number, seconds: number) => void;
  /** Header count, declared body size and request rates per client address (limits.ts); none checked when absent. */
  limits?: RequestLimits;
}

const caPath = /^\/ca\/([a-z0-9][a-z0-9-]{0,62})\.(cer|crt|der)$/;

export function frontHandler(deps: FrontDeps): http.RequestListener {
  const proxies = trustedProxies(deps.trustedProxies ?? []);
  const access = deps.accessLog === false ? undefined : accessLogger(deps.log);
  const observe = deps.observe;
  const hot = deps.hot ?? [];
  return (req, res) => {
    const started = access || observe ? performance.now() : 0;
    const id = (req.requestId = requestIdOf(req.headers['x-request-id']));
    const address = (req.clientAddress = clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], proxies));
    // Kept now: express rewrites req.url inside mounted routers (/acme/x is /x there).
    const url = req.url ?? '/';
    // One listener for the access line and the latency metric: the line first, as it always came.
    if (access || observe) {
      res.on('finish', () => {
        const ms = performance.now() - started;
        access?.({ reqId: id, address: req.clientAddress, method: req.method, path: url, status: res.statusCode, ms: Math.round(ms * 100) / 100, problem: res.locals?.problem });
        observe?.(url, res.statusCode, ms / 1000);
      });
    }
    // Limits come before any handler (hot ones included), after the log hooks: refusals are logged and counted like any answer.
    const limits = deps.limits;
    if (limits) {
      if (req.rawHeaders.length > 2 * limits.maxHeaders) {
        res.setHeader('X-Request-Id', id);
        refuse(req, res, url, { status: 431, detail: `more than ${limits.maxHeaders} header fields` });
        return;
      }
      const wait = (isStatusPath(url) ? limits.status : limits.other).take(address);
      if (wait > 0) {
        res.setHeader('X-Request-Id', id);
        refuse(req, res, url, { status: 429, detail: 'too many requests from this address; retry after the time given in Retry-After', retryAfterSeconds: wait });
        return;
      }
      // OCSP, EST and ACME check a declared length themselves, before reading (EST audits the refusal, ACME answers with a nonce).
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > limits.maxBodyBytes && !ownsBodyLimit(url)) {
        res.setHeader('X-Request-Id', id);
        refuse(req, res, url, { status: 413, detail: `request body is larger than ${limits.maxBodyBytes} bytes` });
        return;
      }
    }
    // Handlers log with `reqId: req.requestId` themselves (request-context.ts).
    dispatch(req, res, url);
  };

  function dispatch(req: http.IncomingMessage, res: http.ServerResponse, url: string): void {
    // X-Request-Id is set as late as possible: a hot handler that writes it itself answers with a header list of its own
    // (writeHead with nothing set before it writes that list as it is, without node's per-header bookkeeping, ~0.8 µs).
    let idSet = false;
    for (const h of hot) {
      if (!idSet && (h as { writesRequestId?: boolean }).writesRequestId !== true) {
        res.setHeader('X-Request-Id', req.requestId!);
        idSet = true;
      }
      if (h(req, res)) return;
    }
    if (!idSet) res.setHeader('X-Request-Id', req.requestId!);
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (url === '/healthz') {
        const ok = deps.ready();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ status: ok ? 'ok' : 'starting' }));
        return;
      }
      const m = caPath.exec(url);
      if (m) {
        const der = deps.caCertificate(m[1]!);
        if (der) {
          // RFC 5280 §4.2.2.1: caIssuers over HTTP serves a DER certificate as application/pkix-cert.
          res.writeHead(200, { 'content-type': 'application/pkix-cert', 'content-length': der.length, 'cache-control': 'public, max-age=3600' });
          res.end(req.method === 'HEAD' ? undefined : der);
          return;
        }
      }
    }
    deps.app(req, res);
  }
}

declare module 'node:http' {
  interface ServerResponse {
    locals?: Record<string, unknown>;
  }
}
