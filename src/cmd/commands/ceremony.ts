/**
 * `trellis ceremony root|issuing`: operator-controlled CA creation, including
 * the two-step flow for an offline or external root. `--profile` picks the CA
 * profile (default root-ca / issuing-ca) and `--subject-attr NAME=VALUE` sets
 * a subject attribute it declares by OID (Matter's matterVID, matterPID).
 *
 * Making a CA (a root, an issuing CA signed here, or one imported with
 * `--import-cert`) needs the custodians' quorum for `ca.create` with the
 * parameters of {@link caCreateParams} (`--quorum-request ID`); for an
 * issuing CA signed here that one request also covers the use of its parent's
 * key. `--csr-out` makes a key and a CSR, no CA and no signature: no quorum.
 */
import fs from 'node:fs';
import { parse, parseDurationFlag, required, UsageError } from '../../cli/args.js';
import { createIssuingCa, createRootCa, importIssuingCa, issuingCaCsr } from '../../ca/ceremony.js';
import { assertPermits } from '../../ca/key-state.js';
import { PkiError } from '../../errors/pki-error.js';
import { keyAlgorithms, type KeyAlgorithm } from '../../keys/signing-key.js';
import { fingerprint } from '../../pki/certificate.js';
import type { NameAttribute, NameValues } from '../../pki/name.js';
import { derFromPemOrDer, toPem } from '../../pki/pem.js';
import { sha256Hex } from '../../pki/certificate.js';
import { readOne } from '../../pki/der.js';
import { encodeName, formatName, parseName } from '../../pki/name.js';
import { holdsKey, isOfflineCa, keystoreFor, openInstance, profile, tokenOf, unlockCa, verifyOnlinePassphrase } from '../instance.js';
import { quorumRequestFlag, quorumGate } from '../quorum.js';
import type { Keystore } from '../../keys/signing-key.js';
import type { SoftwareKeystore } from '../../keys/software-keystore.js';
import { ceremonySubject, checkCeremonyProfile } from './ceremony/profile.js';
import { ceremonyDeps } from '../init-instance.js';
import { issueOcspResponder } from '../held-certificates.js';
import { actorOf, assertDistinct, ceremonyTokenOf, dataDirOf, out, passphraseFor, pkcs11Flags, rootPassphraseFlag, rootPassphraseFor, tokenPinsOf } from './common.js';

const flags = {
  id: { type: 'string' }, cn: { type: 'string' }, o: { type: 'string' }, ou: { type: 'string' }, c: { type: 'string' },
  algorithm: { type: 'string' }, validity: { type: 'string' }, 'path-len': { type: 'string' }, parent: { type: 'string' },
  'csr-out': { type: 'string' }, 'import-cert': { type: 'string' }, 'root-cert': { type: 'string' }, 'root-id': { type: 'string' },
  profile: { type: 'string' }, 'subject-attr': { type: 'string', multiple: true },
  ...rootPassphraseFlag, ...quorumRequestFlag, ...pkcs11Flags,
} as const;

function algorithmOf(text: string | undefined, fallback: KeyAlgorithm): KeyAlgorithm {
  const a = text ?? fallback;
  if (!(keyAlgorithms as readonly string[]).includes(a)) throw new UsageError(`--algorithm must be one of ${keyAlgorithms.join(', ')}`);
  return a as KeyAlgorithm;
}

function pathLenOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 10) throw new UsageError('--path-len must be an integer 0..10');
  return n;
}

/** The subject as it will be encoded, in display form ("O=Example, CN=Issuing 1"); a value the encoder refuses is refused here. */
const subjectText = (subject: NameValues): string => formatName(parseName(readOne(encodeName(subject))));

/**
 * What the custodians approve for `ca.create`: everything that decides what
 * gets signed, as the ceremony is about to use it. A CA made here: its role,
 * id, parent (issuing), profile, subject, key algorithm and keystore, and the
 * validity and path length (`profile` when the profile's apply). An imported
 * CA: its id, parent and the SHA-256 of its certificate and of the root's.
 */
export function caCreateParams(p:
  | { role: 'root' | 'issuing'; id: string; parent?: string; profile: string; subject: NameValues; algorithm: KeyAlgorithm; token: string | undefined; validitySeconds: number | undefined; pathLen: number | undefined }
  | { role: 'imported'; id: string; parent: string; certDer: Buffer; rootCertDer: Buffer }): Record<string, string> {
  if (p.role === 'imported') return { role: 'issuing', id: p.id, parent: p.parent, certificateSha256: sha256Hex(p.certDer), rootSha256: sha256Hex(p.rootCertDer) };
  return {
    role: p.role, id: p.id, ...(p.parent !== undefined ? { parent: p.parent } : {}), profile: p.profile, subject: subjectText(p.subject), algorithm: p.algorithm,
    keystore: p.token !== undefined ? `pkcs11:${p.token}` : 'software',
    validity: p.validitySeconds !== undefined ? `${p.validitySeconds}s` : 'profile', pathLen: p.pathLen !== undefined ? String(p.pathLen) : 'profile',
  };
}

