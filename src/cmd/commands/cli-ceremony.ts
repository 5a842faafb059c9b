/**
 * `trellis ceremony root|issuing`: operator-controlled CA creation, including
 * the two-step flow for an offline or external root. `--profile` picks the CA
 * profile (default root-ca / issuing-ca) and `--subject-attr NAME=VALUE` sets
 * a subject attribute it declares by OID (Matter's matterVID, matterPID).
 */
import fs from 'node:fs';
import { parse, parseDurationFlag, required, UsageError } from '../../cli/args.js';
import { createIssuingCa, createRootCa, importIssuingCa, issuingCaCsr } from '../../ca/ceremony.js';
import { PkiError } from '../../errors/pki-error.js';
import { keyAlgorithms, type KeyAlgorithm } from '../../keys/signing-key.js';
import { fingerprint } from '../../pki/certificate.js';
import type { NameAttribute, NameValues } from '../../pki/name.js';
import { derFromPemOrDer, toPem } from '../../pki/pem.js';
import { isOfflineCa, keystoreFor, openInstance, profile, tokenOf, unlockCa } from '../instance.js';
import type { Keystore } from '../../keys/signing-key.js';
import type { SoftwareKeystore } from '../../keys/software-keystore.js';
import { ceremonySubject, checkCeremonyProfile } from './ceremony-profile.js';
import { ceremonyDeps } from './init.js';
import { issueOcspResponder } from './responder.js';
import { actorOf, assertDistinct, ceremonyTokenOf, dataDirOf, out, passphraseFor, pkcs11Flags, rootPassphraseFlag, rootPassphraseFor, tokenPinsOf } from './common.js';

const flags = {
  id: { type: 'string' }, cn: { type: 'string' }, o: { type: 'string' }, ou: { type: 'string' }, c: { type: 'string' },
  algorithm: { type: 'string' }, validity: { type: 'string' }, 'path-len': { type: 'string' }, parent: { type: 'string' },
  'csr-out': { type: 'string' }, 'import-cert': { type: 'string' }, 'root-cert': { type: 'string' }, 'root-id': { type: 'string' },
  profile: { type: 'string' }, 'subject-attr': { type: 'string', multiple: true },
  ...rootPassphraseFlag, ...pkcs11Flags,
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

function readFileOrFail(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new PkiError('notFound', `cannot read ${file}`, { cause: err });
  }
}

/** `ceremony protect-root`: a root made before roots had their own passphrase moves under one. */
async function protectRootCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { id: { type: 'string' }, ...rootPassphraseFlag });
  const passphrase = await passphraseFor(values);
  const rootPassphrase = await rootPassphraseFor(values, { confirm: true, forNew: true });
  assertDistinct(passphrase, rootPassphrase);
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const { protectRoot } = await import('./protect-root.js');
    const r = await protectRoot(instance, { id: values.id ?? 'root', passphrase, rootPassphrase, actor: actorOf() });
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
  if (sub === 'split-root-secret') return (await import('./split-root-secret.js')).splitRootSecretCommand(rest);
  if (sub === 'root-rollover') return (await import('./root-rollover.js')).rootRolloverCommand(rest);
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
    // The profile and subject are checked before any passphrase is asked for or key made.
    const caProfile = importing ? undefined : profile(instance, values.profile ?? (sub === 'root' ? 'root-ca' : 'issuing-ca'));
    let subject: NameValues = standard;
    if (caProfile) {
      const parent = sub === 'issuing' && !values['csr-out'] ? instance.cas.find((c) => c.id === (values.parent ?? 'root')) : undefined;
      checkCeremonyProfile(caProfile, sub, parent);
      subject = ceremonySubject(caProfile, standard, values['subject-attr'] ?? []);
    }
    instance.tokens.setPins(tokenPinsOf(values));
    const token = ceremonyTokenOf(values, instance.config.keystore, sub);
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
      const parent = instance.cas.find((c) => c.id === (values.parent ?? 'root'));
      // Signing with an offline parent (the root) needs the root passphrase as well (a root in a token asks for its PIN instead).
      if (!values['csr-out'] && !values['import-cert'] && parent && isOfflineCa(parent) && !tokenOf(parent)) keys.offline = keystoreFor(instance, await rootPassphraseFor(values));
    }
    const onlineKeystore = keys.online ?? keys.offline!;
    const deps = { ...ceremonyDeps(instance, tokenKeystore ?? onlineKeystore, actorOf()), ...(token ? { token } : {}) };
    const common = { id, subject, ...(validitySeconds ? { validitySeconds } : {}), ...(pathLen !== undefined ? { pathLen } : {}) };
    let record;
    if (sub === 'root') {
      record = await createRootCa(deps, { ...common, algorithm: algorithmOf(values.algorithm, 'ecdsa-p384'), profile: caProfile! });
    } else if (values['csr-out']) {
      if (fs.existsSync(values['csr-out'])) throw new PkiError('conflict', `${values['csr-out']} exists; ceremonies never overwrite an output`);
      const { csrDer, keyId } = await issuingCaCsr(deps, { id, subject, algorithm: algorithmOf(values.algorithm, 'ecdsa-p256') });
      fs.writeFileSync(values['csr-out'], toPem('CERTIFICATE REQUEST', csrDer), { flag: 'wx' });
      o.result({ id, keyId, csr: values['csr-out'] });
      o.say(`CSR for issuing CA "${id}" written to ${values['csr-out']}; have the root sign it, then run:\n  trellis ceremony issuing --id ${id} --import-cert FILE --root-cert ROOT.pem`);
      return 0;
    } else if (values['import-cert']) {
      const certDer = derFromPemOrDer(readFileOrFail(values['import-cert']), ['CERTIFICATE'], 'certificate');
      const rootCertDer = derFromPemOrDer(readFileOrFail(required(values['root-cert'], 'root-cert')), ['CERTIFICATE'], 'root certificate');
      record = await importIssuingCa(deps, { id, certDer, rootCertDer, ...(values['root-id'] ? { rootId: values['root-id'] } : {}) });
    } else {
      await instance.reloadCas();
      const root = await unlockCa(instance, { ...keys, online: keys.online! }, values.parent ?? 'root');
      record = await createIssuingCa(deps, root, { ...common, algorithm: algorithmOf(values.algorithm, 'ecdsa-p256'), profile: caProfile! });
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
