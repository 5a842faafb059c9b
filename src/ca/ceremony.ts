/**
 * Key ceremonies: create a root CA, create an issuing CA signed by a root held
 * here, or the two-step flow for an offline/external root (CSR out, signed
 * certificate in). A ceremony never overwrites a CA and audits every step.
 */
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import type { KeyAlgorithm, Keystore, SigningKey } from '../keys/signing-key.js';
import { caCertificateRules, runLints, throwOnErrors } from '../lint/index.js';
import { parseCertificate, sha256Hex, findExtension, type ParsedCertificate } from '../pki/certificate.js';
import { bitString, children, ctx, int, oid, readBitString, readOne, seq, setOf } from '../pki/der.js';
import { basicConstraintsExtension, decodeBasicConstraints, keyUsageExtension } from '../pki/extensions.js';
import { encodeName, formatName, type NameValues } from '../pki/name.js';
import { OID } from '../pki/oids.js';
import { describeKey, loadSpki } from '../pki/public-key.js';
import { verifySignature } from '../pki/signature.js';
import type { Profile } from '../profiles/types.js';
import { signatureAlgorithmDer } from './algorithms.js';
import { signTbs, type CertificateAuthority } from './authority.js';
import { ExtensionTemplate } from './extensions.js';
import { keyIdentifierOf, type CaUrls, type Issuer } from './issuer.js';
import { newKeyRef } from './unlock.js';
import type { CaRecord, CaRepository, NewCaRecord } from './ports.js';
import { checkSubjectPolicy } from './policy.js';
import { prepare, type IssueRequest } from './prepare.js';
import { cryptoRandom, type RandomSource } from './serial.js';

export interface CeremonyDeps {
  keystore: Keystore;
  /** The label of the PKCS#11 token `keystore` is, when it is one: new CA records point there. */
  token?: string;
  cas: CaRepository;
  audit: AuditLog;
  clock: Clock;
  urls: CaUrls;
  authority: CertificateAuthority;
  random?: RandomSource;
  /** Who runs the ceremony (recorded in the audit log). */
  actor: string;
}

export interface NewCaOptions {
  /** Slug used in URLs and flags, e.g. "root" or "issuing-2026". */
  id: string;
  /** Standard attributes by short name, attributes the profile declares by OID (e.g. Matter's VID). */
  subject: NameValues;
  algorithm: KeyAlgorithm;
  validitySeconds?: number;
  /** Overrides the profile's path length. */
  pathLen?: number;
  profile: Profile;
}

const caIdPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

async function assertNewCa(cas: CaRepository, id: string): Promise<void> {
  if (!caIdPattern.test(id)) throw new PkiError('malformed', `CA id "${id}" must be lower-case letters, digits and dashes`);
  if (await cas.findById(id)) throw new PkiError('conflict', `a CA named "${id}" already exists; ceremonies never overwrite a CA`);
}

function withPathLen(profile: Profile, pathLen: number | undefined): Profile {
  if (pathLen === undefined) return profile;
  if (!profile.basicConstraints.ca) throw new PkiError('badProfile', 'path length applies to CA profiles only');
  return { ...profile, basicConstraints: { ca: true, pathLen } };
}

/** Refuses, before any key exists, an algorithm the CA's profile does not allow (matter-paa: P-256 only). */
function assertAlgorithmAllowed(profile: Profile, algorithm: KeyAlgorithm): void {
  const { rsa, ecdsa = [], ed25519 } = profile.keys;
  const ok =
    algorithm === 'ed25519' ? ed25519 === true
    : algorithm === 'ecdsa-p256' ? ecdsa.includes('P-256')
    : algorithm === 'ecdsa-p384' ? ecdsa.includes('P-384')
    : rsa !== undefined && Number(algorithm.slice(4)) >= rsa.minBits && Number(algorithm.slice(4)) <= rsa.maxBits;
  if (!ok) throw new PkiError('badPublicKey', `profile "${profile.name}" does not allow ${algorithm} keys`);
}

function keyInfoOf(key: SigningKey) {
  return describeKey(key.publicKey);
}

/** The CA record as the store now holds it (its key state and creation time are the store's). */
async function stored(deps: CeremonyDeps, id: string): Promise<CaRecord> {
  const r = await deps.cas.findById(id);
  if (!r) throw new PkiError('serverInternal', `CA "${id}" was not stored`);
  return r;
}

