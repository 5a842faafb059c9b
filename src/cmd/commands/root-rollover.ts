/**
 * `trellis ceremony root-rollover --id ID --cn NAME --out-dir DIR [--old root] [--o ORG] [--ou UNIT] [--c CC] [--algorithm ecdsa-p384] [--validity 20y]`:
 * a new self-signed root (offline, under its own passphrase:
 * TRELLIS_NEW_ROOT_PASSPHRASE or --new-root-passphrase-file), and two cross
 * certificates, so relying parties that trust either root accept chains
 * under both: the new root's key certified by the old root, and the old
 * root's key certified by the new one. Written to DIR/root.pem,
 * DIR/cross-new-by-old.pem and DIR/cross-old-by-new.pem (never overwritten);
 * each cross certificate is a certificate of its signing root (recorded,
 * audited). Needs the old root's secret (root passphrase or shares) and the
 * custodians' quorum for `root-key.use` with `{ ca: OLD, purpose: "root-rollover ID" }`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse, parseDurationFlag, required, UsageError } from '../../cli/args.js';
import { createRootCa } from '../../ca/ceremony.js';
import { readPassphrase, ttyPrompt } from '../../config/passphrase.js';
import { PkiError } from '../../errors/pki-error.js';
import { keyAlgorithms, type KeyAlgorithm } from '../../keys/signing-key.js';
import type { SoftwareKeystore } from '../../keys/software-keystore.js';
import { fingerprint, sha256Hex } from '../../pki/certificate.js';
import type { NameValues } from '../../pki/name.js';
import { toPem } from '../../pki/pem.js';
import type { Profile } from '../../profiles/types.js';
import { isOfflineCa, keystoreFor, openInstance, profile, tokenOf, unlockCa } from '../instance.js';
import { quorumRequestFlag, requireQuorum } from '../quorum.js';
import { certifyCaKeyAgain } from './ca-recertify.js';
import { ceremonySubject } from './ceremony-profile.js';
import { actorOf, assertDistinct, dataDirOf, out, rootPassphraseFlag, rootPassphraseFor } from './common.js';
import { publishArl } from './crl.js';
import { ceremonyDeps } from './init.js';

const flags = {
  id: { type: 'string' }, old: { type: 'string' }, cn: { type: 'string' }, o: { type: 'string' }, ou: { type: 'string' }, c: { type: 'string' },
  algorithm: { type: 'string' }, validity: { type: 'string' }, 'out-dir': { type: 'string' }, 'new-root-passphrase-file': { type: 'string' },
  ...rootPassphraseFlag, ...quorumRequestFlag,
} as const;

const outputs = { root: 'root.pem', newByOld: 'cross-new-by-old.pem', oldByNew: 'cross-old-by-new.pem' } as const;

/**
 * A cross certificate is a CA certificate one root issues for the other's
 * key: the root profile's key rules and validity bounds, signed by a root,
 * with caIssuers and a CRL distribution point (the signing root's ARL) so a
 * relying party can fetch its issuer and check that it was not revoked.
 */
const crossProfileOf = (root: Profile): Profile => ({ ...root, name: `${root.name}-cross`, signer: 'root', urls: { ocsp: false, caIssuers: true, crl: true } });

