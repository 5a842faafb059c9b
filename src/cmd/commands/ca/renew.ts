/**
 * `trellis ca renew --ca ID [--parent ID] [--validity 5y] [--quorum-request R]`:
 * a new certificate for the same key of issuing CA ID (same subject and
 * subject key identifier, new serial and validity), signed by its parent or
 * by the root `--parent` (after a root rollover). The CA record points at the
 * new certificate; the old one stays among the certificates of its issuer.
 * The parent's key is used, so its secret is needed, and the custodians'
 * quorum approves `root-key.use` with `{ ca: PARENT, purpose: "renew ID" }`.
 */
import { parse, parseDurationFlag, required } from '../../../cli/args.js';
import { PkiError } from '../../../errors/pki-error.js';
import type { SoftwareKeystore } from '../../../keys/software-keystore.js';
import { fingerprint, parseCertificate, sha256Hex } from '../../../pki/certificate.js';
import { holdsKey, isOfflineCa, keystoreFor, openInstance, tokenOf, unlockCa } from '../../instance.js';
import { quorumGate, quorumRequestFlag } from '../../quorum.js';
import { certifyCaKeyAgain, profileOfCa } from './recertify.js';
import { actorOf, dataDirOf, out, passphraseFor, pkcs11Flags, rootPassphraseFlag, rootPassphraseFor, tokenPinsOf } from '../common.js';

const flags = { ca: { type: 'string' }, parent: { type: 'string' }, validity: { type: 'string' }, ...rootPassphraseFlag, ...quorumRequestFlag, ...pkcs11Flags } as const;

export async function renewCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, flags);
  const caId = required(values.ca, 'ca');
  const validitySeconds = values.validity ? parseDurationFlag(values.validity, 'validity') : undefined;
  const instance = await openInstance(dataDirOf(values.data));
  const opened: SoftwareKeystore[] = [];
  try {
    const ca = instance.cas.find((c) => c.id === caId);
    if (!ca) throw new PkiError('notFound', `no CA "${caId}"`);
    if (ca.role !== 'issuing') throw new PkiError('malformed', `CA "${caId}" is a root: a root is replaced by a rollover (\`trellis ceremony root-rollover\`)`);
    if (ca.keyState === 'compromised' || ca.keyState === 'destroyed') throw new PkiError('conflict', `CA "${caId}" cannot be renewed: its key is ${ca.keyState}`);
    const parentId = values.parent ?? ca.parentId;
    const parent = instance.cas.find((c) => c.id === parentId);
    if (!parent) throw new PkiError('notFound', `no CA "${parentId}"`);
    if (parent.role !== 'root') throw new PkiError('malformed', `the parent of issuing CA "${caId}" must be a root; "${parent.id}" is not`);
    if (!holdsKey(parent)) throw new PkiError('forbidden', `root "${parent.id}" is not held by this instance: it cannot sign here`);
    // The profile of the certificate being renewed (its row under the current parent).
    const caProfile = await profileOfCa(instance, ca, 'issuing-ca');
    const actor = actorOf();
    // The quorum is checked before any secret is asked for, and used once the parent's key is open.
    const quorum = await quorumGate(instance, 'root-key.use', { ca: parent.id, purpose: `renew ${caId}` }, { requestId: values['quorum-request'], actor });
    // The parent's secret: its token's PIN, the root passphrase for an offline software key, else the online passphrase.
    instance.tokens.setPins(tokenPinsOf(values));
    // (A parent in a token opens with its PIN; the software keystore given beside it is then not used.)
    const keystore = keystoreFor(instance, isOfflineCa(parent) && !tokenOf(parent) ? await rootPassphraseFor(values) : await passphraseFor(values));
    opened.push(keystore);
    const signer = await unlockCa(instance, { online: keystore, offline: keystore }, parent.id);
    await quorum.use();
    const issued = await certifyCaKeyAgain(instance, signer, ca.certDer, caProfile, { validitySeconds, actor });
    const cert = parseCertificate(issued.certDer);
    await instance.store.cas.setCertificate(caId, { certDer: issued.certDer, parentId: parent.id, notBefore: cert.notBefore, notAfter: cert.notAfter });
    await instance.audit.record('ca.renewed', actor, {
      ca: caId, parent: parent.id, previousParent: ca.parentId, previousSha256: sha256Hex(ca.certDer), serialHex: issued.serialHex, sha256: sha256Hex(issued.certDer),
      notAfter: cert.notAfter.toISOString(),
    });
    const o = out(values);
    o.result({ ca: caId, parent: parent.id, serialHex: issued.serialHex, notBefore: cert.notBefore, notAfter: cert.notAfter, sha256: fingerprint(issued.certDer) });
    o.say(`CA "${caId}" renewed by "${parent.id}": same key, serial ${issued.serialHex}, valid until ${cert.notAfter.toISOString()}\n  SHA-256 ${fingerprint(issued.certDer)}\n  a running \`trellis serve\` hands out the new chain within a second`);
    return 0;
  } finally {
    for (const k of opened) k.close();
    await instance.close();
  }
}
