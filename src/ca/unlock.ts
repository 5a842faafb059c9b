/**
 * Unlocking CA keys: the one place outside src/keys where a CA's key is
 * opened from its keystore and bound to its certificate (issuer.ts keeps it
 * beside the Issuer, out of reach of the rest of Trellis).
 */
import { PkiError } from '../errors/pki-error.js';
import type { Keystore } from '../keys/signing-key.js';
import type { CertificateAuthority } from './authority.js';
import { issuerFrom, type Issuer } from './issuer.js';
import type { CaRecord } from './ports.js';

/**
 * The keystores a command holds. `online` opens the keys `serve` signs with;
 * `offline` (root passphrase, ceremonies only) opens the root's key and any
 * CA key marked offline. Each keystore draws its own scrypt salt, so the two
 * secrets never share a master key. `token` opens the PKCS#11 token with a
 * given label (logged in with that token's PIN), for CA keys held there.
 */
export interface CaKeystores {
  online: Keystore;
  offline?: Keystore;
  token?: (label: string) => Promise<Keystore>;
}

/**
 * Where a CA's key is, as its record stores it (JSON): `software` (an
 * envelope in the database), `pkcs11` (an object of the token labelled
 * `token`), or `external` (a root this instance does not hold).
 */
export interface KeyRef {
  type: string;
  keyId?: string;
  /** PKCS#11 only: the label of the token holding the key. */
  token?: string;
  /** Opens only with the root's secret (root passphrase, or the root token's PIN), never in `serve`. */
  offline?: boolean;
}

export const keyRefOf = (ca: CaRecord): KeyRef => JSON.parse(ca.keyRef) as KeyRef;

/** The keyRef a ceremony stores for a new key: in the token labelled `token` when given, else software. */
export function newKeyRef(keyId: string, where: { token?: string | undefined; offline?: boolean }): KeyRef {
  return { ...(where.token ? { type: 'pkcs11', token: where.token } : { type: 'software' }), keyId, ...(where.offline ? { offline: true } : {}) };
}

/** The key id behind a CA record held by this instance (software or PKCS#11). */
export function keyIdOf(ca: CaRecord): string {
  const ref = keyRefOf(ca);
  if (!holdsKey(ca) || !ref.keyId) throw new PkiError('invalidConfig', `CA "${ca.id}" has no key held by this instance (${ref.type})`);
  if (ref.type === 'pkcs11' && !ref.token) throw new PkiError('invalidConfig', `CA "${ca.id}": its PKCS#11 key reference names no token`);
  return ref.keyId;
}

/** True when this instance holds the CA's key (software or in a token; not an external root). */
export const holdsKey = (ca: CaRecord): boolean => ['software', 'pkcs11'].includes(keyRefOf(ca).type);

/** The label of the PKCS#11 token holding the CA's key, or undefined for any other key. */
export const tokenOf = (ca: CaRecord): string | undefined => {
  const ref = keyRefOf(ca);
  return ref.type === 'pkcs11' ? ref.token : undefined;
};

/** True when the CA's key is protected by the root's secret (roots made since the keys were split). */
export const isOfflineCa = (ca: CaRecord): boolean => keyRefOf(ca).offline === true;

/**
 * The keystore holding the key of `ca`: its token for a PKCS#11 key, else
 * the offline keystore for an offline CA and the online one otherwise.
 */
export async function keystoreOf(ca: CaRecord, keys: CaKeystores): Promise<Keystore> {
  const label = tokenOf(ca);
  if (label !== undefined) {
    if (!keys.token) throw new PkiError('forbidden', `the key of CA "${ca.id}" is in PKCS#11 token "${label}", which this command does not open`);
    return keys.token(label);
  }
  const keystore = isOfflineCa(ca) ? keys.offline : keys.online;
  if (!keystore) throw new PkiError('forbidden', `CA "${ca.id}" is offline: its key opens only with the root passphrase (TRELLIS_ROOT_PASSPHRASE or --root-passphrase-file), in a ceremony`);
  return keystore;
}

/** DER certificates of the CAs above `ca`, excluding the root. */
function chainAbove(cas: readonly CaRecord[], ca: CaRecord): Buffer[] {
  const out: Buffer[] = [];
  for (let p = cas.find((c) => c.id === ca.parentId); p && p.role !== 'root'; p = cas.find((c) => c.id === p!.parentId)) out.push(p.certDer);
  return out;
}

/**
 * Unlocks one CA: a key in a PKCS#11 token with `keys.token`, an offline
 * software key only with `keys.offline`, any other with `keys.online`. A root made before the split (no `offline` mark) still opens
 * with the online passphrase. A destroyed key is refused; a key in any other
 * state opens, and the CA decides what it may sign (key-state.ts). The
 * unlocked CA is held by `authority`, which signs for it from then on.
 */
export async function unlockIssuer(authority: Pick<CertificateAuthority, 'hold'>, cas: readonly CaRecord[], keys: CaKeystores, id: string, opts: { crlShards: number }): Promise<Issuer> {
  const ca = cas.find((c) => c.id === id);
  if (!ca) throw new PkiError('notFound', `no CA "${id}"`);
  if (ca.keyState === 'destroyed') throw new PkiError('forbidden', `the key of CA "${id}" is destroyed`);
  const offline = isOfflineCa(ca);
  // Opening a token reports its own errors (no PIN, wrong PIN, naming the token).
  const keystore = await keystoreOf(ca, keys);
  let key;
  try {
    key = await keystore.load(keyIdOf(ca));
  } catch (err) {
    if (err instanceof PkiError && err.type === 'badPassphrase') throw new PkiError('badPassphrase', `wrong ${offline ? 'root' : 'online'} passphrase for CA "${id}"`, { cause: err });
    throw err;
  }
  return authority.hold(issuerFrom(ca, key, { crlShards: opts.crlShards, parentChainDer: chainAbove(cas, ca) }));
}
