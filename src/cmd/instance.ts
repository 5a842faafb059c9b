/**
 * Builds the parts of a Trellis instance from its data directory: config,
 * store, profiles, audit log, CA core, and (once a passphrase is given) the
 * unlocked issuing CAs. Only cmd wires keys, store and http together.
 */
import path from 'node:path';
import { AuditLog } from '../audit/audit-log.js';
import { CertificateAuthority } from '../ca/authority.js';
import { KeyStateGuard } from '../ca/key-guard.js';
import { assertPermits } from '../ca/key-state.js';
import { caUrls, type CaUrls, type Issuer } from '../ca/issuer.js';
import { isOfflineCa, unlockIssuer, type CaKeystores } from '../ca/unlock.js';
import type { CaRecord } from '../ca/ports.js';
import { systemClock, type Clock } from '../clock/clock.js';
import { databaseUrlOf, readInstanceConfig, type InstanceConfig } from '../config/instance-config.js';
import { PkiError } from '../errors/pki-error.js';
import type { Keystore } from '../keys/signing-key.js';
import { SoftwareKeystore } from '../keys/software-keystore.js';
import { parseCertificate } from '../pki/certificate.js';
import { loadProfiles } from '../profiles/load.js';
import type { Profile } from '../profiles/types.js';
import { RegistrationAuthority, type IssuerDirectory } from '../ra/registration.js';
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

/** Unlocked issuing CAs, chosen per request by flag, profile mapping, or default. */
export class IssuerRegistry implements IssuerDirectory {
  constructor(
    private readonly instance: Instance,
    private readonly issuers: Map<string, Issuer>,
  ) {}

  /** Unlocks every active online issuing CA (software keys from `keystore`, token keys through `instance.tokens`); offline CAs are never unlocked here. */
  static async unlock(instance: Instance, keystore: Keystore): Promise<IssuerRegistry> {
    // A takeover scheduled by `trellis ca rotate --at` whose time has come is carried out first (rotations.ts).
    await applyDueRotations(instance, 'trellis');
    const issuers = new Map<string, Issuer>();
    for (const ca of instance.cas) {
      if (ca.role === 'issuing' && ca.keyState !== 'destroyed' && !isOfflineCa(ca)) issuers.set(ca.id, await unlockCa(instance, { online: keystore }, ca.id));
    }
    // The online keystore is open and verified here (in serve, before it forgets the passphrase, in every worker):
    // the store seals EAB keys and the ACME nonce key with it from now on. An instance whose issuing CAs are in a
    // token seals them with an AES key of that token instead (docs/hsm.md), from init on.
    const token = instance.tokens.issuingToken;
    if (issuers.size > 0) await sealSecretsWith(instance, token ? await instance.tokens.open(token) : keystore);
    return new IssuerRegistry(instance, issuers);
  }

  issuerFor(profile: Profile, id?: string): Issuer {
    const wanted = id ?? this.instance.config.profileIssuers[profile.name] ?? this.instance.config.defaultIssuer ?? this.newest();
    const issuer = wanted ? this.issuers.get(wanted) : undefined;
    const locked = !issuer && wanted ? this.instance.cas.find((c) => c.id === wanted && c.role === 'issuing') : undefined;
    if (locked) assertPermits(locked.id, locked.keyState, 'certificate');
    if (!issuer) throw new PkiError(id ? 'notFound' : 'invalidConfig', wanted ? `no active issuing CA "${wanted}"` : 'no active issuing CA');
    return issuer;
  }

  caSpkis(): readonly Buffer[] {
    return this.instance.caSpkis;
  }

  all(): Issuer[] {
    return [...this.issuers.values()];
  }

  /** The newest issuing CA whose key is active (as last read); a named CA in another state is refused by the CA, naming it. */
  private newest(): string | undefined {
    const guard = this.instance.authority.keyStates;
    const stateOf = (id: string) => guard.known(id) ?? this.instance.cas.find((c) => c.id === id)?.keyState;
    return [...this.issuers.values()].filter((i) => stateOf(i.id) === 'active').sort((a, b) => b.cert.notBefore.getTime() - a.cert.notBefore.getTime())[0]?.id;
  }
}

export function registrationAuthority(instance: Instance, issuers: IssuerRegistry): RegistrationAuthority {
  return new RegistrationAuthority({ ca: instance.authority, profiles: instance.profiles, issuers });
}
