/**
 * Who may do what (issue 12): four roles, least privilege first. The names of
 * issue 9 stay valid as aliases: `admin` is `administrator`, `issuer` is
 * `enrollment`. Token rows keep the name they were created with; every reader
 * normalises it with {@link canonicalRole}.
 */
import { PkiError } from '../errors/pki-error.js';

/** The canonical roles. */
export const roles = ['administrator', 'officer', 'auditor', 'enrollment'] as const;
/** One of {@link roles}. */
export type Role = (typeof roles)[number];

/** Older names, still accepted wherever a role is named. */
export const roleAliases = { admin: 'administrator', issuer: 'enrollment' } as const satisfies Record<string, Role>;

/** Every name a token's role may be stored or given as: the roles, then the aliases. */
export const roleNames = [...roles, ...(Object.keys(roleAliases) as (keyof typeof roleAliases)[])] as const;
/** One of {@link roleNames}. */
export type RoleName = (typeof roleNames)[number];

/** What each role is for (docs/api.md and `trellis token create --help` say the same). */
export const roleDescriptions: Record<Role, string> = {
  administrator: 'CAs, profiles, keys and tokens, and everything an officer may do',
  officer: 'issue, revoke, manage devices; read certificates, devices, ACME',
  auditor: 'read everything readable, and the audit log; change nothing',
  enrollment: 'POST /api/v1/certificates only, limited to its token\'s profiles',
};

/** True for a role or an alias. */
export const isRoleName = (name: string): name is RoleName => (roleNames as readonly string[]).includes(name);

/** The canonical role of a name or alias; `malformed` for anything else. */
export function canonicalRole(name: string): Role {
  if ((roles as readonly string[]).includes(name)) return name as Role;
  if (Object.hasOwn(roleAliases, name)) return roleAliases[name as keyof typeof roleAliases];
  throw new PkiError('malformed', `unknown role "${name}" (roles: ${roleNames.join(', ')})`);
}

/** Role sets the routes use, so that a grant reads the same everywhere. */
export const anyRole: readonly Role[] = roles;
/** Everything readable outside the audit log. */
export const readers: readonly Role[] = ['auditor', 'officer', 'administrator'];
/** State changes on certificates and devices. */
export const operators: readonly Role[] = ['officer', 'administrator'];
/** The audit log. */
export const auditReaders: readonly Role[] = ['auditor', 'administrator'];
/** Tokens, CAs, profiles, keys. */
export const administrators: readonly Role[] = ['administrator'];
