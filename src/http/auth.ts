/**
 * Who is calling the admin API: one {@link Principal} from the first
 * credential present, in this order: `Authorization: Bearer trellis_…`; the
 * console cookie (a token secret, honoured for GET and HEAD only, so a page
 * of another site can never make a browser change state with it); a client
 * certificate of the `operator` profile on a TLS connection. A missing or
 * wrong credential is `unauthorized` (401); the route table turns a right
 * credential with the wrong role into `forbidden` (403).
 */
import type { Request } from 'express';
import { PkiError } from '../errors/pki-error.js';
import { canonicalRole, type Role } from '../tokens/roles.js';
import type { TokenVerifier } from '../tokens/tokens.js';

/** An authenticated caller. */
export interface Principal {
  /** Token id (`tok_…`) or `cert:<serial>`. */
  id: string;
  role: Role;
  via: 'token' | 'cookie' | 'certificate';
  /** Profiles an enrollment token may request; null = every profile enrollable over the API. */
  profiles: readonly string[] | null;
}

/** The name of the console's session cookie (its value is a token secret). */
export const consoleCookie = 'trellis_console';

/** Resolves a client certificate to a principal, or null when the connection presents none we accept. */
export type CertificateAuthenticator = (req: Request) => Promise<Principal | null>;

/** What {@link authenticator} needs. */
export interface AuthDeps {
  tokens: Pick<TokenVerifier, 'verify'>;
  /** mTLS for operators; absent: client certificates are not a credential. */
  certificates?: CertificateAuthenticator;
}

/** The token of an Authorization header: '' when the header is there but is not a bearer token (a wrong credential, not a missing one). */
export const bearerOfHeader = (h: string): string => (/^Bearer [^\s]+$/i.test(h.trim()) ? h.trim().slice(7) : '');

const bearerOf = (req: Request): string | undefined => {
  const h = req.get('authorization');
  return h === undefined ? undefined : bearerOfHeader(h);
};

/** The value of one cookie (RFC 6265 §5.4 pairs; the first wins), or undefined. */
export function cookieOf(req: Request, name: string): string | undefined {
  const header = req.get('cookie');
  if (!header) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

/** Builds the function that authenticates a request (throws `unauthorized`). */
export function authenticator(deps: AuthDeps): (req: Request) => Promise<Principal> {
  return async (req) => {
    const bearer = bearerOf(req);
    if (bearer !== undefined) {
      const t = await deps.tokens.verify(bearer || undefined);
      return { id: t.id, role: canonicalRole(t.role), via: 'token', profiles: t.profiles };
    }
    const cookie = cookieOf(req, consoleCookie);
    if (cookie !== undefined) {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new PkiError('unauthorized', `the ${consoleCookie} cookie is accepted for GET and HEAD only; send Authorization: Bearer to change anything`);
      const t = await deps.tokens.verify(cookie);
      return { id: t.id, role: canonicalRole(t.role), via: 'cookie', profiles: t.profiles };
    }
    const cert = deps.certificates ? await deps.certificates(req) : null;
    if (cert) return cert;
    throw new PkiError('unauthorized', 'missing credential: send Authorization: Bearer <token>');
  };
}

/** Throws `forbidden` naming the roles needed unless the principal has one of them. */
export function assertAllowed(p: Principal, allowed: readonly Role[]): void {
  if (!allowed.includes(p.role)) throw new PkiError('forbidden', `role "${p.role}" may not do this (needs ${allowed.join(' or ')})`);
}
