/**
 * `trellis audit verify [--checkpoint FILE ...] [--root-cert FILE]`,
 * `trellis audit checkpoint [--out FILE]`, `trellis audit signer create [--rotate] [--ca ROOT] [--quorum-request ID]`.
 * docs/audit.md describes the checkpoints and what verify reports. The root
 * certifies the audit signer: the custodians' quorum approves `root-key.use`
 * with `{ ca: ROOT, purpose: "audit signer" }`.
 */
import fs from 'node:fs';
import { parse, UsageError } from '../../cli/args.js';
import { decodeCheckpointFile, encodeCheckpointFile, parseCheckpoint } from '../../audit/checkpoint.js';
import type { AuditVerifyResult } from '../../audit/verify.js';
import { PkiError } from '../../errors/pki-error.js';
import { readCertificateChain } from '../../pki/certificate.js';
import { toPem } from '../../pki/pem.js';
import { unlockIssuers, isOfflineCa, keystoreFor, openInstance, tokenOf, unlockCa, type Instance } from '../instance.js';
import { auditCheckpointer, auditSignerCertificate, currentAuditSigner, issueAuditSigner, openCheckpointSigner, verifyInstanceAudit } from '../audit-signer.js';
import { quorumRequestFlag, quorumGate } from '../quorum.js';
import { actorOf, dataDirOf, out, passphraseFor, rootPassphraseFlag, rootPassphraseFor } from './common.js';

const signerUsage = 'audit signer create [--rotate] [--ca ROOT] [--quorum-request ID]';
const usage = `usage: trellis audit verify [--checkpoint FILE ...] [--root-cert FILE] | audit checkpoint [--out FILE] | ${signerUsage}`;

function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new PkiError('notFound', `cannot read ${what} ${file}`, { cause: err });
  }
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'verify') return verify(rest);
  if (sub === 'checkpoint') return checkpoint(rest);
  if (sub === 'signer') return signer(rest);
  throw new UsageError(usage);
}

async function withInstance<T>(dataFlag: string | undefined, fn: (instance: Instance) => Promise<T>): Promise<T> {
  const instance = await openInstance(dataDirOf(dataFlag));
  try {
    return await fn(instance);
  } finally {
    await instance.close();
  }
}

/** Checks the chain and every checkpoint; exit 1 with one stderr line per finding, the first event first. */
async function verify(argv: string[]): Promise<number> {
  const { values } = parse(argv, { checkpoint: { type: 'string', multiple: true }, 'root-cert': { type: 'string' } });
  const given = (values.checkpoint ?? []).map((file) => ({ label: file, file: decodeCheckpointFile(readText(file, 'checkpoint file')) }));
  const anchors = values['root-cert'] ? readCertificateChain(readText(values['root-cert'], 'root certificate')).map((c) => c.der) : undefined;
  if (anchors?.length === 0) throw new PkiError('malformed', `${values['root-cert']}: no PEM certificate`);
  const r = await withInstance(values.data, (instance) => verifyInstanceAudit(instance, given, anchors));
  const o = out(values);
  o.result(r);
  if (r.ok) {
    o.say(`audit log intact: ${r.events} events; ${describeCheckpoints(r)}`);
    if (!r.checkpoints.latest) process.stderr.write('warning: no signed checkpoint yet, so removing the newest events would go unnoticed (trellis audit checkpoint, or run trellis serve)\n');
    return 0;
  }
  for (const f of r.findings) {
    process.stderr.write(f.seq !== null ? `audit log broken at event ${f.seq}: ${f.detail} (found by ${f.by})\n` : `audit checkpoint problem: ${f.detail}\n`);
  }
  return 1;
}

function describeCheckpoints(r: AuditVerifyResult): string {
  const c = r.checkpoints;
  const total = c.stored + c.given;
  if (!c.latest) return 'no signed checkpoint';
  return `${total} checkpoint${total === 1 ? '' : 's'} verified and extended (newest: ${c.latest.events} events, signed ${c.latest.time.toISOString()})`;
}

