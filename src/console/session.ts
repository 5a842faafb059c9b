/**
 * The console's session: a cookie holding an API token secret. The API
 * accepts it for GET and HEAD only (src/http), so the cookie can read what
 * its role may read and never change anything, even if a page were tricked
 * into sending a request.
 */
import type { IncomingMessage } from 'node:http';
import { PkiError } from '../errors/pki-error.js';
import { canonicalRole, isRoleName, readers } from '../tokens/roles.js';
import type { ApiTokenRecord } from '../tokens/tokens.js';

/** The cookie's name; src/http reads the same name. */
export const cookieName = 'trellis_console';

/** How long a browser keeps the cookie: one working day. The token's own expiry and revocation still apply. */
export const sessionSeconds = 8 * 3600;

/** Roles that may open the console: the roles that may read (roles.ts), as their canonical names. */
export type ConsoleRole = 'auditor' | 'officer' | 'administrator';

/**
 * The canonical role of a token that may open the console; `forbidden`
 * naming the roles that may log in otherwise. Enrollment tokens (alias
 * issuer) only request certificates: they have nothing to read.
 */
export function consoleRoleOf(token: Pick<ApiTokenRecord, 'id' | 'role'>): ConsoleRole {
  const role = isRoleName(token.role) ? canonicalRole(token.role) : undefined;
  if (!role || !readers.includes(role)) {
    throw new PkiError('forbidden', `token ${token.id} has the role "${role ?? token.role}", which only requests certificates: the console needs an auditor, officer or administrator token`);
  }
  return role as ConsoleRole;
}

/** The console cookie's value in a request, or undefined (the first one when several are sent). */
export function sessionCookie(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === cookieName) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

// HttpOnly: page scripts never see the secret. SameSite=Strict: no other site
// can make the browser send it. Secure: never sent over plain HTTP, except to
// localhost and 127.0.0.1, which browsers count as secure (so a console on
// plain HTTP elsewhere cannot keep a session; use --tls or a TLS proxy).
const attributes = 'HttpOnly; SameSite=Strict; Path=/; Secure';

/** The Set-Cookie value that opens a session holding `secret` (a token secret: [A-Za-z0-9_-] only). */
export function sessionSetCookie(secret: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(secret)) throw new PkiError('malformed', 'a token has only letters, digits, "_" and "-"');
  return `${cookieName}=${secret}; Max-Age=${sessionSeconds}; ${attributes}`;
}

/** The Set-Cookie value that ends the session. */
export const clearSessionCookie = `${cookieName}=; Max-Age=0; ${attributes}`;
