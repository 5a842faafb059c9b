/**
 * Unlocking CA keys: the one place outside src/keys where a CA's key is
 * opened from its keystore and bound to its certificate (issuer.ts keeps it
 * beside the Issuer, out of reach of the rest of Trellis).
 */
import { PkiError } from '../errors/pki-error.js';
import type { Keystore } from '../keys/signing-key.js';
import { issuerFrom, type Issuer } from './issuer.js';
import type { CaRecord } from './ports.js';

/**
 * The keystores a command holds. `online` opens the keys `serve` signs with;
 * `offline` (root passphrase, ceremonies only) opens the root's key and any
 * CA key marked offline. Each keystore draws its own scrypt salt, so the two
 * secrets never share a master key.
 */
export interface CaKeystores {
  online: Keystore;
  offline?: Keystore;
}

interface KeyRef {
  type: string;
  keyId?: string;
  /** Opens only with the root passphrase, never in `serve`. */
  offline?: boolean;
}

const keyRefOf = (ca: CaRecord): KeyRef => JSON.parse(ca.keyRef) as KeyRef;

/** The key id behind a CA record (software keystore only for now). */
export function keyIdOf(ca: CaRecord): string {
  const ref = keyRefOf(ca);
  if (ref.type !== 'software' || !ref.keyId) throw new PkiError('invalidConfig', `CA "${ca.id}" has no key held by this instance (${ref.type})`);
  return ref.keyId;
}

/** True when this instance holds the CA's key (not an external root). */
export const holdsKey = (ca: CaRecord): boolean => keyRefOf(ca).type === 'software';

/** True when the CA's key is protected by the root passphrase (roots made since the keys were split). */
export const isOfflineCa = (ca: CaRecord): boolean => keyRefOf(ca).offline === true;

/** DER certificates of the CAs above `ca`, excluding the root. */
function chainAbove(cas: readonly CaRecord[], ca: CaRecord): Buffer[] {
  const out: Buffer[] = [];
  for (let p = cas.find((c) => c.id === ca.parentId); p && p.role !== 'root'; p = cas.find((c) => c.id === p!.parentId)) out.push(p.certDer);
  return out;
}

/**
 * Unlocks one CA: an offline CA only with `keys.offline`, any other with
 * `keys.online`. A root made before the split (no `offline` mark) still opens
 * with the online passphrase. A destroyed key is refused; a key in any other
 * state opens, and the CA decides what it may sign (key-state.ts).
 */
export async function unlockIssuer(cas: readonly CaRecord[], keys: CaKeystores, id: string, opts: { crlShards: number }): Promise<Issuer> {
  const ca = cas.find((c) => c.id === id);
  if (!ca) throw new PkiError('notFound', `no CA "${id}"`);
  if (ca.keyState === 'destroyed') throw new PkiError('forbidden', `the key of CA "${id}" is destroyed`);
  const offline = isOfflineCa(ca);
  const keystore = offline ? keys.offline : keys.online;
  if (!keystore) throw new PkiError('forbidden', `CA "${id}" is offline: its key opens only with the root passphrase (TRELLIS_ROOT_PASSPHRASE or --root-passphrase-file), in a ceremony`);
  let key;
  try {
    key = await keystore.load(keyIdOf(ca));
  } catch (err) {
    if (err instanceof PkiError && err.type === 'badPassphrase') throw new PkiError('badPassphrase', `wrong ${offline ? 'root' : 'online'} passphrase for CA "${id}"`, { cause: err });
    throw err;
  }
  return issuerFrom(ca, key, { crlShards: opts.crlShards, parentChainDer: chainAbove(cas, ca) });
}