function readFileOrFail(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new PkiError('notFound', `cannot read ${file}`, { cause: err });
  }
}

/**
 * `ceremony protect-root`: a root made before roots had their own passphrase
 * moves under one. It changes what holds the root's key, so it needs the
 * quorum for `root-key.use` with `{ ca, purpose: "protect-root" }`.
 */
async function protectRootCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { id: { type: 'string' }, ...rootPassphraseFlag, ...quorumRequestFlag });
  const id = values.id ?? 'root';
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const { assertProtectable, protectRoot } = await import('./ceremony/protect-root.js');
    await assertProtectable(instance, id);
    const actor = actorOf();
    const quorum = await quorumGate(instance, 'root-key.use', { ca: id, purpose: 'protect-root' }, { requestId: values['quorum-request'], actor });
    const passphrase = await passphraseFor(values);
    const rootPassphrase = await rootPassphraseFor(values, { confirm: true, forNew: true });
    assertDistinct(passphrase, rootPassphrase);
    await quorum.use();
    const r = await protectRoot(instance, { id, passphrase, rootPassphrase, actor });
    const o = out(values);
    o.result(r);
    o.say(`root CA "${r.ca}": key now opens only with the root passphrase (key ${r.keyId}); the envelope under the online passphrase (${r.destroyedKeyId}) is destroyed`);
    return 0;
  } finally {
    await instance.close();
  }
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'protect-root') return protectRootCommand(rest);
  if (sub === 'split-root-secret') return (await import('./ceremony/split-root-secret.js')).splitRootSecretCommand(rest);
  if (sub === 'root-rollover') return (await import('./ceremony/root-rollover.js')).rootRolloverCommand(rest);
  if (sub !== 'root' && sub !== 'issuing') throw new UsageError('usage: trellis ceremony root|issuing|protect-root|split-root-secret|root-rollover …');
  const { values } = parse(rest, flags);
  const id = required(values.id, 'id');
  const importing = sub === 'issuing' && values['import-cert'] !== undefined;
  if (importing && (values.profile !== undefined || values['subject-attr'])) {
    throw new UsageError('--import-cert takes the subject and extensions from the signed certificate: --profile and --subject-attr do not apply');
  }
  if (!importing) required(values.cn, 'cn');
  const standard: Partial<Record<NameAttribute, string>> = {};
  if (values.c) standard.C = values.c;
  if (values.o) standard.O = values.o;
  if (values.ou) standard.OU = values.ou;
  if (values.cn) standard.CN = values.cn;
  const validitySeconds = values.validity ? parseDurationFlag(values.validity, 'validity') : undefined;
  const pathLen = pathLenOf(values['path-len']);
  const instance = await openInstance(dataDirOf(values.data));
  const o = out(values);
  const keys: { online?: SoftwareKeystore; offline?: SoftwareKeystore } = {};
  try {
    // The inputs are checked, then the quorum, before any passphrase is asked for or key made.
    const caProfile = importing ? undefined : profile(instance, values.profile ?? (sub === 'root' ? 'root-ca' : 'issuing-ca'));
    const parentId = values.parent ?? 'root';
    if (importing && values['csr-out'] !== undefined) throw new UsageError('--csr-out and --import-cert are the two steps of one ceremony: give one of them');
    const csrOut = sub === 'issuing' ? values['csr-out'] : undefined;
    const csrOnly = csrOut !== undefined;
    const signedHere = sub === 'issuing' && !csrOnly && !importing;
    let subject: NameValues = standard;
    if (caProfile) {
      const parent = signedHere ? instance.cas.find((c) => c.id === parentId) : undefined;
      checkCeremonyProfile(caProfile, sub, parent);
      subject = ceremonySubject(caProfile, standard, values['subject-attr'] ?? []);
    }
    const token = ceremonyTokenOf(values, instance.config.keystore, sub);
    if (instance.cas.some((c) => c.id === id)) throw new PkiError('conflict', `a CA named "${id}" already exists; ceremonies never overwrite a CA`);
    if (signedHere) {
      const parent = instance.cas.find((c) => c.id === parentId);
      if (!parent) throw new PkiError('notFound', `no CA "${parentId}"`);
      if (!holdsKey(parent)) throw new PkiError('forbidden', `CA "${parentId}" is not held by this instance: it cannot sign here (use --csr-out)`);
      assertPermits(parent.id, parent.keyState, 'certificate');
    }
    const algorithm = algorithmOf(values.algorithm, sub === 'root' ? 'ecdsa-p384' : 'ecdsa-p256');
    let imported: { certDer: Buffer; rootCertDer: Buffer; rootId: string } | undefined;
    if (importing) {
      imported = {
        certDer: derFromPemOrDer(readFileOrFail(values['import-cert']!), ['CERTIFICATE'], 'certificate'),
        rootCertDer: derFromPemOrDer(readFileOrFail(required(values['root-cert'], 'root-cert')), ['CERTIFICATE'], 'root certificate'),
        rootId: values['root-id'] ?? 'external-root',
      };
    }
    let quorum: { use(): Promise<unknown> } | undefined;
    if (!csrOnly) {
      const params = imported
        ? caCreateParams({ role: 'imported', id, parent: imported.rootId, certDer: imported.certDer, rootCertDer: imported.rootCertDer })
        : caCreateParams({ role: sub, id, ...(sub === 'issuing' ? { parent: parentId } : {}), profile: caProfile!.name, subject, algorithm, token, validitySeconds, pathLen });
      // Checked before any secret is asked for; the request is used once the secrets are verified.
      quorum = await quorumGate(instance, 'ca.create', params, { requestId: values['quorum-request'], actor: actorOf() });
    }
    instance.tokens.setPins(tokenPinsOf(values));
    let tokenKeystore: Keystore | undefined;
    if (sub === 'root' && token) {
      // A new root in its own token: the token's PIN is its secret; no passphrase is needed.
      tokenKeystore = await instance.tokens.open(token);
    } else if (sub === 'root') {
      // A new root: its key goes under the root passphrase only; the online passphrase is not needed.
      const rootPassphrase = await rootPassphraseFor(values, { confirm: true, forNew: true });
      if (process.env.TRELLIS_PASSPHRASE) assertDistinct(process.env.TRELLIS_PASSPHRASE, rootPassphrase);
      keys.offline = keystoreFor(instance, rootPassphrase);
    } else {
      // The online passphrase opens the software keys beside the CA (its OCSP responder), wherever the CA key goes.
      keys.online = keystoreFor(instance, await passphraseFor(values));
      if (token) tokenKeystore = await instance.tokens.open(token);
      const parent = instance.cas.find((c) => c.id === parentId);
      // Signing with an offline parent (the root) needs the root passphrase as well (a root in a token asks for its PIN instead).
      if (signedHere && parent && isOfflineCa(parent) && !tokenOf(parent)) keys.offline = keystoreFor(instance, await rootPassphraseFor(values));
    }
    const onlineKeystore = keys.online ?? keys.offline!;
    // The secrets, verified before the request is used: the online passphrase against the issuing CAs already here
    // (a new software key then shares their keystore salt), the parent's by opening its key.
    if (sub === 'issuing' && !token) await verifyOnlinePassphrase(instance, keys.online!);
    await instance.reloadCas();
    const parentIssuer = sub === 'issuing' && signedHere ? await unlockCa(instance, { ...keys, online: keys.online! }, parentId) : undefined;
    await quorum?.use();
    const deps = { ...ceremonyDeps(instance, tokenKeystore ?? onlineKeystore, actorOf()), ...(token ? { token } : {}) };
    const common = { id, subject, ...(validitySeconds ? { validitySeconds } : {}), ...(pathLen !== undefined ? { pathLen } : {}) };
    let record;
    if (sub === 'root') {
      record = await createRootCa(deps, { ...common, algorithm, profile: caProfile! });
    } else if (csrOut !== undefined) {
      if (fs.existsSync(csrOut)) throw new PkiError('conflict', `${csrOut} exists; ceremonies never overwrite an output`);
      const { csrDer, keyId } = await issuingCaCsr(deps, { id, subject, algorithm });
      fs.writeFileSync(csrOut, toPem('CERTIFICATE REQUEST', csrDer), { flag: 'wx' });
      o.result({ id, keyId, csr: csrOut });
      o.say(`CSR for issuing CA "${id}" written to ${csrOut}; have the root sign it, then run:\n  trellis ceremony issuing --id ${id} --import-cert FILE --root-cert ROOT.pem`);
      return 0;
    } else if (imported) {
      record = await importIssuingCa(deps, { id, certDer: imported.certDer, rootCertDer: imported.rootCertDer, ...(values['root-id'] ? { rootId: values['root-id'] } : {}) });
    } else {
      record = await createIssuingCa(deps, parentIssuer!, { ...common, algorithm, profile: caProfile! });
    }
    if (record.role === 'issuing') {
      await instance.reloadCas();
      await issueOcspResponder(instance, onlineKeystore, await unlockCa(instance, { online: onlineKeystore }, record.id), actorOf());
    }
    o.result({ id: record.id, role: record.role, subject: record.subject, notAfter: record.notAfter, sha256: fingerprint(record.certDer) });
    o.say(`created ${record.role} CA "${record.id}": ${record.subject}\n  valid until ${record.notAfter.toISOString()}\n  SHA-256 ${fingerprint(record.certDer)}`);
    return 0;
  } finally {
    keys.online?.close();
    keys.offline?.close();
    await instance.close();
  }
}
