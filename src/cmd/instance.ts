/**
 * Builds the parts of a Trellis instance from its data directory: config,
 * store, profiles, audit log, CA core, and (once a passphrase is given) the
 * unlocked issuing CAs. Only cmd wires keys, store and http together.
 */
import path from 'node:path';
import { AuditLog } from '../audit/audit-log.js';
import { CertificateAuthority } from '../ca/authority.js';
import { KeyStateGuard } from '../ca/key-guard.js';
import { IssuerSelection } from '../ca/issuer-selection.js';
import { caUrls, type CaUrls, type Issuer } from '../ca/issuer.js';
import { isOfflineCa, keyIdOf, tokenOf, unlockIssuer, type CaKeystores } from '../ca/unlock.js';
import type { CaRecord } from '../ca/ports.js';
import { systemClock, type Clock } from '../clock/clock.js';
import { databaseUrlOf, readInstanceConfig, type InstanceConfig } from '../config/instance-config.js';
import { PkiError } from '../errors/pki-error.js';
import type { Keystore } from '../keys/signing-key.js';
import { SoftwareKeystore } from '../keys/software-keystore.js';
import { parseCertificate } from '../pki/certificate.js';
import { loadProfiles } from '../profiles/load.js';
import type { Profile } from '../profiles/types.js';
import { RegistrationAuthority } from '../ra/registration.js';
import { openStore, type Store } from '../store/open.js';
import { applyDueRotations } from './rotations.js';
import { sealSecretsWith } from './secrets.js';
import { InstanceTokens } from './tokens.js';

export interface Instance {
  dataDir: string;
  config: InstanceConfig;
  store: Store;
  profiles: Map<string, Profile>;
  clock: Clock;
  audit: AuditLog;
  urls: CaUrls;
  authority: CertificateAuthority;
  /** CA records and their public keys, refreshed by `reloadCas`. */
  cas: CaRecord[];
  caSpkis: Buffer[];
  /** The PKCS#11 tokens of `config.keystore`, opened on first use (cmd/tokens.ts). */
  tokens: InstanceTokens;
  reloadCas(): Promise<void>;
  close(): Promise<void>;
}

export function profile(instance: Pick<Instance, 'profiles'>, name: string): Profile {
  const p = instance.profiles.get(name);
  if (!p) throw new PkiError('badProfile', `profile "${name}" is missing from the profiles directory`);
  return p;
}

/** Opens an existing instance (migrating its database if needed). */
export async function openInstance(dataDir: string, opts: { clock?: Clock; databaseUrl?: string } = {}): Promise<Instance> {
  const config = readInstanceConfig(dataDir);
  return openWithConfig(dataDir, config, opts);
}

export async function openWithConfig(dataDir: string, config: InstanceConfig, opts: { clock?: Clock; databaseUrl?: string } = {}): Promise<Instance> {
  const clock = opts.clock ?? systemClock;
  const profiles = await loadProfiles(path.resolve(dataDir, config.profilesDir));
  const store = await openStore(opts.databaseUrl ?? process.env.TRELLIS_DATABASE_URL ?? databaseUrlOf(dataDir, config));
  const audit = new AuditLog(store.audit, clock);
  const urls = caUrls(config.baseUrl);
  const instance: Instance = {
    dataDir,
    config,
    store,
    profiles,
    clock,
    audit,
    urls,
    cas: [],
    caSpkis: [],
    tokens: new InstanceTokens(config.keystore),
    authority: new CertificateAuthority({
      certificates: store.certificates,
      audit,
      clock,
      urls,
      caSpkis: () => instance.caSpkis,
      // The whole chain up to the root, for its name constraints.
      caCertificates: () => instance.cas.map((c) => c.certDer),
      keyStates: new KeyStateGuard(store.cas, clock),
    }),
    async reloadCas() {
      instance.cas = await store.cas.list();
      instance.caSpkis = instance.cas.map((c) => parseCertificate(c.certDer).spkiDer);
    },
    async close() {
      // Requests already with the CA finish before the store goes away.
      await instance.authority.settle();
      await instance.tokens.close();
      await store.close();
    },
  };
  await instance.reloadCas();
  return instance;
}

