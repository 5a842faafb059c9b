/**
 * `trellis token create --role ROLE [--name NAME] [--profile P]... [--expires 90d]`
 * (ROLE: administrator, officer, auditor, enrollment, or the aliases admin, issuer),
 * `trellis token list`, `trellis token revoke --id ID`. The secret is shown
 * once, at creation; list never shows it or its hash.
 */
import { parse, parseDurationFlag, required, UsageError } from '../../cli/args.js';
import { enrollmentRefusal } from '../../profiles/enrollment.js';
import type { Profile } from '../../profiles/types.js';
import type { ApiTokenRecord } from '../../tokens/ports.js';
import { canonicalRole, isRoleName, roleNames } from '../../tokens/roles.js';
import { createToken } from '../../tokens/tokens.js';
import { openInstance } from '../instance.js';
import { actorOf, dataDirOf, out } from './common.js';

const usage = `usage: trellis token create --role ${roleNames.join('|')} [--name NAME] [--profile P]... [--expires 90d]
       trellis token list
       trellis token revoke --id ID`;

// A token that outlives a century is a token that never expires: say so by leaving --expires out.
const maxExpiresSeconds = 100 * 365 * 86400;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'create') return create(rest);
  if (sub === 'list') return list(rest);
  if (sub === 'revoke') return revoke(rest);
  throw new UsageError(usage);
}

/** Each --profile must exist and be enrollable over the API, or the token could never use it. */
function checkProfiles(names: readonly string[], profiles: ReadonlyMap<string, Profile>): void {
  for (const name of names) {
    const profile = profiles.get(name);
    if (!profile) throw new UsageError(`--profile: unknown profile "${name}" (known: ${[...profiles.keys()].join(', ')})`);
    const refusal = enrollmentRefusal(profile, 'api');
    if (refusal) throw new UsageError(`--profile: ${refusal.message}`);
  }
}

async function create(argv: string[]): Promise<number> {
  const { values } = parse(argv, { role: { type: 'string' }, name: { type: 'string' }, profile: { type: 'string', multiple: true }, expires: { type: 'string' } });
  const roleName = required(values.role, 'role');
  if (!isRoleName(roleName)) throw new UsageError(`--role must be one of ${roleNames.join(', ')}`);
  const role = canonicalRole(roleName);
  const expiresSeconds = values.expires === undefined ? null : parseDurationFlag(values.expires, 'expires');
  if (expiresSeconds === 0) throw new UsageError('--expires: must be longer than 0s');
  if (expiresSeconds !== null && expiresSeconds > maxExpiresSeconds) throw new UsageError('--expires: at most 100y');
  const profiles = values.profile ?? null;
  const instance = await openInstance(dataDirOf(values.data));
  try {
    if (profiles) checkProfiles(profiles, instance.profiles);
    const expiresAt = expiresSeconds === null ? null : new Date(instance.clock.now().getTime() + expiresSeconds * 1000);
    const token = await createToken(instance.store.tokens, role, values.name ?? null, { profiles, expiresAt });
    const summary = { id: token.id, role, name: values.name ?? null, profiles: profiles && [...new Set(profiles)], expiresAt: expiresAt?.toISOString() ?? null };
    await instance.audit.record('token.created', actorOf(), summary);
    const o = out(values);
    o.result({ ...summary, token: token.secret });
    if (!o.json) {
      // stdout carries the secret alone, so `TOKEN=$(trellis token create …)` works; the rest goes to stderr.
      process.stdout.write(`${token.secret}\n`);
      const limits = [summary.profiles ? `profiles ${summary.profiles.join(', ')}` : 'every API profile', summary.expiresAt ? `expires ${summary.expiresAt}` : 'never expires'];
      process.stderr.write(`token ${token.id} (${role}) created: ${limits.join(', ')}; it is shown only once\n`);
    }
    return 0;
  } finally {
    await instance.close();
  }
}

/** What list shows of a token: everything but the hash, with its canonical role (older rows may say admin or issuer). */
function listed({ hashHex: _hash, ...t }: ApiTokenRecord) {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return { id: t.id, name: t.name, role: canonicalRole(t.role), profiles: t.profiles, createdAt: t.createdAt.toISOString(), expiresAt: iso(t.expiresAt), lastUsedAt: iso(t.lastUsedAt), revokedAt: iso(t.revokedAt) };
}

async function list(argv: string[]): Promise<number> {
  const { values } = parse(argv, {});
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const now = instance.clock.now().getTime();
    const tokens = (await instance.store.tokens.list()).map(listed);
    const o = out(values);
    o.result(tokens);
    for (const t of tokens) {
      const state = t.revokedAt ? `revoked ${t.revokedAt}` : t.expiresAt && Date.parse(t.expiresAt) <= now ? 'expired' : 'active';
      o.say(
        [
          t.id,
          t.role,
          t.name ?? '(no name)',
          t.profiles ? `profiles ${t.profiles.join(',')}` : 'every API profile',
          `created ${t.createdAt}`,
          t.expiresAt ? `expires ${t.expiresAt}` : 'never expires',
          t.lastUsedAt ? `last used ${t.lastUsedAt}` : 'never used',
          state,
        ].join('  '),
      );
    }
    return 0;
  } finally {
    await instance.close();
  }
}

async function revoke(argv: string[]): Promise<number> {
  const { values } = parse(argv, { id: { type: 'string' } });
  const id = required(values.id, 'id');
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const { token, alreadyRevoked } = await instance.store.tokens.revoke(id, instance.clock.now());
    if (!alreadyRevoked) await instance.audit.record('token.revoked', actorOf(), { id: token.id, role: canonicalRole(token.role), name: token.name });
    out(values).result({ id: token.id, revokedAt: token.revokedAt?.toISOString() ?? null, alreadyRevoked });
    process.stderr.write(alreadyRevoked ? `token ${token.id} was already revoked at ${token.revokedAt?.toISOString()}\n` : `token ${token.id} revoked; every server refuses it from the next request on\n`);
    return 0;
  } finally {
    await instance.close();
  }
}
