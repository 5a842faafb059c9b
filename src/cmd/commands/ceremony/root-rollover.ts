/**
 * `trellis ceremony root-rollover --id ID --cn NAME --out-dir DIR [--old root] [--o ORG] [--ou UNIT] [--c CC] [--algorithm ecdsa-p384] [--validity 20y]
 * [--keystore software|pkcs11] [--pkcs11-root-token LABEL] [--pkcs11-root-pin-file FILE]`:
 * a new self-signed root, and two cross certificates, so relying parties
 * that trust either root accept chains under both: the new root's key
 * certified by the old root, and the old root's key certified by the new
 * one. Written to DIR/root.pem, DIR/cross-new-by-old.pem and
 * DIR/cross-old-by-new.pem (never overwritten); each cross certificate is a
 * certificate of its signing root (recorded, audited).
 *
 * The old root's key opens with its secret: the root passphrase or shares
 * for a software root, the root token's PIN (TRELLIS_PKCS11_ROOT_PIN or
 * --pkcs11-root-pin-file) for a root in a PKCS#11 token. The new root's key
 * goes where `ceremony root` would put it (ceremonyTokenOf: the root token
 * of trellis.json unless the flags say otherwise), or, in software, under
 * its own passphrase (TRELLIS_NEW_ROOT_PASSPHRASE or
 * --new-root-passphrase-file). Needs the custodians' quorum for
 * `root-key.use` with `{ ca: OLD, purpose: "root-rollover ID" }`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse, parseDurationFlag, required, UsageError } from '../../../cli/args.js';
import { createRootCa } from '../../../ca/ceremony.js';
import { readPassphrase, ttyPrompt } from '../../../config/passphrase.js';
import { PkiError } from '../../../errors/pki-error.js';
import { keyAlgorithms, type Keystore, type KeyAlgorithm } from '../../../keys/signing-key.js';
import type { SoftwareKeystore } from '../../../keys/software-keystore.js';
import { fingerprint, sha256Hex } from '../../../pki/certificate.js';
import type { NameValues } from '../../../pki/name.js';
import { toPem } from '../../../pki/pem.js';
import type { Profile } from '../../../profiles/types.js';
import { isOfflineCa, keystoreFor, openInstance, profile, tokenOf, unlockCa, type CaKeystores, type Instance } from '../../instance.js';
import { quorumGate, quorumRequestFlag } from '../../quorum.js';
import { certifyCaKeyAgain } from '../ca/recertify.js';
import { ceremonySubject } from './profile.js';
import { actorOf, assertDistinct, ceremonyTokenOf, dataDirOf, out, pkcs11Flags, rootPassphraseFlag, rootPassphraseFor, tokenPinsOf } from '../common.js';
import { publishArl } from '../../crl-publishing.js';
import { ceremonyDeps } from '../../init-instance.js';

const flags = {
  id: { type: 'string' }, old: { type: 'string' }, cn: { type: 'string' }, o: { type: 'string' }, ou: { type: 'string' }, c: { type: 'string' },
  algorithm: { type: 'string' }, validity: { type: 'string' }, 'out-dir': { type: 'string' }, 'new-root-passphrase-file': { type: 'string' },
  ...rootPassphraseFlag, ...quorumRequestFlag, ...pkcs11Flags,
} as const;

const outputs = { root: 'root.pem', newByOld: 'cross-new-by-old.pem', oldByNew: 'cross-old-by-new.pem' } as const;

/**
 * A cross certificate is a CA certificate one root issues for the other's
 * key: the root profile's key rules and validity bounds, signed by a root,
 * with caIssuers and a CRL distribution point (the signing root's ARL) so a
 * relying party can fetch its issuer and check that it was not revoked.
 */
const crossProfileOf = (root: Profile): Profile => ({ ...root, name: `${root.name}-cross`, signer: 'root', urls: { ocsp: false, caIssuers: true, crl: true } });

/**
 * The keystores that open the old root's key: its token, logged in now with
 * the root token's PIN (unlockCa opens a token key through instance.tokens;
 * `online` is not used for it), or a software keystore under the root
 * passphrase or shares, added to `opened` to be closed.
 */
async function oldRootKeys(instance: Instance, token: string | undefined, values: { 'root-passphrase-file'?: string | undefined; share?: string[] | undefined }, opened: SoftwareKeystore[]): Promise<CaKeystores> {
  if (token) return { online: await instance.tokens.open(token) };
  const keys = keystoreFor(instance, await rootPassphraseFor(values));
  opened.push(keys);
  return { online: keys, offline: keys };
}

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
    const oldToken = tokenOf(old);
    if (!oldToken && !isOfflineCa(old)) throw new PkiError('forbidden', `root "${oldId}" is not held offline by this instance (a root made before roots had their own passphrase: run \`trellis ceremony protect-root --id ${oldId}\`)`);
    instance.tokens.setPins(tokenPinsOf(values));
    // Where the new key goes is settled before any secret is asked for.
    const newToken = ceremonyTokenOf(values, instance.config.keystore, 'root');
    const rootProfile = profile(instance, 'root-ca');
    const subject = ceremonySubject(rootProfile, standard, []);
    const actor = actorOf();
    // The quorum is checked before any secret is asked for, and used once both secrets are in hand.
    const quorum = await quorumGate(instance, 'root-key.use', { ca: oldId, purpose: `root-rollover ${id}` }, { requestId: values['quorum-request'], actor });
    // Both roots' secrets: the old one (passphrase or token PIN) opens its key now; the new one (token PIN or new passphrase) protects the new key.
    const oldRoot = await unlockCa(instance, await oldRootKeys(instance, oldToken, values, opened), oldId);
    let newKeys: Keystore;
    if (newToken) {
      // A new root in a token: the token's PIN is its secret (the same token as the old root's, or another one trellis.json names).
      newKeys = await instance.tokens.open(newToken);
    } else {
      const newPassphrase = await readPassphrase(
        { env: process.env.TRELLIS_NEW_ROOT_PASSPHRASE, file: values['new-root-passphrase-file'], prompt: process.stdin.isTTY ? ttyPrompt : undefined, label: 'new root key', envName: 'TRELLIS_NEW_ROOT_PASSPHRASE', fileFlag: 'new-root-passphrase-file' },
        { confirm: true, forNew: true },
      );
      if (process.env.TRELLIS_PASSPHRASE) assertDistinct(process.env.TRELLIS_PASSPHRASE, newPassphrase);
      const software = keystoreFor(instance, newPassphrase);
      opened.push(software);
      newKeys = software;
    }
    await quorum.use();
    const created = await createRootCa({ ...ceremonyDeps(instance, newKeys, actor), ...(newToken ? { token: newToken } : {}) }, { id, subject, algorithm, profile: rootProfile, ...(validitySeconds ? { validitySeconds } : {}) });
    await instance.reloadCas();
    // A token key opens through instance.tokens (unlockCa); a software one from newKeys.
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