export function keystoreFor(instance: Instance, passphrase: string | Buffer): SoftwareKeystore {
  return new SoftwareKeystore({ blobs: instance.store.keyBlobs, passphrase });
}

export { holdsKey, isOfflineCa, keyIdOf, tokenOf, type CaKeystores } from '../ca/unlock.js';

/** Unlocks one CA of the instance for signing (ca/unlock.ts); a key in a PKCS#11 token opens through `instance.tokens`. */
export function unlockCa(instance: Instance, keys: CaKeystores, id: string): Promise<Issuer> {
  return unlockIssuer(instance.authority, instance.cas, { token: (label) => instance.tokens.open(label), ...keys }, id, { crlShards: instance.config.crlShards });
}

/** The online issuing CAs this instance may unlock: not offline, not destroyed. */
const onlineIssuing = (instance: Instance): CaRecord[] => instance.cas.filter((ca) => ca.role === 'issuing' && ca.keyState !== 'destroyed' && !isOfflineCa(ca));

/**
 * Unlocks the online issuing CAs the authority does not hold yet, or holds
 * with an older certificate (a renewal: same key, new certificate), with
 * software keys from `keystore` and token keys through `instance.tokens`;
 * offline CAs are never unlocked here. Returns the ids unlocked.
 */
export async function unlockNewIssuers(instance: Instance, keystore: Keystore): Promise<string[]> {
  const held = new Map(instance.authority.issuers().map((i) => [i.id, i]));
  const unlocked: string[] = [];
  for (const ca of onlineIssuing(instance)) {
    if (held.get(ca.id)?.cert.der.equals(ca.certDer)) continue;
    await unlockCa(instance, { online: keystore }, ca.id);
    unlocked.push(ca.id);
  }
  return unlocked;
}

/**
 * Checks the online passphrase against the key of an online software issuing
 * CA, when there is one: a wrong passphrase stops a command before it acts,
 * and the keys it then makes share that key's keystore salt, so a running
 * `serve` (which no longer holds the passphrase) opens them with its cached
 * master key.
 */
export async function verifyOnlinePassphrase(instance: Instance, keystore: SoftwareKeystore): Promise<void> {
  const ca = onlineIssuing(instance).find((c) => tokenOf(c) === undefined);
  if (!ca) return;
  try {
    await keystore.verifyPassphrase(keyIdOf(ca));
  } catch (err) {
    if (err instanceof PkiError && err.type === 'badPassphrase') throw new PkiError('badPassphrase', `wrong online passphrase for CA "${ca.id}"`, { cause: err });
    throw err;
  }
}

/** The CA's choice among the issuing CAs it holds, with this instance's trellis.json and CA records. */
export function issuerSelection(instance: Instance): IssuerSelection {
  return new IssuerSelection({ authority: instance.authority, config: () => instance.config, cas: () => instance.cas, caSpkis: () => instance.caSpkis });
}

/**
 * Unlocks every active online issuing CA ({@link unlockNewIssuers}) and
 * returns the issuer selection. A takeover scheduled by `trellis ca rotate
 * --at` whose time has come is carried out first (rotations.ts).
 */
export async function unlockIssuers(instance: Instance, keystore: Keystore): Promise<IssuerSelection> {
  await applyDueRotations(instance, 'trellis');
  await unlockNewIssuers(instance, keystore);
  // The online keystore is open and verified here (in serve, before it forgets the passphrase, in every worker):
  // the store seals EAB keys and the ACME nonce key with it from now on. An instance whose issuing CAs are in a
  // token seals them with an AES key of that token instead (docs/hsm.md), from init on.
  const token = instance.tokens.issuingToken;
  if (onlineIssuing(instance).length > 0) await sealSecretsWith(instance, token ? await instance.tokens.open(token) : keystore);
  return issuerSelection(instance);
}

export function registrationAuthority(instance: Instance, issuers: IssuerSelection): RegistrationAuthority {
  return new RegistrationAuthority({ ca: instance.authority, profiles: instance.profiles, issuers });
}
