/** API bearer tokens: shown once at creation, stored only as SHA-256, compared in constant time. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import type { ApiTokenRecord, TokenRepository, TokenRole } from './ports.js';

export const tokenRoles = ['issuer', 'admin'] as const satisfies readonly TokenRole[];
export type { TokenRole } from './ports.js';

const prefix = 'trellis_';
const hashOf = (secret: string) => createHash('sha256').update(secret, 'utf8').digest();

/** Creates a token; the returned secret is never stored and cannot be shown again. */
export async function createToken(repo: TokenRepository, role: TokenRole, name: string | null): Promise<{ id: string; secret: string }> {
  if (!tokenRoles.includes(role)) throw new PkiError('malformed', `unknown role "${role}" (roles: ${tokenRoles.join(', ')})`);
  const id = `tok_${randomBytes(8).toString('hex')}`;
  const secret = prefix + randomBytes(32).toString('base64url');
  await repo.insert({ id, name, role, hashHex: hashOf(secret).toString('hex') });
  return { id, secret };
}

/**
 * Resolves a presented secret to its token. Valid lookups are cached for
 * `cacheMs` (revocation takes effect within that time) so the hot issuance
 * path does not read the database on every request.
 */
export class TokenVerifier {
  private readonly cache = new Map<string, { token: ApiTokenRecord; until: number }>();

  constructor(
    private readonly repo: TokenRepository,
    private readonly clock: Clock,
    private readonly cacheMs = 5_000,
  ) {}

  async verify(secret: string | undefined): Promise<ApiTokenRecord> {
    if (!secret || !secret.startsWith(prefix) || secret.length > 200) throw new PkiError('unauthorized', 'missing or malformed bearer token');
    const hash = hashOf(secret);
    const hashHex = hash.toString('hex');
    const now = this.clock.now().getTime();
    const hit = this.cache.get(hashHex);
    if (hit && hit.until > now) return hit.token;
    const token = await this.repo.findByHash(hashHex);
    // The index lookup finds the row; the constant-time compare is what grants access.
    if (!token || !timingSafeEqual(Buffer.from(token.hashHex, 'hex'), hash) || token.revokedAt) {
      this.cache.delete(hashHex);
      throw new PkiError('unauthorized', 'unknown or revoked token');
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hashHex, { token, until: now + this.cacheMs });
    return token;
  }
}

/** Throws `forbidden` unless the token's role may do `action`. */
export function assertRole(token: ApiTokenRecord, allowed: readonly TokenRole[]): void {
  if (!allowed.includes(token.role)) throw new PkiError('forbidden', `role "${token.role}" may not do this (needs ${allowed.join(' or ')})`);
}
