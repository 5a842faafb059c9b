/**
 * The ACME routes on node:http, without express: a request under /acme is
 * matched against the route table (router.ts) here, answered by its handler
 * or with an RFC 8555 problem, and taken by the front as one of its hot
 * handlers. As the express router did: paths match without case and with
 * the query string ignored, a trailing slash is a different path, HEAD is
 * answered by a GET route when it has none of its own, and anything else
 * is `notFound`.
 *
 * Every POST answer, problems included, is held until its nonce is recorded
 * as used (a replay is answered badNonce) and the store's writes made before
 * it are on disk (NonceService.durable): the nonce redemption
 * and the handler's writes resolve once committed, so a request that writes
 * waits for one fsync, shared with every request answered beside it,
 * instead of one per write. When that cannot be ensured the connection is
 * dropped unanswered. GET and HEAD (directory, new-nonce, renewal info)
 * write nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PkiError } from '../errors/pki-error.js';
import type { NonceService } from '../ra/acme/nonces.js';
import { AcmeExchange } from './exchange.js';
import type { Links } from './links.js';
import { sendProblem, verifyPost, type KeyRule, type NonceRule, type PipelineDeps } from './pipeline.js';

/** One route: `path` is below /acme, with `:name` for a path segment. */
export interface AcmeRoute {
  method: 'GET' | 'HEAD' | 'POST';
  path: string;
  /** POST routes: the key that must sign the JWS, verified (and the nonce checked) before `handle` runs. */
  key?: KeyRule;
  /** POST routes: when the nonce is recorded as used (NonceRule; 'first' unless given). */
  nonce?: NonceRule;
  handle(x: AcmeExchange): void | Promise<void>;
}

interface CompiledRoute extends AcmeRoute {
  pattern: RegExp;
  names: string[];
}

export interface DispatchDeps {
  pipeline: PipelineDeps;
  nonces: NonceService;
  links: Links;
  defaultProfile: string;
  log: (event: Record<string, unknown>) => void;
}

function compile(route: AcmeRoute): CompiledRoute {
  const names: string[] = [];
  const source = route.path
    .split('/')
    .map((seg) => {
      if (!seg.startsWith(':')) return seg.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
      names.push(seg.slice(1));
      return '([^/]+)';
    })
    .join('/');
  return { ...route, pattern: new RegExp(`^${source}$`, 'i'), names };
}

function decodeParam(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new PkiError('malformed', 'the URL has a malformed percent-encoding');
  }
}

/** The mount point: /acme itself, anything below it, or /acme?query (matched without case). */
function belowAcme(url: string): string | undefined {
  if (url.length < 5 || url.slice(0, 5).toLowerCase() !== '/acme') return undefined;
  if (url.length === 5) return '/';
  const next = url[5];
  if (next === '/') return url.slice(5);
  return next === '?' ? `/${url.slice(5)}` : undefined;
}

/** The front's hot handler for the ACME routes: it takes every request under /acme. */
export function acmeDispatcher(routes: readonly AcmeRoute[], deps: DispatchDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const table = routes.map(compile);
  const { nonces, log } = deps;

  const writeNow = (x: AcmeExchange, body: string | Buffer | undefined) => {
    const { res } = x;
    res.statusCode = x.statusCode;
    for (const name in x.headers) res.setHeader(name, x.headers[name]!);
    res.end(body);
  };
  const write = (x: AcmeExchange, body: string | Buffer | undefined) => {
    if (x.req.method !== 'POST') return writeNow(x, body);
    // A nonce the handler's writes did not take is recorded now; a replay is answered badNonce, whatever the handler said.
    const pending = x.acme?.nonce;
    if (pending) {
      delete x.acme!.nonce;
      pending.record().then(
        () => write(x, body),
        (err: unknown) => fail(x, err),
      );
      return;
    }
    nonces.durable().then(
      () => {
        try {
          writeNow(x, body);
        } catch (err) {
          log({ level: 'error', msg: 'ACME answer could not be written', reqId: x.req.requestId, path: x.req.url, error: String(err) });
          x.res.destroy();
        }
      },
      (err: unknown) => {
        log({ level: 'error', msg: 'ACME answer dropped: its writes are not on disk', reqId: x.req.requestId, path: x.req.url, error: String(err) });
        x.res.destroy();
      },
    );
  };

  const fail = (x: AcmeExchange, err: unknown) => {
    // Whatever the handler had put in its answer goes: the problem replaces it.
    for (const name in x.headers) if (name !== 'Connection') delete x.headers[name];
    sendProblem(x, err, deps);
  };

  const find = (method: string, path: string): { route: CompiledRoute; match: RegExpExecArray } | undefined => {
    let viaGet: { route: CompiledRoute; match: RegExpExecArray } | undefined;
    for (const route of table) {
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) continue;
      const match = route.pattern.exec(path);
      if (!match) continue;
      if (route.method === method) return { route, match };
      viaGet ??= { route, match };
    }
    return viaGet;
  };

  const run = async (x: AcmeExchange, path: string) => {
    const found = find(x.req.method ?? '', path);
    if (!found) throw new PkiError('notFound', 'no such ACME resource');
    const { route, match } = found;
    route.names.forEach((name, i) => (x.params[name] = decodeParam(match[i + 1]!)));
    if (route.key) x.acme = await verifyPost(deps.pipeline, x, route.key, route.nonce);
    await route.handle(x);
  };

  return (req, res) => {
    const url = req.url ?? '/';
    const below = belowAcme(url);
    if (below === undefined) return false;
    const q = below.indexOf('?');
    const x = new AcmeExchange(req, res, url, write);
    run(x, q < 0 ? below : below.slice(0, q)).catch((err: unknown) => fail(x, err));
    return true;
  };
}
