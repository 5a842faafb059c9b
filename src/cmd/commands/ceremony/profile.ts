/**
 * The profile and subject of a CA made by `trellis ceremony root|issuing`
 * (`--profile`, `--subject-attr`), checked before any key exists.
 */
import { UsageError } from '../../../cli/args.js';
import { checkSubjectPolicy } from '../../../ca/policy.js';
import type { CaRecord } from '../../../ca/ports.js';
import type { NameValues } from '../../../pki/name.js';
import type { Profile } from '../../../profiles/types.js';

/**
 * Refuses `profile` unless it makes the CA the ceremony makes: a CA profile
 * (basicConstraints cA), self-signed for a root; for an issuing CA, signed by
 * a CA of the parent's role (`signer: root` under a root, `signer: issuing`
 * under an issuing CA). `parent` is absent when an external root signs.
 */
export function checkCeremonyProfile(profile: Profile, kind: 'root' | 'issuing', parent?: Pick<CaRecord, 'id' | 'role'>): void {
  const flag = `--profile ${profile.name}`;
  if (!profile.basicConstraints.ca) throw new UsageError(`${flag}: not a CA profile (basicConstraints has ca: false)`);
  if (kind === 'root' && profile.signer !== 'self') throw new UsageError(`${flag}: a root needs a self-signed CA profile (signer: self), this one has signer: ${profile.signer}`);
  if (kind === 'issuing' && profile.signer === 'self') throw new UsageError(`${flag}: a self-signed (root) profile; use it with trellis ceremony root`);
  if (kind === 'issuing' && parent && profile.signer !== parent.role) {
    throw new UsageError(`${flag}: signed by a ${profile.signer} CA (signer: ${profile.signer}), but the parent "${parent.id}" is a ${parent.role} CA`);
  }
}

/**
 * `--subject-attr NAME=VALUE` pairs as subject values keyed by OID. NAME is an
 * attribute `profile` declares under subject.attributes, by its name or its
 * OID; a name it does not declare, a malformed pair or a repeated attribute
 * is a UsageError naming it. Values are checked with the whole subject by
 * {@link ceremonySubject}.
 */
export function declaredAttributes(profile: Profile, pairs: readonly string[]): NameValues {
  const declared = profile.subject.attributes ?? [];
  const values: NameValues = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) throw new UsageError(`--subject-attr "${pair}": expected NAME=VALUE, e.g. matterVID=FFF1`);
    const name = pair.slice(0, eq);
    const def = declared.find((a) => a.name === name || a.oid === name);
    if (!def) {
      const known = declared.length ? `it declares ${declared.map((a) => `${a.name} (${a.oid})`).join(', ')}` : 'it declares none under subject.attributes';
      throw new UsageError(`--subject-attr ${name}: not an attribute of profile "${profile.name}" (${known})`);
    }
    if (values[def.oid] !== undefined) throw new UsageError(`--subject-attr ${def.name} is given twice`);
    values[def.oid] = pair.slice(eq + 1);
  }
  return values;
}

/**
 * The CA's subject: the standard attributes from their flags plus the
 * declared ones, checked against the profile's subject rules (allowed,
 * required, each declared attribute's pattern) as the CA checks them when it
 * signs, so a refusal comes before a key is generated (PkiError badCSR naming
 * the attribute and the pattern).
 */
export function ceremonySubject(profile: Profile, standard: NameValues, pairs: readonly string[]): NameValues {
  const subject = { ...standard, ...declaredAttributes(profile, pairs) };
  checkSubjectPolicy(profile, subject);
  return subject;
}
