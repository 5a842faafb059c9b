/**
 * `trellis key list [--json]` and `trellis key activate|suspend|deactivate|compromise|destroy --ca ID [--reason TEXT]`:
 * the NIST SP 800-57 states of the CA keys (ca/key-state.ts). A transition
 * needs the secret of the keystore that holds the key (the root passphrase
 * for the root and other offline CAs, the online passphrase otherwise), and
 * marking an issuing CA's key compromised is a root operation: it also revokes
 * the issuing CA's certificate (cACompromise) on the root's CRL, so it needs
 * the root passphrase as well. Destroy and compromise also need the
 * custodians' approval (`--quorum-request ID`) when a quorum is configured.
 * A key in a PKCS#11 token is in the custody of that token's PIN (TRELLIS_PKCS11_PIN
 * or --pkcs11-pin-file; the root token's with TRELLIS_PKCS11_ROOT_PIN or
 * --pkcs11-root-pin-file): the token is logged in to, and `destroy` deletes
 * the key's objects from it.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { parse, required, UsageError } from '../../cli/args.js';
import { transitionKey } from '../../ca/key-lifecycle.js';
import { assertTransition, type KeyState } from '../../ca/key-state.js';
import { isPkiError, PkiError } from '../../errors/pki-error.js';
import { keyAlgorithmOfPublicKey } from '../../keys/algorithms.js';
import type { Keystore } from '../../keys/signing-key.js';
import type { SoftwareKeystore } from '../../keys/software-keystore.js';
import { parseCertificate } from '../../pki/certificate.js';
import { RevocationAuthority } from '../../ra/revoke.js';
import { holdsKey, isOfflineCa, keyIdOf, keystoreFor, openInstance, tokenOf, type Instance } from '../instance.js';
import { quorumGate, quorumRequestFlag } from '../quorum.js';
import { actorOf, dataDirOf, out, passphraseFor, pkcs11Flags, rootPassphraseFlag, rootPassphraseFor, tokenPinsOf } from './common.js';

const usage = `usage: trellis key list [--json]
       trellis key activate|suspend|deactivate|compromise|destroy --ca ID [--reason TEXT] [--quorum-request ID]`;

const verbs: Record<string, KeyState> = { activate: 'active', suspend: 'suspended', deactivate: 'deactivated', compromise: 'compromised', destroy: 'destroyed' };

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'list') return list(rest);
  const to = sub ? verbs[sub] : undefined;
  if (!to) throw new UsageError(usage);
  return transition(to, rest);
}

function algorithmName(key: KeyObject): string {
  const a = keyAlgorithmOfPublicKey(key);
  return typeof a === 'string' ? a : a.kind;
}

function whereOf(ca: Instance['cas'][number]): string {
  if (!holdsKey(ca)) return `external (${(JSON.parse(ca.keyRef) as { type: string }).type})`;
  const token = tokenOf(ca);
  if (token !== undefined) return `pkcs11 token "${token}", ${isOfflineCa(ca) ? 'offline' : 'online'}`;
  return isOfflineCa(ca) ? 'software, offline (root passphrase)' : 'software, online';
}

async function list(argv: string[]): Promise<number> {
  const { values } = parse(argv, {});
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const rows = instance.cas.map((ca) => {
      const cert = parseCertificate(ca.certDer);
      return {
        ca: ca.id,
        role: ca.role,
        keyId: holdsKey(ca) ? keyIdOf(ca) : null,
        algorithm: algorithmName(createPublicKey({ key: cert.spkiDer, format: 'der', type: 'spki' })),
        where: whereOf(ca),
        state: ca.keyState,
        since: (ca.keyStateAt ?? ca.createdAt).toISOString(),
        created: ca.createdAt.toISOString(),
        notAfter: ca.notAfter.toISOString(),
      };
    });
    const o = out(values);
    o.result(rows);
    for (const r of rows) o.say(`${r.ca.padEnd(16)} ${r.role.padEnd(8)} ${r.state.padEnd(13)} since ${r.since.slice(0, 19)}Z  ${r.algorithm.padEnd(11)} ${r.where}  (certificate until ${r.notAfter.slice(0, 10)})`);
    return 0;
  } finally {
    await instance.close();
  }
}

/** The keystore holding the key of `ca`, once the operator's secret for it is checked (passphrase or token PIN). */
async function custodyOf(instance: Instance, ca: Instance['cas'][number], values: Parameters<typeof rootPassphraseFor>[0] & { 'passphrase-file'?: string | undefined }, opened: SoftwareKeystore[]): Promise<Keystore> {
  const token = tokenOf(ca);
  // Closed with the instance; a wrong PIN is badPassphrase from the login.
  if (token !== undefined) return instance.tokens.open(token);
  const keystore = keystoreFor(instance, isOfflineCa(ca) ? await rootPassphraseFor(values) : await passphraseFor(values));
  opened.push(keystore);
  await keystore.verifyPassphrase(keyIdOf(ca));
  return keystore;
}

