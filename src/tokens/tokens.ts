/** API bearer tokens: shown once at creation, stored only as SHA-256, compared in constant time. */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import type { ApiTokenRecord, TokenRepository, TokenRole } from './ports.js';
import { canonicalRole, roleNames, type Role } from './roles.js';

/** Every role name `createToken` accepts: the four roles and their aliases. */
export const tokenRoles = roleNames satisfies readonly TokenRole[];
export type { ApiTokenRecord, TokenRole } from './ports.js';

const prefix = 'trellis_';
const hashOf = (secret: string): Buffer => hash('sha256', secret, 'buffer');

/** What a new token may do beyond its role, and until when. */
export interface TokenLimits {
  /** Profiles it may enroll for; null or absent = every profile whose enrollment lists api. Never empty. */
  profiles?: readonly string[] | null;
  /** Refused from this instant on; null or absent = never expires. */
  expiresAt?: Date | null;
}

/**
 * Creates a token; the returned secret is never stored and cannot be shown
 * again. An alias (`admin`, `issuer`) is stored as its canonical role.
 */
export async function createToken(repo: TokenRepository, roleName: TokenRole, name: string | null, limits: TokenLimits = {}): Promise<{ id: string; secret: string; role: Role }> {
  const role = canonicalRole(roleName);
  // An empty list would be a token that can enroll nothing; null is the way to say "every API profile".
  if (limits.profiles && limits.profiles.length === 0) throw new PkiError('malformed', 'a token limited to profiles needs at least one');
  const id = `tok_${randomBytes(8).toString('hex')}`;
  const secret = prefix + randomBytes(32).toString('base64url');
  await repo.insert({ id, name, role, hashHex: hashOf(secret).toString('hex'), profiles: limits.profiles ? [...new Set(limits.profiles)] : null, expiresAt: limits.expiresAt ?? null });
  return { id, secret, role };
}

/**
 * Resolves a presented secret to its token. There is no cache: every call
 * reads the token's row (one lookup by its unique hash), so a revocation or
 * an expiry committed by any process on the same database (the CLI, another
 * node) refuses the very next request. lastUsedAt is written at most once per
 * `touchIntervalMs` per token (the condition sits in the UPDATE, so nodes
 * sharing the database do not each write it), not on every request.
 */
export class TokenVerifier {
  /** When this process last wrote lastUsedAt per token id, so concurrent requests do not all write it. */
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly repo: TokenRepository,
    private readonly clock: Clock,
    private readonly touchIntervalMs = 60_000,
  ) {}

  async verify(secret: string | undefined): Promise<ApiTokenRecord> {
    if (!secret || !secret.startsWith(prefix) || secret.length > 200) throw new PkiError('unauthorized', 'missing or malformed bearer token');
    const hash = hashOf(secret);
    const token = await this.repo.findByHash(hash.toString('hex'));
    // The index lookup finds the row; the constant-time compare is what grants access.
    if (!token || !timingSafeEqual(Buffer.from(token.hashHex, 'hex'), hash)) throw new PkiError('unauthorized', 'unknown token');
    if (token.revokedAt) throw new PkiError('unauthorized', `token ${token.id} is revoked`);
    const now = this.clock.now();
    if (token.expiresAt && token.expiresAt.getTime() <= now.getTime()) throw new PkiError('unauthorized', `token ${token.id} expired at ${token.expiresAt.toISOString()}`);
    await this.touch(token, now);
    return token;
  }

  private async touch(token: ApiTokenRecord, now: Date): Promise<void> {
    const t = now.getTime();
    const stale = t - this.touchIntervalMs;
    if (token.lastUsedAt && token.lastUsedAt.getTime() > stale) return;
    const mine = this.touched.get(token.id);
    if (mine !== undefined && mine > stale) return;
    if (this.touched.size > 10_000) this.touched.clear();
    this.touched.set(token.id, t);
    await this.repo.touch(token.id, now, new Date(stale));
  }
}

/** Throws `forbidden` unless the token's role (aliases normalised) is one of `allowed`. */
export function assertRole(token: Pick<ApiTokenRecord, 'role'>, allowed: readonly Role[]): void {
  const role = canonicalRole(token.role);
  if (!allowed.includes(role)) throw new PkiError('forbidden', `role "${role}" may not do this (needs ${allowed.join(' or ')})`);
}

/**
 * Throws `forbidden` unless the token may enroll `profile`. A token without a
 * list may enroll every profile whose enrollment lists api; the RA checks that
 * part for every caller.
 */
export function assertProfile(token: Pick<ApiTokenRecord, 'id' | 'profiles'>, profile: string): void {
  if (token.profiles && !token.profiles.includes(profile)) {
    throw new PkiError('forbidden', `token ${token.id} may not enroll profile "${profile}" (it may: ${token.profiles.join(', ')})`);
  }
}
