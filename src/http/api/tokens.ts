/** /api/v1/tokens: API tokens (administrators only). Secrets are shown once, at creation; hashes never. */
import { z } from 'zod';
import { PkiError } from '../../errors/pki-error.js';
import { enrollmentRefusal } from '../../profiles/enrollment.js';
import type { ApiTokenRecord } from '../../tokens/ports.js';
import { administrators, canonicalRole, roleNames } from '../../tokens/roles.js';
import { createToken } from '../../tokens/tokens.js';
import type { ApiDeps } from './deps.js';
import { tokenSchema } from './schemas.js';
import { cursors, listOf, paging, route, type ApiRoute } from './table.js';

const createBody = z
  .object({
    role: z.enum(roleNames),
    name: z.string().min(1).max(128).optional(),
    profiles: z.array(z.string().min(1).max(64)).min(1).max(100).optional(),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

const iso = (d: Date | null) => d?.toISOString() ?? null;

/** A token as listed: never its hash, with its canonical role. */
export const tokenJson = (t: ApiTokenRecord): z.infer<typeof tokenSchema> => ({
  id: t.id,
  name: t.name,
  role: canonicalRole(t.role),
  profiles: t.profiles,
  createdAt: t.createdAt.toISOString(),
  expiresAt: iso(t.expiresAt),
  lastUsedAt: iso(t.lastUsedAt),
  revokedAt: iso(t.revokedAt),
});

export function tokenRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    route<{ limit: number; cursor?: string }>({
      method: 'get',
      path: '/api/v1/tokens',
      id: 'listTokens',
      tag: 'tokens',
      roles: administrators,
      summary: 'API tokens, oldest first (never a secret or its hash).',
      query: z.object(paging).strict(),
      response: { status: 200, description: 'a page of tokens', schema: listOf(tokenSchema) },
      async handler({ res, query }) {
        const all = await deps.tokenStore.list();
        const start = query.cursor === undefined ? 0 : cursors.decode(query.cursor, (k) => (/^(0|[1-9][0-9]{0,8})$/.test(k) ? Number(k) : undefined));
        const shown = all.slice(start, start + query.limit);
        res.json({ items: shown.map(tokenJson), next: start + query.limit < all.length ? cursors.encode(String(start + query.limit)) : null });
      },
    }),
    route<undefined, z.infer<typeof createBody>>({
      method: 'post',
      path: '/api/v1/tokens',
      id: 'createToken',
      tag: 'tokens',
      roles: administrators,
      summary: 'Creates a token; the answer holds its secret, shown this once (Cache-Control: no-store).',
      body: createBody,
      response: { status: 201, description: 'the token and its secret', schema: tokenSchema.extend({ secret: z.string() }) },
      errors: { 400: 'a bad role, profile or expiry' },
      async handler({ res, principal, body }) {
        const now = deps.clock.now();
        const expiresAt = body.expiresAt ? new Date(body.expiresAt) : null;
        if (expiresAt && expiresAt.getTime() <= now.getTime()) throw new PkiError('malformed', 'expiresAt: must be in the future');
        for (const name of body.profiles ?? []) {
          const profile = deps.profiles.get(name);
          if (!profile) throw new PkiError('badProfile', `profiles: unknown profile "${name}"`);
          const refusal = enrollmentRefusal(profile, 'api');
          if (refusal) throw new PkiError('badProfile', `profiles: ${refusal.message}`);
        }
        const made = await createToken(deps.tokenStore, body.role, body.name ?? null, { profiles: body.profiles ?? null, expiresAt });
        const profiles = body.profiles ? [...new Set(body.profiles)] : null;
        await deps.audit.record('token.created', principal.id, { id: made.id, role: made.role, name: body.name ?? null, profiles, expiresAt: iso(expiresAt), via: 'api' });
        const row = (await deps.tokenStore.list()).find((t) => t.id === made.id)!;
        res.status(201).set('Cache-Control', 'no-store').json({ ...tokenJson(row), secret: made.secret });
      },
    }),
    route({
      method: 'post',
      path: '/api/v1/tokens/{id}/revoke',
      id: 'revokeToken',
      tag: 'tokens',
      roles: administrators,
      summary: 'Revokes a token: every server refuses it from the next request on.',
      params: { id: 'token id' },
      response: { status: 200, description: 'the token, and whether it was revoked before', schema: tokenSchema.extend({ alreadyRevoked: z.boolean() }) },
      errors: { 404: 'no such token' },
      async handler({ res, principal, params }) {
        const { token, alreadyRevoked } = await deps.tokenStore.revoke(params.id!, deps.clock.now());
        if (!alreadyRevoked) await deps.audit.record('token.revoked', principal.id, { id: token.id, role: canonicalRole(token.role), name: token.name, via: 'api' });
        res.json({ ...tokenJson(token), alreadyRevoked });
      },
    }),
  ];
}
