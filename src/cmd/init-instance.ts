/**
 * `trellis init`: data directory, database, root CA (P-384), issuing CA
 * (P-256), OCSP responder certificate. With a PKCS#11 keystore the issuing
 * CA's key is made in the token, and the root's in the root token when one is
 * configured (docs/hsm.md); the OCSP responder and audit keys stay software
 * keys under the online passphrase.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createIssuingCa, createRootCa, type CeremonyDeps } from '../ca/ceremony.js';
import { configFile, instanceConfigSchema, writeInstanceConfig, type KeystoreConfig } from '../config/instance-config.js';
import { PkiError } from '../errors/pki-error.js';
import type { Keystore } from '../keys/signing-key.js';
import { fingerprint } from '../pki/certificate.js';
import { makePrivateTree } from '../config/file-permissions.js';
import { defaultProfilesDir } from '../profiles/load.js';
import { issueOcspResponder } from './held-certificates.js';
import { issueAuditSigner } from './audit-signer.js';
import { assertDistinct, generatedPassphrase } from './commands/common.js';
import { publishArl } from './crl-publishing.js';
import { keystoreFor, openWithConfig, profile, unlockCa, type Instance } from './instance.js';
import type { TokenPins } from './tokens.js';

export interface InitOptions {
  dataDir: string;
  baseUrl: string;
  databaseUrl?: string;
  /** Online passphrase: issuing CA, OCSP responder and audit keys. */
  passphrase: string;
  /** Root passphrase: the root's key only. Generated (and returned once) when absent; unused when the root is in its own token. */
  rootPassphrase?: string;
  /** Where CA keys go (default software). */
  keystore?: KeystoreConfig;
  /** PIN sources of the tokens (default: TRELLIS_PKCS11_PIN / TRELLIS_PKCS11_ROOT_PIN or a prompt). */
  pins?: TokenPins;
  actor: string;
}

export interface InitResult {
  dataDir: string;
  baseUrl: string;
  database: string;
  keystore: KeystoreConfig;
  cas: { id: string; role: string; subject: string; notAfter: Date; sha256: string }[];
  ocspResponder: { serialHex: string; notAfter: Date };
  /** The root passphrase when init generated it: shown once, stored nowhere. */
  generatedRootPassphrase?: string;
}

export function ceremonyDeps(instance: Instance, keystore: Keystore, actor: string): CeremonyDeps {
  return { keystore, cas: instance.store.cas, audit: instance.audit, clock: instance.clock, urls: instance.urls, authority: instance.authority, actor };
}

/** Initialises a new instance; refuses to touch a directory that already holds one. */
export async function initInstance(opts: InitOptions): Promise<InitResult> {
  if (fs.existsSync(configFile(opts.dataDir))) throw new PkiError('conflict', `${opts.dataDir} already holds a Trellis instance; init never overwrites one`);
  const keystoreConfig = opts.keystore ?? { type: 'software' };
  // A root in its own token opens with that token's PIN: there is no root passphrase to make.
  const rootInToken = keystoreConfig.type === 'pkcs11' && keystoreConfig.rootToken !== undefined;
  const rootPassphrase = rootInToken ? undefined : (opts.rootPassphrase ?? generatedPassphrase());
  if (rootPassphrase !== undefined) assertDistinct(opts.passphrase, rootPassphrase);
  const created = !fs.existsSync(opts.dataDir);
  const config = instanceConfigSchema.parse({ version: 1, baseUrl: opts.baseUrl, ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}), keystore: keystoreConfig });
  let instance: Instance | undefined;
  try {
    fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    const profilesDir = path.join(opts.dataDir, config.profilesDir);
    if (!fs.existsSync(profilesDir)) {
      fs.cpSync(defaultProfilesDir(), profilesDir, { recursive: true });
      // cpSync keeps the package's modes (0644/0755); the data directory is private.
      makePrivateTree(profilesDir);
    }
    instance = await openWithConfig(opts.dataDir, config, opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {});
    if (instance.cas.length) throw new PkiError('conflict', 'the database already holds CAs; use `trellis ceremony` to add more');
    if (opts.pins) instance.tokens.setPins(opts.pins);
    const keystore = keystoreFor(instance, opts.passphrase);
    // The root's key lives under its own passphrase (and its own scrypt salt), or in its own token: the online secret never opens it.
    const rootToken = instance.tokens.rootToken;
    const rootKeystore = rootPassphrase !== undefined ? keystoreFor(instance, rootPassphrase) : undefined;
    const keys = { online: keystore, ...(rootKeystore ? { offline: rootKeystore } : {}) };
    const deps = ceremonyDeps(instance, keystore, opts.actor);
    const rootDeps = rootToken ? { ...deps, keystore: await instance.tokens.open(rootToken), token: rootToken } : { ...deps, keystore: rootKeystore! };
    await createRootCa(rootDeps, { id: 'root', subject: { O: 'Trellis', CN: 'Trellis Root CA' }, algorithm: 'ecdsa-p384', profile: profile(instance, 'root-ca') });
    await instance.reloadCas();
    const root = await unlockCa(instance, keys, 'root');
    const issuingToken = instance.tokens.issuingToken;
    const issuingDeps = issuingToken ? { ...deps, keystore: await instance.tokens.open(issuingToken), token: issuingToken } : deps;
    await createIssuingCa(issuingDeps, root, { id: 'issuing-1', subject: { O: 'Trellis', CN: 'Trellis Issuing CA 1' }, algorithm: 'ecdsa-p256', profile: profile(instance, 'issuing-ca') });
    await instance.reloadCas();
    const issuing = await unlockCa(instance, keys, 'issuing-1');
    const responder = await issueOcspResponder(instance, keystore, issuing, opts.actor);
    // The audit signer's key is online (serve signs checkpoints), certified by the root while it is unlocked.
    await issueAuditSigner(instance, keystore, root, opts.actor);
    // The root's ARL is signed now, while its key is unlocked; issuing CAs' CRLs are kept fresh by `serve`.
    await publishArl(instance, root);
    rootKeystore?.close();
    writeInstanceConfig(opts.dataDir, { ...config, defaultIssuer: 'issuing-1' });
    await instance.audit.record('instance.initialized', opts.actor, { baseUrl: config.baseUrl, database: instance.store.kind });
    return {
      dataDir: path.resolve(opts.dataDir),
      baseUrl: config.baseUrl,
      database: instance.store.kind,
      keystore: config.keystore,
      cas: instance.cas.map((c) => ({ id: c.id, role: c.role, subject: c.subject, notAfter: c.notAfter, sha256: fingerprint(c.certDer) })),
      ocspResponder: { serialHex: responder.serialHex, notAfter: responder.notAfter },
      ...(opts.rootPassphrase === undefined && rootPassphrase !== undefined ? { generatedRootPassphrase: rootPassphrase } : {}),
    };
  } catch (err) {
    await instance?.close();
    instance = undefined;
    // A failed init leaves nothing behind that a retry would trip over.
    if (created) fs.rmSync(opts.dataDir, { recursive: true, force: true });
    throw err;
  } finally {
    await instance?.close();
  }
}
