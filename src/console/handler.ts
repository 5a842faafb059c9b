/**
 * The read-only web console at /console/ (docs/console.md), answered on the
 * front's hot path before express. It serves a login form, one page shell per
 * view and the static files that render the views from /api/v1 in the
 * browser. It holds no data itself: every figure comes from the API, read
 * with the session cookie, which the API accepts for GET and HEAD only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isPkiError, PkiError } from '../errors/pki-error.js';
import type { TokenVerifier } from '../tokens/tokens.js';
import { fill, loadAssets, pageFor, pages, type Asset } from './assets.js';
import { login, logout, type LoginDeps } from './login.js';
import { methodNotAllowed, redirect, send, sendProblem } from './respond.js';
import { clearSessionCookie, consoleRoleOf, sessionCookie } from './session.js';

/** What the console needs from serve. */
export interface ConsoleDeps {
  /** Checks the token in a login form and in the session cookie, as the API does. */
  tokens: Pick<TokenVerifier, 'verify'>;
  log: (event: Record<string, unknown>) => void;
  /** The directory of the static files (tests); default src/console/static. */
  staticDir?: string;
}

type HotHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

const html = 'text/html; charset=utf-8';
const readMethods = new Set(['GET', 'HEAD']);

/** The handler for /console and everything under it; it returns false for any other path. */
export function consoleHandler(deps: ConsoleDeps): HotHandler {
  const assets = loadAssets(deps.staticDir);
  const template = (name: string) => {
    const a = assets.get(name);
    if (!a) throw new Error(`console: static/${name} is missing`);
    return a.body.toString('utf8');
  };
  const shell = template('shell.html');
  const loginTemplate = template('login.html');
  const loginDeps: LoginDeps = { tokens: deps.tokens, log: deps.log, loginPage: (message) => fill(loginTemplate, { message }) };

  const route = async (req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> => {
    const method = req.method ?? 'GET';
    if (pathname === '/console') return redirect(res, '/console/');
    if (pathname === '/console/login') {
      if (method === 'POST') return login(req, res, loginDeps);
      if (!readMethods.has(method)) return methodNotAllowed(req, res, 'GET, HEAD, POST');
      return send(req, res, 200, html, loginDeps.loginPage(''));
    }
    if (pathname === '/console/logout') {
      if (method !== 'POST') return methodNotAllowed(req, res, 'POST');
      return logout(req, res, loginDeps);
    }
    if (pathname.startsWith('/console/static/')) {
      if (!readMethods.has(method)) return methodNotAllowed(req, res, 'GET, HEAD');
      const asset = staticAsset(assets, pathname.slice('/console/static/'.length));
      if (!asset) return sendProblem(req, res, new PkiError('notFound', 'no such console file'));
      return send(req, res, 200, asset.contentType, asset.body);
    }
    const page = pageFor(pathname);
    if (!page) return sendProblem(req, res, new PkiError('notFound', 'no such console page'));
    if (!readMethods.has(method)) return methodNotAllowed(req, res, 'GET, HEAD');
    // No page without a session: the shell holds no data, but nobody should reach it without a token that may read.
    if (!(await hasSession(req, deps))) return redirect(res, '/console/login', { 'set-cookie': clearSessionCookie });
    send(req, res, 200, html, fill(shell, { page, title: pages[page].title }));
  };

  return (req, res) => {
    const pathname = (req.url ?? '/').split('?', 1)[0]!;
    if (pathname !== '/console' && !pathname.startsWith('/console/')) return false;
    route(req, res, pathname).catch((err: unknown) => {
      deps.log({ level: 'error', msg: 'console request failed', reqId: req.requestId, path: pathname, error: String((err as Error)?.stack ?? err) });
      if (res.headersSent) res.destroy();
      else sendProblem(req, res, err);
    });
    return true;
  };
}

/** A file a browser may fetch: scripts, styles and images; the HTML templates are served only as pages. */
function staticAsset(assets: Map<string, Asset>, name: string): Asset | undefined {
  if (name.endsWith('.html')) return undefined;
  return assets.get(name);
}

/** Whether the request carries a session cookie whose token is valid and may read. */
async function hasSession(req: IncomingMessage, deps: ConsoleDeps): Promise<boolean> {
  const secret = sessionCookie(req);
  if (!secret) return false;
  try {
    consoleRoleOf(await deps.tokens.verify(secret));
    return true;
  } catch (err) {
    // A revoked or expired token, or one whose role cannot read: back to the login page. Anything else is a fault.
    if (isPkiError(err, 'unauthorized') || isPkiError(err, 'forbidden')) return false;
    throw new PkiError('serverInternal', 'the console session could not be checked', { cause: err });
  }
}
