/**
 * The audit signing key and its certificate, and the wiring of checkpoints
 * (docs/audit.md): the key is made in the online keystore, like the OCSP
 * responders' keys, and certified by the root with the audit-signer profile,
 * so `serve` can sign checkpoints while only the root can make a signer.
 */
import path from 'node:path';
import { AuditCheckpointer, type CheckpointSigner } from '../audit/checkpointer.js';
import type { CheckpointFile } from '../audit/checkpoint.js';
import { verifyAudit, type AuditVerifyResult, type GivenCheckpoint } from '../audit/verify.js';
import type { IssuedCertificate } from '../ca/authority.js';
import { heldKeySigner, issueHeldKey } from '../ca/held-keys.js';
import type { Issuer } from '../ca/issuer.js';
import type { CertificateRecord } from '../ca/ports.js';
import { PkiError } from '../errors/pki-error.js';
import type { Keystore } from '../keys/signing-key.js';
import { defaultProfilesDir, loadProfile } from '../profiles/load.js';
import type { Profile } from '../profiles/types.js';
import type { Instance } from './instance.js';

/** Profile of the audit signing certificate (ca-profiles/audit-signer.yaml). */
export const auditSignerProfileName = 'audit-signer';

/**
 * The audit-signer profile of the instance, or the shipped one for an
 * instance whose profiles directory predates it (init copies the profiles
 * once, so older instances lack the file).
 */
async function auditSignerProfile(instance: Instance): Promise<Profile> {
  return instance.profiles.get(auditSignerProfileName) ?? (await loadProfile(path.join(defaultProfilesDir(), `${auditSignerProfileName}.yaml`)));
}

/**
 * Makes a new audit signing key in `keystore` (the online one, which `serve`
 * opens) and has the root certify it. Call it where the root is unlocked
 * (init, a ceremony); returns the certificate as stored (a Certificate row
 * issued by the root, profile audit-signer, with the key's id).
 */
export async function issueAuditSigner(instance: Instance, keystore: Keystore, root: Issuer, actor: string): Promise<IssuedCertificate> {
  if (root.role !== 'root') throw new PkiError('invalidConfig', `the audit signer is certified by a root CA, not by ${root.role} CA "${root.id}"`);
  return issueHeldKey({ authority: instance.authority }, keystore, root, { profile: await auditSignerProfile(instance), subject: { CN: 'Trellis Audit Signer' }, actor });
}

/** The valid audit signing certificate with the latest notAfter, from any active root; null when there is none. */
export async function currentAuditSigner(instance: Instance): Promise<CertificateRecord | null> {
  let best: CertificateRecord | null = null;
  for (const ca of instance.cas) {
    if (ca.role !== 'root' || ca.keyState !== 'active') continue;
    const rec = await instance.store.certificates.latestHeld(ca.id, auditSignerProfileName);
    if (rec?.der && (!best || rec.notAfter > best.notAfter)) best = rec;
  }
  return best;
}

/** DER of the audit certificate with this serial (profile audit-signer, issued by a root of this instance), or null. */
export async function auditSignerCertificate(instance: Instance, serialHex: string): Promise<Buffer | null> {
  const roots = new Set(instance.cas.filter((c) => c.role === 'root').map((c) => c.id));
  const rec = (await instance.store.certificates.findBySerialAnyIssuer(serialHex)).find((r) => r.profile === auditSignerProfileName && roots.has(r.issuerId) && r.der);
  return rec?.der ?? null;
}

/**
 * The checkpoint signer of the current audit certificate, its key opened
 * from `keystore`. Throws `notFound` when the instance has no audit signer
 * (made before signed checkpoints: `trellis audit signer create`) and
 * `invalidConfig` when it has expired.
 */
export async function openCheckpointSigner(instance: Instance, keystore: Keystore): Promise<CheckpointSigner & { notAfter: Date }> {
  const rec = await currentAuditSigner(instance);
  if (!rec?.der || !rec.keyId) throw new PkiError('notFound', 'this instance has no audit signing certificate yet; create one with `trellis audit signer create` (needs the root passphrase)');
  if (rec.notAfter <= instance.clock.now()) throw new PkiError('invalidConfig', `the audit signing certificate (serial ${rec.serialHex}) expired on ${rec.notAfter.toISOString()}; run \`trellis audit signer create --rotate\``);
  return { serialHex: rec.serialHex, certDer: rec.der, notAfter: rec.notAfter, sign: await heldKeySigner(keystore, rec) };
}

/** A checkpointer for this instance with the schedule of `serve` (every 1000 events, or 5 minutes when the log grew). */
export function auditCheckpointer(instance: Instance, signer: CheckpointSigner, log?: (e: Record<string, unknown>) => void): AuditCheckpointer {
  return new AuditCheckpointer({ events: instance.store.audit, checkpoints: instance.store.auditCheckpoints, signer, clock: instance.clock, ...(log ? { log } : {}) });
}

/**
 * Starts the automatic checkpoints of `serve`: opens the audit key now (call
 * it before the keystore forgets its passphrase), signs what is due at once,
 * then keeps the schedule. An instance without a usable audit signer serves
 * anyway, with a warning. Returns the function that stops the schedule.
 */
export async function startAuditCheckpoints(instance: Instance, keystore: Keystore, log: (e: Record<string, unknown>) => void): Promise<() => Promise<void>> {
  let signer;
  try {
    signer = await openCheckpointSigner(instance, keystore);
  } catch (err) {
    if (!(err instanceof PkiError) || (err.type !== 'notFound' && err.type !== 'invalidConfig')) throw err;
    log({ level: 'warn', msg: `no signed audit checkpoints: ${err.message}` });
    return async () => {};
  }
  // A signer that expires within 90 days still signs; the operator gets time to rotate it.
  if (signer.notAfter.getTime() - instance.clock.now().getTime() < 90 * 86_400_000) {
    log({ level: 'warn', msg: 'the audit signing certificate expires soon; run `trellis audit signer create --rotate`', notAfter: signer.notAfter });
  }
  const checkpointer = auditCheckpointer(instance, signer, log);
  await checkpointer.tick().catch((err) => log({ level: 'error', msg: 'audit checkpoint failed', error: err instanceof Error ? err.message : String(err) }));
  checkpointer.start();
  return () => checkpointer.stop();
}

/** The newest stored checkpoint as a self-contained file (body, signature, audit certificate), or null when there is none. */
export async function latestCheckpointFile(instance: Instance): Promise<CheckpointFile | null> {
  const cp = await instance.store.auditCheckpoints.latest();
  if (!cp) return null;
  const certDer = await auditSignerCertificate(instance, cp.signerSerialHex);
  if (!certDer) throw new PkiError('notFound', `no audit certificate with serial ${cp.signerSerialHex} for checkpoint #${cp.id}`);
  return { body: cp.body, signature: cp.signature, certDer };
}

/** Verifies the instance's audit log and checkpoints against `anchorsDer` (default: the instance's root certificates). */
export function verifyInstanceAudit(instance: Instance, given: GivenCheckpoint[] = [], anchorsDer?: Buffer[]): Promise<AuditVerifyResult> {
  return verifyAudit(
    {
      events: instance.store.audit,
      checkpoints: instance.store.auditCheckpoints,
      anchorsDer: anchorsDer ?? instance.cas.filter((c) => c.role === 'root').map((c) => c.certDer),
      signerCertificate: (serialHex) => auditSignerCertificate(instance, serialHex),
    },
    given,
  );
}