function recordFor(id: string, role: 'root' | 'issuing', parentId: string | null, certDer: Buffer, keyRef: object): NewCaRecord {
  const cert = parseCertificate(certDer);
  return {
    id,
    name: id,
    role,
    parentId,
    certDer,
    subject: formatName(cert.subject),
    skiHex: keyIdentifierOf(cert.subjectPublicKey).toString('hex'),
    keyRef: JSON.stringify(keyRef),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

/**
 * Creates a self-signed root CA with a new key. `deps.keystore` must be the
 * offline keystore (root passphrase, or the root's own PKCS#11 token): the
 * record marks the key offline, so `serve` and every online command refuse
 * to unlock it.
 */
export async function createRootCa(deps: CeremonyDeps, opts: NewCaOptions): Promise<CaRecord> {
  await assertNewCa(deps.cas, opts.id);
  if (opts.profile.signer !== 'self') throw new PkiError('badProfile', `profile "${opts.profile.name}" is not a root profile`);
  const profile = withPathLen(opts.profile, opts.pathLen);
  // A self-signed certificate passes no issuer's checks: the profile's key and subject rules apply here.
  assertAlgorithmAllowed(profile, opts.algorithm);
  checkSubjectPolicy(profile, opts.subject);
  const key = await deps.keystore.generate(opts.algorithm);
  await deps.audit.record('ceremony.root.key_generated', deps.actor, { ca: opts.id, keyId: key.keyId, algorithm: key.algorithm });
  const signatureAlgorithm = signatureAlgorithmDer(key.algorithm);
  const keyIdentifier = keyIdentifierOf(readBitString(children(readOne(key.spkiDer))[1]!).bytes);
  const req: IssueRequest = {
    profile, subject: opts.subject, sans: [], spkiDer: key.spkiDer, keyInfo: keyInfoOf(key),
    ...(opts.validitySeconds ? { validitySeconds: opts.validitySeconds } : {}), requestedVia: 'ceremony', requestedBy: deps.actor,
  };
  const prepared = prepare(
    { id: opts.id, algorithm: key.algorithm, signatureAlgorithm, nameDer: null, cert: null, notAfter: null, crlShards: 1 },
    new ExtensionTemplate({ id: opts.id, keyIdentifier }, profile, deps.urls), req, deps.clock, deps.random ?? cryptoRandom,
  );
  // A self-signed root has no issuer record to hold its intent: the audit log does.
  await deps.audit.record('ceremony.root.signing', deps.actor, { ca: opts.id, serialHex: prepared.serialHex, lintSha256: sha256Hex(prepared.lintCertDer) });
  const certDer = await signTbs({ id: opts.id, key, signatureAlgorithm }, prepared);
  const record = recordFor(opts.id, 'root', null, certDer, newKeyRef(key.keyId, { token: deps.token, offline: true }));
  await deps.cas.insert(record);
  await deps.audit.record('ceremony.root.created', deps.actor, { ca: opts.id, serialHex: prepared.serialHex, sha256: sha256Hex(certDer), subject: record.subject });
  return stored(deps, record.id);
}

/** Creates an issuing CA with a new key, signed by a root whose key is unlocked here. */
export async function createIssuingCa(deps: CeremonyDeps, root: Issuer, opts: NewCaOptions): Promise<CaRecord> {
  await assertNewCa(deps.cas, opts.id);
  const profile = withPathLen(opts.profile, opts.pathLen);
  assertAlgorithmAllowed(profile, opts.algorithm);
  const key = await deps.keystore.generate(opts.algorithm);
  await deps.audit.record('ceremony.issuing.key_generated', deps.actor, { ca: opts.id, keyId: key.keyId, algorithm: key.algorithm });
  const issued = await deps.authority.issue(root.id, {
    profile, subject: opts.subject, sans: [], spkiDer: key.spkiDer, keyInfo: keyInfoOf(key),
    ...(opts.validitySeconds ? { validitySeconds: opts.validitySeconds } : {}), requestedVia: 'ceremony', requestedBy: deps.actor,
  });
  const record = recordFor(opts.id, 'issuing', root.id, issued.certDer, newKeyRef(key.keyId, { token: deps.token }));
  await deps.cas.insert(record);
  await deps.audit.record('ceremony.issuing.created', deps.actor, { ca: opts.id, parent: root.id, serialHex: issued.serialHex, sha256: sha256Hex(issued.certDer) });
  return stored(deps, record.id);
}

// CertificationRequestInfo ::= SEQUENCE { version INTEGER { v1(0) }, subject Name,
//   subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT SET OF Attribute }
/** Builds a PKCS#10 CSR for a CA key (extensionRequest: basicConstraints cA, keyCertSign+cRLSign). */
export async function buildCaCsr(key: SigningKey, subject: NameValues): Promise<Buffer> {
  const exts = seq(basicConstraintsExtension(true), keyUsageExtension(['digitalSignature', 'keyCertSign', 'cRLSign']));
  const attributes = ctx(0, true, seq(oid(OID.extensionRequest), setOf(exts)));
  const info = seq(int(0), encodeName(subject), key.spkiDer, attributes);
  const alg = signatureAlgorithmDer(key.algorithm);
  return seq(info, alg, bitString(await key.sign(info)));
}

/** Step 1 of the external-root flow: new key, CSR out. The key waits, unused, for its certificate. */
export async function issuingCaCsr(deps: CeremonyDeps, opts: { id: string; subject: NameValues; algorithm: KeyAlgorithm }): Promise<{ keyId: string; csrDer: Buffer }> {
  await assertNewCa(deps.cas, opts.id);
  const key = await deps.keystore.generate(opts.algorithm, { id: `pending-${opts.id}` });
  const csrDer = await buildCaCsr(key, opts.subject);
  await deps.audit.record('ceremony.issuing.csr_created', deps.actor, { ca: opts.id, keyId: key.keyId, csrSha256: sha256Hex(csrDer) });
  return { keyId: key.keyId, csrDer };
}

/**
 * Step 2: accept the certificate the external root signed, only if it chains
 * to `rootCertDer` (signature and names), is a CA, and carries our pending key.
 */
export async function importIssuingCa(deps: CeremonyDeps, opts: { id: string; certDer: Buffer; rootCertDer: Buffer; rootId?: string }): Promise<CaRecord> {
  await assertNewCa(deps.cas, opts.id);
  const key = await deps.keystore.load(`pending-${opts.id}`);
  const cert = parseCertificate(opts.certDer);
  const root = parseCertificate(opts.rootCertDer);
  if (!cert.spkiDer.equals(key.spkiDer)) throw new PkiError('badPublicKey', 'the certificate does not carry the key generated for this CA');
  if (!cert.issuerDer.equals(root.subjectDer)) throw new PkiError('malformed', "certificate issuer does not match the root's subject");
  if (!verifySignature(cert.signatureAlgorithm.oid, loadSpki(root.spkiDer).publicKey, cert.tbsDer, cert.signature, 'certificate')) {
    throw new PkiError('malformed', 'certificate signature does not verify with the root key');
  }
  await lintImportedCa(deps, opts.id, cert, root);
  const bc = findExtension(cert, OID.basicConstraints);
  if (!bc || !decodeBasicConstraints(bc.valueDer).ca) throw new PkiError('malformed', 'certificate is not a CA certificate');
  const now = deps.clock.now();
  if (cert.notAfter < now) throw new PkiError('malformed', 'certificate has expired');
  const rootId = opts.rootId ?? 'external-root';
  if (!(await deps.cas.findById(rootId))) {
    await deps.cas.insert(recordFor(rootId, 'root', null, opts.rootCertDer, { type: 'external' }));
  }
  const record = recordFor(opts.id, 'issuing', rootId, opts.certDer, newKeyRef(key.keyId, { token: deps.token }));
  await deps.cas.insert(record);
  await deps.audit.record('ceremony.issuing.imported', deps.actor, { ca: opts.id, parent: rootId, sha256: sha256Hex(opts.certDer) });
  return stored(deps, record.id);
}

/**
 * Defence in depth for a CA certificate Trellis did not make (as Boulder
 * lints what it is about to trust): the certificate lints for a CA
 * certificate (src/lint `caCertificateRules`: basicConstraints cA critical,
 * keyUsage keyCertSign and cRLSign, key identifiers matching the root,
 * validity within the root's, a SHA-2 or EdDSA signature, name constraints
 * of the root, …). A finding refuses the import with `lintFailed`, audited
 * like a certificate's lint failure; nothing is stored.
 */
async function lintImportedCa(deps: CeremonyDeps, id: string, cert: ParsedCertificate, root: ParsedCertificate): Promise<void> {
  const findings = runLints({ cert, issuer: root }, caCertificateRules).filter((f) => f.id.startsWith('e_'));
  if (findings.length === 0) return;
  await deps.audit.record('ceremony.issuing.import_refused', deps.actor, { ca: id, lint: findings.map((f) => f.id), sha256: sha256Hex(cert.der) });
  throwOnErrors(findings, `the certificate for issuing CA "${id}" fails the CA certificate lints`);
}
