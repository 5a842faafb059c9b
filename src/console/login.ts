/**
 * POST /console/login and POST /console/logout. Login checks the token as the
 * API does (TokenVerifier: unknown, revoked and expired tokens are refused)
 * and that its role may read: auditor, officer or administrator. It then
 * stores the secret in the HttpOnly cookie the API reads on GET and HEAD.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isPkiError, PkiError } from '../errors/pki-error.js';
import { problems } from '../errors/problem.js';
import type { TokenVerifier } from '../tokens/tokens.js';
import { readForm } from './form.js';
import { assertSameOrigin } from './origin.js';
import { redirect, send, sendProblem, wantsHtml } from './respond.js';
import { clearSessionCookie, consoleRoleOf, sessionSetCookie } from './session.js';

/** What login and logout need. */
export interface LoginDeps {
  tokens: Pick<TokenVerifier, 'verify'>;
  log: (event: Record<string, unknown>) => void;
  /** The login page (HTML) showing `message`, which the page escapes. */
  loginPage(message: string): string;
}

/** Logs in, or answers why not: the login page again for a browser, a problem document for a program. */
export async function login(req: IncomingMessage, res: ServerResponse, deps: LoginDeps): Promise<void> {
  try {
    assertSameOrigin(req);
    const form = await readForm(req);
    const secret = form.get('token')?.trim();
    if (!secret) throw new PkiError('malformed', 'enter a token');
    const token = await deps.tokens.verify(secret);
    const role = consoleRoleOf(token);
    deps.log({ msg: 'console login', reqId: req.requestId, tokenId: token.id, role });
    redirect(res, '/console/', { 'set-cookie': sessionSetCookie(secret) });
  } catch (err) {
    refuse(req, res, err, deps);
  }
}

/** Ends the session: clears the cookie and goes back to the login page. */
export function logout(req: IncomingMessage, res: ServerResponse, deps: LoginDeps): void {
  try {
    assertSameOrigin(req);
  } catch (err) {
    refuse(req, res, err, deps);
    return;
  }
  redirect(res, '/console/login', { 'set-cookie': clearSessionCookie });
}

function refuse(req: IncomingMessage, res: ServerResponse, err: unknown, deps: LoginDeps): void {
  // A body over the limit is left unread: the connection closes after this answer.
  const close = isPkiError(err, 'payloadTooLarge') ? { connection: 'close' } : undefined;
  const status = isPkiError(err) ? problems[err.type].status : 500;
  if (status >= 500) {
    deps.log({ level: 'error', msg: 'console login failed', reqId: req.requestId, error: String((err as Error)?.stack ?? err) });
  } else {
    deps.log({ level: 'warn', msg: 'console login refused', reqId: req.requestId, type: (err as PkiError).type, detail: (err as PkiError).message });
  }
  if (status < 500 && wantsHtml(req)) {
    send(req, res, status, 'text/html; charset=utf-8', deps.loginPage(`Login refused: ${(err as PkiError).message}.`), close);
    return;
  }
  sendProblem(req, res, err, close);
}
