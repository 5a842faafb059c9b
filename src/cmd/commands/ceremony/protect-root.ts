/**
 * `trellis ceremony protect-root [--id root]`: moves the key of a root made
 * before roots had their own passphrase (it opens with the online one) under
 * the root passphrase, then destroys the old envelope. Run once per such root.
 * It changes what holds the root's key: the command checks the custodians'
 * quorum (`root-key.use`, purpose "protect-root") before it reads a secret.
 *
 * Step order keeps every crash recoverable by running the command again: the
 * copy is stored first (as `<old id>-offline`), then the CA record points at
 * it, then the original is destroyed.
 */
import { PkiError } from '../../../errors/pki-error.js';
import { isOfflineCa, keyIdOf, keystoreFor, type Instance } from '../../instance.js';

const offlineIdOf = (keyId: string) => `${keyId}-offline`;

export interface ProtectRootResult {
  ca: string;
  keyId: string;
  /** The envelope that opened with the online passphrase, now destroyed. */
  destroyedKeyId: string;
}

/** The root `id`, and for one already moved the envelope a stopped run left under the online passphrase; refuses what there is nothing to do for. */
async function rootToProtect(instance: Instance, id: string): Promise<{ ca: Instance['cas'][number]; left: { id: string } | null }> {
  const ca = instance.cas.find((c) => c.id === id);
  if (!ca) throw new PkiError('notFound', `no CA "${id}"`);
  if (ca.role !== 'root') throw new PkiError('malformed', `CA "${id}" is not a root`);
  if (!isOfflineCa(ca)) return { ca, left: null };
  // Already moved; a run that stopped before destroying the original is finished.
  const keyId = keyIdOf(ca);
  const original = keyId.endsWith('-offline') ? keyId.slice(0, -'-offline'.length) : null;
  const left = original ? await instance.store.keyBlobs.find(original) : null;
  if (!left || left.state === 'destroyed') throw new PkiError('conflict', `CA "${id}" is already protected by the root passphrase`);
  return { ca, left };
}

/** Refuses, before any secret is read, a root protect-root has nothing to do for (unknown, not a root, already protected). */
export async function assertProtectable(instance: Instance, id: string): Promise<void> {
  await rootToProtect(instance, id);
}

export async function protectRoot(instance: Instance, opts: { id: string; passphrase: string; rootPassphrase: string; actor: string }): Promise<ProtectRootResult> {
  const { ca, left } = await rootToProtect(instance, opts.id);
  const keyId = keyIdOf(ca);
  if (left) {
    await instance.store.keyBlobs.destroy(left.id);
    await instance.audit.record('ceremony.root.online_key_destroyed', opts.actor, { ca: ca.id, keyId: left.id });
    return { ca: ca.id, keyId, destroyedKeyId: left.id };
  }
  const online = keystoreFor(instance, opts.passphrase);
  const offline = keystoreFor(instance, opts.rootPassphrase);
  try {
    const newId = offlineIdOf(keyId);
    // A copy from an interrupted run (same key, already under the root passphrase) is reused.
    await online.ensureCopy(keyId, offline, newId);
    await instance.audit.record('ceremony.root.key_moved_offline', opts.actor, { ca: ca.id, from: keyId, to: newId });
    await instance.store.cas.setKeyRef(ca.id, JSON.stringify({ type: 'software', keyId: newId, offline: true }));
    await instance.store.keyBlobs.destroy(keyId);
    await instance.audit.record('ceremony.root.online_key_destroyed', opts.actor, { ca: ca.id, keyId });
    await instance.reloadCas();
    return { ca: ca.id, keyId: newId, destroyedKeyId: keyId };
  } finally {
    online.close();
    offline.close();
  }
}
