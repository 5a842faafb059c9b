/**
 * Rotation of an issuing CA (issue 11, "Rotation and rollover"): a successor
 * with a new key, the same subject and profile, certified by the same parent,
 * starts in `preActivation`; at the takeover time it becomes `active` and the
 * old key `deactivated` (key-lifecycle.ts), so the old CA signs no more
 * certificates but still signs CRLs and OCSP responses for those it issued.
 */
import { createPublicKey } from 'node:crypto';
import { PkiError } from '../errors/pki-error.js';
import { keyAlgorithmOfPublicKey } from '../keys/algorithms.js';
import { parseCertificate, sha256Hex } from '../pki/certificate.js';
import { formatName } from '../pki/name.js';
import { describeKey } from '../pki/public-key.js';
import type { Profile } from '../profiles/types.js';
import type { CeremonyDeps } from './ceremony.js';
import { keyIdentifierOf, type Issuer } from './issuer.js';
import { transitionKey, type KeyLifecycleDeps } from './key-lifecycle.js';
import type { CaRecord } from './ports.js';
import { newKeyRef } from './unlock.js';
import { caRecertificationRequest } from './recertify.js';

const caIdPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The id `ca rotate` gives a successor when none is chosen: a trailing number counted up ("issuing-1" → "issuing-2"), else "-2" appended. */
export function successorIdOf(id: string, taken: (id: string) => boolean): string {
  const m = /^(.*?)(\d+)$/.exec(id);
  const base = m ? m[1]! : `${id}-`;
  for (let n = m ? Number(m[2]) + 1 : 2; ; n++) {
    const candidate = `${base}${n}`;
    if (!taken(candidate)) return candidate;
  }
}

/** Refuses a CA that cannot be rotated: only an issuing CA held here whose key still signs certificates. */
export function assertRotatable(old: CaRecord): void {
  if (old.role !== 'issuing') throw new PkiError('malformed', `CA "${old.id}" is a root: roots roll over (\`trellis ceremony root-rollover\`), they are not rotated`);
  if (old.keyState !== 'active') throw new PkiError('conflict', `CA "${old.id}" cannot be rotated: its key is ${old.keyState}, not active`);
  if (!old.parentId) throw new PkiError('malformed', `issuing CA "${old.id}" has no parent`);
}

/**
 * Creates the successor of issuing CA `old`: a new key of the same
 * algorithm in `deps.keystore` (the old key's keystore: its token when
 * `deps.token` names it), certified by `parent` (the old CA's parent) with the old CA's
 * subject and path length under `profile`, stored in `preActivation`.
 */
export async function createSuccessorCa(deps: CeremonyDeps, parent: Issuer, old: CaRecord, opts: { id: string; profile: Profile; validitySeconds?: number | undefined }): Promise<CaRecord> {
  assertRotatable(old);
  if (parent.id !== old.parentId) throw new PkiError('malformed', `the successor of "${old.id}" is certified by its parent "${old.parentId}", not "${parent.id}"`);
  if (!caIdPattern.test(opts.id)) throw new PkiError('malformed', `CA id "${opts.id}" must be lower-case letters, digits and dashes`);
  if (await deps.cas.findById(opts.id)) throw new PkiError('conflict', `a CA named "${opts.id}" already exists; ceremonies never overwrite a CA`);
  const algorithm = keyAlgorithmOfPublicKey(createPublicKey({ key: parseCertificate(old.certDer).spkiDer, format: 'der', type: 'spki' }));
  if (typeof algorithm !== 'string') throw new PkiError('badPublicKey', `the key of CA "${old.id}" is of no algorithm Trellis generates`);
  const key = await deps.keystore.generate(algorithm);
  await deps.audit.record('ca.rotation.key_generated', deps.actor, { ca: opts.id, predecessor: old.id, keyId: key.keyId, algorithm });
  // The old CA's request with the new key: same subject and path length, same profile.
  const request = { ...caRecertificationRequest(old.certDer, opts.profile, { validitySeconds: opts.validitySeconds, actor: deps.actor }), spkiDer: key.spkiDer, keyInfo: describeKey(key.publicKey) };
  const issued = await deps.authority.issue(parent.id, request);
  const cert = parseCertificate(issued.certDer);
  await deps.cas.insert({
    id: opts.id,
    name: opts.id,
    role: 'issuing',
    parentId: parent.id,
    certDer: issued.certDer,
    subject: formatName(cert.subject),
    skiHex: keyIdentifierOf(cert.subjectPublicKey).toString('hex'),
    keyRef: JSON.stringify(newKeyRef(key.keyId, { token: deps.token })),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    keyState: 'preActivation',
  });
  await deps.audit.record('ca.rotation.created', deps.actor, { ca: opts.id, predecessor: old.id, parent: parent.id, serialHex: issued.serialHex, sha256: sha256Hex(issued.certDer) });
  const stored = await deps.cas.findById(opts.id);
  if (!stored) throw new PkiError('serverInternal', `CA "${opts.id}" was not stored`);
  return stored;
}

/**
 * The takeover: `to` becomes active and `from` deactivated, each through
 * {@link transitionKey} (audited). Safe to run again, and from several
 * processes at once: a key already in its target state is left as it is.
 */
export async function takeOver(deps: KeyLifecycleDeps, fromId: string, toId: string, actor: string): Promise<{ activated: boolean; deactivated: boolean }> {
  const reason = `rotation of "${fromId}" to "${toId}"`;
  const step = async (caId: string, from: CaRecord['keyState'][], to: 'active' | 'deactivated'): Promise<boolean> => {
    const ca = await deps.cas.findById(caId);
    if (!ca) throw new PkiError('notFound', `no CA "${caId}"`);
    if (!from.includes(ca.keyState)) return false;
    try {
      await transitionKey(deps, caId, to, { actor, reason });
      return true;
    } catch (err) {
      // Another process made the same transition first.
      if (err instanceof PkiError && err.type === 'conflict' && (await deps.cas.findById(caId))?.keyState === to) return false;
      throw err;
    }
  };
  // The successor first: at no moment is neither key able to sign certificates.
  const activated = await step(toId, ['preActivation'], 'active');
  const successor = await deps.cas.findById(toId);
  if (successor?.keyState !== 'active') throw new PkiError('conflict', `CA "${toId}" cannot take over from "${fromId}": its key is ${successor?.keyState ?? 'missing'}`);
  const deactivated = await step(fromId, ['active', 'suspended'], 'deactivated');
  return { activated, deactivated };
}