async function transition(to: KeyState, argv: string[]): Promise<number> {
  const { values } = parse(argv, { ca: { type: 'string' }, reason: { type: 'string' }, 'passphrase-file': { type: 'string' }, ...rootPassphraseFlag, ...quorumRequestFlag, 'pkcs11-pin-file': pkcs11Flags['pkcs11-pin-file'], 'pkcs11-root-pin-file': pkcs11Flags['pkcs11-root-pin-file'] });
  const caId = required(values.ca, 'ca');
  const instance = await openInstance(dataDirOf(values.data));
  const opened: SoftwareKeystore[] = [];
  instance.tokens.setPins(tokenPinsOf(values));
  try {
    const ca = instance.cas.find((c) => c.id === caId);
    if (!ca) throw new PkiError('notFound', `no CA "${caId}"`);
    const rootOperation = isOfflineCa(ca) || (to === 'compromised' && ca.role === 'issuing');
    const actor = actorOf();
    // Destroying a key and declaring one compromised need the custodians' quorum when one is configured
    // (docs/ceremonies/quorum.md): checked before any secret is asked for, used once the secrets are verified.
    const quorum = to === 'destroyed' || to === 'compromised' ? await quorumGate(instance, to === 'destroyed' ? 'key.destroy' : 'key.compromise', { ca: caId }, { requestId: values['quorum-request'], actor }) : undefined;
    // Custody: the secret of the keystore that holds the key (checked against it, the key is not opened).
    // A token key's secret is the token's PIN: logging in checks it. A destroyed token key whose objects are
    // still there (a wipe that failed) is wiped again, so its token is opened then too.
    let keystore: Keystore | undefined;
    if (holdsKey(ca) && (ca.keyState !== 'destroyed' || tokenOf(ca) !== undefined)) keystore = await custodyOf(instance, ca, values, opened);
    if (rootOperation && !isOfflineCa(ca)) {
      const root = instance.cas.find((c) => c.id === ca.parentId);
      if (!root || !holdsKey(root)) throw new PkiError('forbidden', `CA "${caId}" has no root held by this instance to revoke it`);
      await custodyOf(instance, root, values, opened);
    }
    await quorum?.use();
    let revoked: string | undefined;
    if (to === 'compromised' && ca.role === 'issuing' && ca.parentId) {
      // The root revokes the issuing CA's certificate (`crl publish --root` puts it on the root's CRL) before
      // the key is marked: a run that stops between the two is run again (an existing revocation is kept).
      assertTransition(caId, ca.keyState, to);
      revoked = parseCertificate(ca.certDer).serialHex;
      const ra = new RevocationAuthority({ certificates: instance.store.certificates, audit: instance.audit, clock: instance.clock });
      await ra.revoke({ serialHex: revoked, issuerId: ca.parentId, reason: 'cACompromise', by: actor, via: 'cli' }).catch((err: unknown) => {
        if (!isPkiError(err, 'alreadyRevoked')) throw err;
      });
    }
    const r = await transitionKey({ cas: instance.store.cas, audit: instance.audit, clock: instance.clock, keyStates: instance.authority.keyStates }, caId, to, {
      actor,
      ...(values.reason ? { reason: values.reason } : {}),
      ...(keystore ? { keystore } : {}),
    });
    const o = out(values);
    o.result({ ca: caId, from: r.from, to: r.to, at: r.at.toISOString(), ...(revoked ? { revokedCertificate: revoked } : {}) });
    o.say(`key of CA "${caId}": ${r.from} -> ${r.to}`);
    if (revoked) o.say(`certificate ${revoked} of CA "${caId}" revoked by "${ca.parentId}" (cACompromise): publish the root's CRL with \`trellis crl publish --root\`, and make a replacement with \`trellis ceremony issuing\``);
    if (to === 'destroyed') o.say(`the key is wiped from its keystore; the CA's certificate and CRLs stay`);
    return 0;
  } finally {
    for (const k of opened) k.close();
    await instance.close();
  }
}