export async function rootRolloverCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, flags);
  const id = required(values.id, 'id');
  const outDir = required(values['out-dir'], 'out-dir');
  const standard: NameValues = { ...(values.c ? { C: values.c } : {}), ...(values.o ? { O: values.o } : {}), ...(values.ou ? { OU: values.ou } : {}), CN: required(values.cn, 'cn') };
  const algorithm = (values.algorithm ?? 'ecdsa-p384') as KeyAlgorithm;
  if (!(keyAlgorithms as readonly string[]).includes(algorithm)) throw new UsageError(`--algorithm must be one of ${keyAlgorithms.join(', ')}`);
  const validitySeconds = values.validity ? parseDurationFlag(values.validity, 'validity') : undefined;
  const files = Object.fromEntries(Object.entries(outputs).map(([k, f]) => [k, path.join(outDir, f)])) as Record<keyof typeof outputs, string>;
  for (const f of Object.values(files)) if (fs.existsSync(f)) throw new PkiError('conflict', `${f} exists; ceremonies never overwrite an output`);
  const instance = await openInstance(dataDirOf(values.data));
  const opened: SoftwareKeystore[] = [];
  try {
    const oldId = values.old ?? 'root';
    const old = instance.cas.find((c) => c.id === oldId);
    if (!old || old.role !== 'root') throw new PkiError('notFound', `no root CA "${oldId}"`);
    if (tokenOf(old)) throw new PkiError('forbidden', `root "${oldId}" is in a PKCS#11 token: a rollover from a token root is not supported yet`);
    if (!isOfflineCa(old)) throw new PkiError('forbidden', `root "${oldId}" is not held offline by this instance (a root made before roots had their own passphrase: run \`trellis ceremony protect-root --id ${oldId}\`)`);
    const rootProfile = profile(instance, 'root-ca');
    const subject = ceremonySubject(rootProfile, standard, []);
    // Both roots' secrets: the old one opens its key now, the new one protects the new key.
    const oldKeys = keystoreFor(instance, await rootPassphraseFor(values));
    opened.push(oldKeys);
    const oldRoot = await unlockCa(instance, { online: oldKeys, offline: oldKeys }, oldId);
    const newPassphrase = await readPassphrase(
      { env: process.env.TRELLIS_NEW_ROOT_PASSPHRASE, file: values['new-root-passphrase-file'], prompt: process.stdin.isTTY ? ttyPrompt : undefined, label: 'new root key', envName: 'TRELLIS_NEW_ROOT_PASSPHRASE', fileFlag: 'new-root-passphrase-file' },
      { confirm: true, forNew: true },
    );
    if (process.env.TRELLIS_PASSPHRASE) assertDistinct(process.env.TRELLIS_PASSPHRASE, newPassphrase);
    const actor = actorOf();
    await requireQuorum(instance, 'root-key.use', { ca: oldId, purpose: `root-rollover ${id}` }, { requestId: values['quorum-request'], actor });
    const newKeys = keystoreFor(instance, newPassphrase);
    opened.push(newKeys);
    const created = await createRootCa(ceremonyDeps(instance, newKeys, actor), { id, subject, algorithm, profile: rootProfile, ...(validitySeconds ? { validitySeconds } : {}) });
    await instance.reloadCas();
    const newRoot = await unlockCa(instance, { online: newKeys, offline: newKeys }, id);
    const crossProfile = crossProfileOf(rootProfile);
    const newByOld = await certifyCaKeyAgain(instance, oldRoot, created.certDer, crossProfile, { actor });
    const oldByNew = await certifyCaKeyAgain(instance, newRoot, old.certDer, crossProfile, { actor });
    // The new root's ARL now, while its key is open: issuing CAs certified by it point at it.
    await publishArl(instance, newRoot);
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(files.root, toPem('CERTIFICATE', created.certDer), { flag: 'wx' });
    fs.writeFileSync(files.newByOld, toPem('CERTIFICATE', newByOld.certDer), { flag: 'wx' });
    fs.writeFileSync(files.oldByNew, toPem('CERTIFICATE', oldByNew.certDer), { flag: 'wx' });
    await instance.audit.record('ceremony.root_rollover', actor, {
      old: oldId, new: id, rootSha256: sha256Hex(created.certDer),
      crossNewByOld: { serialHex: newByOld.serialHex, sha256: sha256Hex(newByOld.certDer) },
      crossOldByNew: { serialHex: oldByNew.serialHex, sha256: sha256Hex(oldByNew.certDer) },
    });
    const o = out(values);
    o.result({ old: oldId, new: id, subject: created.subject, notAfter: created.notAfter, files, sha256: { root: fingerprint(created.certDer), crossNewByOld: fingerprint(newByOld.certDer), crossOldByNew: fingerprint(oldByNew.certDer) } });
    o.say(`new root "${id}": ${created.subject}, valid until ${created.notAfter.toISOString()}\n  ${files.root}\n  ${files.newByOld} (certified by "${oldId}")\n  ${files.oldByNew} (certified by "${id}")\n  re-certify issuing CAs under it with \`trellis ca renew --ca ID --parent ${id}\``);
    return 0;
  } finally {
    for (const k of opened) k.close();
    await instance.close();
  }
}
