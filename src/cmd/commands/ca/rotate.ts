/**
 * `trellis ca rotate --ca ID [--at ISO] [--new-id ID2] [--validity 5y] [--quorum-request R]`:
 * a successor of issuing CA ID (new key, same subject and profile, certified
 * by the same parent, ca/rotation.ts) takes over issuance now or at `--at`.
 * The parent signs, so its secret is needed (the root passphrase or shares);
 * the custodians' quorum approves `ca.rotate` with `{ ca, at }` (`at` as
 * given in ISO 8601 UTC, or "now").
 */
import { parse, parseDurationFlag, required, UsageError } from '../../../cli/args.js';
import { assertRotatable, createSuccessorCa, successorIdOf } from '../../../ca/rotation.js';
import { PkiError } from '../../../errors/pki-error.js';
import type { SoftwareKeystore } from '../../../keys/software-keystore.js';
import { fingerprint } from '../../../pki/certificate.js';
import { holdsKey, isOfflineCa, keystoreFor, openInstance, tokenOf, unlockCa } from '../../instance.js';
import { quorumGate, quorumRequestFlag } from '../../quorum.js';
import { carryOut, readRotations, scheduleRotation } from '../../rotations.js';
import { profileOfCa } from './recertify.js';
import { ceremonyDeps } from '../../init-instance.js';
import { issueOcspResponder } from '../../held-certificates.js';
import { actorOf, dataDirOf, out, passphraseFor, pkcs11Flags, rootPassphraseFlag, rootPassphraseFor, tokenPinsOf } from '../common.js';

const flags = { ca: { type: 'string' }, at: { type: 'string' }, 'new-id': { type: 'string' }, validity: { type: 'string' }, ...rootPassphraseFlag, ...quorumRequestFlag, ...pkcs11Flags } as const;

/** `--at`: an ISO 8601 date-time with a zone, e.g. 2027-01-01T00:00:00Z. */
function atOf(text: string): Date {
  const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) throw new UsageError(`--at: "${text}" is not an ISO 8601 date-time with a zone (e.g. 2027-01-01T00:00:00Z)`);
  return new Date(ms);
}

export async function rotateCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, flags);
  const caId = required(values.ca, 'ca');
  const at = values.at === undefined ? undefined : atOf(values.at);
  const validitySeconds = values.validity ? parseDurationFlag(values.validity, 'validity') : undefined;
  const instance = await openInstance(dataDirOf(values.data));
  const opened: SoftwareKeystore[] = [];
  try {
    const old = instance.cas.find((c) => c.id === caId);
    if (!old) throw new PkiError('notFound', `no CA "${caId}"`);
    assertRotatable(old);
    if (!holdsKey(old) || isOfflineCa(old)) throw new PkiError('forbidden', `CA "${caId}" is not an online issuing CA held by this instance`);
    const parent = instance.cas.find((c) => c.id === old.parentId);
    if (!parent || !holdsKey(parent)) throw new PkiError('forbidden', `the parent "${old.parentId}" of CA "${caId}" is not held by this instance: it cannot certify a successor here`);
    const now = instance.clock.now();
    if (at && at.getTime() < now.getTime()) throw new PkiError('malformed', `--at ${values.at} is in the past`);
    const scheduled = readRotations(instance.dataDir).find((r) => r.from === caId || r.to === caId);
    if (scheduled) throw new PkiError('conflict', `CA "${caId}" is already part of a scheduled rotation ("${scheduled.from}" to "${scheduled.to}" at ${scheduled.at})`);
    const newId = values['new-id'] ?? successorIdOf(caId, (id) => instance.cas.some((c) => c.id === id));
    const caProfile = await profileOfCa(instance, old, 'issuing-ca');
    const actor = actorOf();
    // The quorum is checked first, then the secrets (the online one for the new key, the parent's to sign), then the
    // request is used and keys are made.
    const quorum = await quorumGate(instance, 'ca.rotate', { ca: caId, at: at ? at.toISOString() : 'now' }, { requestId: values['quorum-request'], actor });
    instance.tokens.setPins(tokenPinsOf(values));
    const online = keystoreFor(instance, await passphraseFor(values));
    opened.push(online);
    const keys = { online, ...(isOfflineCa(parent) && !tokenOf(parent) ? { offline: keystoreFor(instance, await rootPassphraseFor(values)) } : {}) };
    if (keys.offline) opened.push(keys.offline);
    const signer = await unlockCa(instance, keys, parent.id);
    // The successor's key goes where the old one is: its PKCS#11 token, or the online keystore.
    const token = tokenOf(old);
    // A software key: the old CA's key opens first, which checks the online passphrase and makes the new key share
    // its keystore salt, so a running `serve` (which no longer holds the passphrase) opens it with its cached master key.
    if (!token) await unlockCa(instance, { online }, caId);
    const keystore = token ? await instance.tokens.open(token) : online;
    await quorum.use();
    const created = await createSuccessorCa({ ...ceremonyDeps(instance, keystore, actor), ...(token ? { token } : {}) }, signer, old, { id: newId, profile: caProfile, validitySeconds });
    await instance.reloadCas();
    const o = out(values);
    if (at && at.getTime() > instance.clock.now().getTime()) {
      scheduleRotation(instance, { from: caId, to: newId, at: at.toISOString() });
      await instance.audit.record('ca.rotation.scheduled', actor, { from: caId, to: newId, at: at.toISOString() });
      o.result({ from: caId, to: newId, at: at.toISOString(), state: created.keyState, sha256: fingerprint(created.certDer) });
      o.say(`issuing CA "${newId}" created (${created.keyState}); it takes over from "${caId}" at ${at.toISOString()}\n  SHA-256 ${fingerprint(created.certDer)}\n  a running \`trellis serve\` holds it within a second and carries out the takeover at that time`);
      return 0;
    }
    const { configChanged } = await carryOut(instance, caId, newId, actor);
    await issueOcspResponder(instance, online, await unlockCa(instance, keys, newId), actor);
    o.result({ from: caId, to: newId, at: instance.clock.now().toISOString(), state: 'active', config: configChanged, sha256: fingerprint(created.certDer) });
    o.say(`issuing CA "${newId}" took over from "${caId}" (now deactivated: it still signs CRLs and OCSP responses)${configChanged.length ? `\n  trellis.json: ${configChanged.join(', ')} now "${newId}"` : ''}\n  SHA-256 ${fingerprint(created.certDer)}\n  a running \`trellis serve\` issues from "${newId}" within a second`);
    return 0;
  } finally {
    for (const k of opened) k.close();
    await instance.close();
  }
}