/** Signs a checkpoint at the head of the log (with the online key) and prints or writes it as a file. */
async function checkpoint(argv: string[]): Promise<number> {
  const { values } = parse(argv, { out: { type: 'string' } });
  if (values.out && fs.existsSync(values.out)) throw new PkiError('conflict', `${values.out} exists; checkpoint files are never overwritten`);
  const passphrase = await passphraseFor(values);
  return withInstance(values.data, async (instance) => {
    const keystore = keystoreFor(instance, passphrase);
    let signer;
    try {
      signer = await openCheckpointSigner(instance, keystore);
    } finally {
      keystore.close();
    }
    const cp = await auditCheckpointer(instance, signer).checkpoint();
    if (!cp) throw new PkiError('notFound', 'the audit log is empty: nothing to sign');
    const certDer = await auditSignerCertificate(instance, cp.signerSerialHex);
    if (!certDer) throw new PkiError('notFound', `no audit certificate with serial ${cp.signerSerialHex}`);
    const file = encodeCheckpointFile({ body: cp.body, signature: cp.signature, certDer });
    const s = parseCheckpoint(cp.body);
    const o = out(values);
    if (values.out) fs.writeFileSync(values.out, file, { flag: 'wx' });
    o.result({ id: cp.id, events: s.events, head: s.head, time: s.time, signerSerialHex: cp.signerSerialHex, ...(values.out ? { file: values.out } : { checkpoint: file }) });
    if (values.out) o.say(`checkpoint over ${s.events} events (head ${s.head}) written to ${values.out}`);
    else if (!o.json) process.stdout.write(file);
    return 0;
  });
}

/** `audit signer create [--rotate]`: a new audit key certified by the root (needs both passphrases, and the quorum for the root's use). */
async function signer(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  if (action !== 'create') throw new UsageError(`usage: trellis ${signerUsage}`);
  const { values } = parse(rest, { rotate: { type: 'boolean' }, ca: { type: 'string' }, ...rootPassphraseFlag, ...quorumRequestFlag });
  return withInstance(values.data, async (instance) => {
    const existing = await currentAuditSigner(instance);
    if (existing && existing.notAfter > instance.clock.now() && !values.rotate) {
      throw new PkiError('conflict', `an audit signing certificate exists (serial ${existing.serialHex}, until ${existing.notAfter.toISOString()}); pass --rotate to replace it`);
    }
    const rootId = values.ca ?? 'root';
    const rootCa = instance.cas.find((c) => c.id === rootId && c.role === 'root');
    if (!rootCa) throw new PkiError('notFound', `no root CA "${rootId}"`);
    const actor = actorOf();
    // The quorum is checked before any secret is asked for, and used once the root's key is open.
    const quorum = await quorumGate(instance, 'root-key.use', { ca: rootId, purpose: 'audit signer' }, { requestId: values['quorum-request'], actor });
    const online = keystoreFor(instance, await passphraseFor(values));
    // A root in a token opens with its PIN (unlockCa), not a root passphrase.
    const offline = isOfflineCa(rootCa) && !tokenOf(rootCa) ? keystoreFor(instance, await rootPassphraseFor(values)) : undefined;
    let issued;
    try {
      // Opening the issuing CAs first lets the new key share their scrypt salt, so `serve` opens every online key with one derivation.
      await unlockIssuers(instance, online);
      const root = await unlockCa(instance, { online, ...(offline ? { offline } : {}) }, rootId);
      await quorum.use();
      issued = await issueAuditSigner(instance, online, root, actor);
    } finally {
      online.close();
      offline?.close();
    }
    const o = out(values);
    o.result({ serialHex: issued.serialHex, issuer: issued.issuerId, notBefore: issued.notBefore, notAfter: issued.notAfter, certificate: toPem('CERTIFICATE', issued.certDer) });
    o.say(`audit signing certificate ${issued.serialHex} issued by ${issued.issuerId}, valid until ${issued.notAfter.toISOString()}${existing ? ` (replaces ${existing.serialHex})` : ''}`);
    return 0;
  });
}
