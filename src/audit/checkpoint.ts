/**
 * Signed audit checkpoints (docs/audit.md). A checkpoint is a short text, the
 * body, signed by the audit signing key, whose certificate the root issued.
 * It commits to the chain head after `events` events and carries a 64-bit
 * digest of every event since the previous checkpoint (its window), so a
 * verifier can name the exact event that was later changed, removed,
 * inserted or reordered, even when the hash chain was recomputed after the edit.
 *
 *   trellis-audit-checkpoint v1
 *   events <n>
 *   head <chain hash of event n, 64 hex>
 *   time <ISO 8601 UTC, milliseconds>
 *   base <b> <chain hash of event b, or 64 zeros for b = 0>
 *   digests <n - b>
 *   <16 hex: digest of event b+1>
 *   …
 *   <16 hex: digest of event n>
 *
 * Every line ends with LF. The signature is ECDSA over the body bytes with
 * SHA-256 (P-256 key; SHA-384 for P-384), DER-encoded, which `openssl dgst
 * -sha256 -verify pub.pem -signature sig.der body.txt` checks.
 */
import { hash as oneShotHash, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { PkiError } from '../errors/pki-error.js';
import { parseCertificate, findExtension, type ParsedCertificate } from '../pki/certificate.js';
import { decodeBasicConstraints, decodeKeyUsage } from '../pki/extensions.js';
import { OID } from '../pki/oids.js';
import { pemBlocks, toPem } from '../pki/pem.js';
import { loadSpki } from '../pki/public-key.js';
import { verifySignature } from '../pki/signature.js';
import { genesisHash } from './audit-log.js';
import type { AuditRecord } from './ports.js';

/** First line of every v1 body. */
export const checkpointMagic = 'trellis-audit-checkpoint v1';

/** PEM labels of a checkpoint file: body, signature, then the audit certificate. */
export const checkpointLabels = { body: 'TRELLIS AUDIT CHECKPOINT', signature: 'TRELLIS AUDIT CHECKPOINT SIGNATURE', certificate: 'CERTIFICATE' } as const;

/** A checkpoint body, parsed. */
export interface CheckpointStatement {
  events: number;
  head: string;
  time: Date;
  /** Events covered by the previous checkpoint (its window ends there). */
  base: number;
  baseHash: string;
  /** One 16-hex digest per event base+1..events, in order. */
  digests: string[];
}

/** A checkpoint as it travels: the signed body, the signature and the audit certificate (DER). */
export interface CheckpointFile {
  body: string;
  signature: Buffer;
  certDer: Buffer;
}

const hex64 = /^[0-9a-f]{64}$/;
const hex16 = /^[0-9a-f]{16}$/;
const count = /^(0|[1-9][0-9]{0,14})$/;
// The form Date.prototype.toISOString writes, and nothing else.
const isoTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * The 64-bit digest a checkpoint carries for one event: the first 8 bytes of
 * SHA-256(at | type | actor | data), fields separated by LF, `at` in ISO 8601.
 * The seq and the chain links are left out on purpose, so an event that moved
 * (events removed before it and the rest renumbered) is still recognised.
 */
export function eventDigest(r: Pick<AuditRecord, 'at' | 'type' | 'actor' | 'data'>): string {
  return oneShotHash('sha256', `${r.at.toISOString()}\n${r.type}\n${r.actor}\n${r.data}`, 'hex').slice(0, 16);
}

/** The exact text that gets signed. */
export function formatCheckpoint(s: CheckpointStatement): string {
  if (s.digests.length !== s.events - s.base) throw new PkiError('serverInternal', `checkpoint over events ${s.base + 1}..${s.events} carries ${s.digests.length} digests`);
  const lines = [checkpointMagic, `events ${s.events}`, `head ${s.head}`, `time ${s.time.toISOString()}`, `base ${s.base} ${s.baseHash}`, `digests ${s.digests.length}`, ...s.digests];
  return lines.join('\n') + '\n';
}

/** Parses a body strictly (the format above, nothing more); a deviation is a `malformed` PkiError. */
export function parseCheckpoint(body: string): CheckpointStatement {
  const bad = (why: string) => new PkiError('malformed', `audit checkpoint: ${why}`);
  if (!body.endsWith('\n')) throw bad('the body must end with a line feed');
  const lines = body.slice(0, -1).split('\n');
  if (lines[0] !== checkpointMagic) throw bad(`the first line must be "${checkpointMagic}"`);
  const field = (i: number, name: string): string[] => {
    const parts = (lines[i] ?? '').split(' ');
    if (parts[0] !== name) throw bad(`line ${i + 1} must start with "${name} "`);
    return parts.slice(1);
  };
  const num = (text: string | undefined, what: string): number => {
    if (text === undefined || !count.test(text)) throw bad(`${what} must be a whole number`);
    return Number(text);
  };
  const hash = (text: string | undefined, what: string): string => {
    if (text === undefined || !hex64.test(text)) throw bad(`${what} must be 64 lower-case hex digits`);
    return text;
  };
  const [eventsText, ...e1] = field(1, 'events');
  const [headText, ...e2] = field(2, 'head');
  const [timeText, ...e3] = field(3, 'time');
  const [baseText, baseHashText, ...e4] = field(4, 'base');
  const [digestCount, ...e5] = field(5, 'digests');
  if (e1.length + e2.length + e3.length + e4.length + e5.length) throw bad('a header line has extra fields');
  const events = num(eventsText, 'events');
  const base = num(baseText, 'base');
  if (base > events) throw bad(`base (${base}) is beyond events (${events})`);
  if (timeText === undefined || !isoTime.test(timeText) || Number.isNaN(Date.parse(timeText))) throw bad('time must be an ISO 8601 UTC time with milliseconds');
  const n = num(digestCount, 'digests');
  if (n !== events - base) throw bad(`digests must be ${events - base} (events - base), got ${n}`);
  const digests = lines.slice(6);
  if (digests.length !== n) throw bad(`${n} digest lines announced, ${digests.length} present`);
  digests.forEach((d, i) => {
    if (!hex16.test(d)) throw bad(`digest line ${i + 7} must be 16 lower-case hex digits`);
  });
  const baseHash = hash(baseHashText, 'the base hash');
  if (base === 0 && baseHash !== genesisHash) throw bad('base 0 must carry the genesis hash (64 zeros)');
  return { events, head: hash(headText, 'head'), time: new Date(timeText), base, baseHash, digests };
}

/** A checkpoint file: three PEM blocks (body, signature, audit certificate); see docs/audit.md. */
export function encodeCheckpointFile(f: CheckpointFile): string {
  return toPem(checkpointLabels.body, Buffer.from(f.body, 'utf8')) + toPem(checkpointLabels.signature, f.signature) + toPem(checkpointLabels.certificate, f.certDer);
}

/** Reads a checkpoint file; anything but exactly one block of each label is a `malformed` PkiError. */
export function decodeCheckpointFile(text: string): CheckpointFile {
  const blocks = pemBlocks(text);
  const one = (label: string): Buffer => {
    const found = blocks.filter((b) => b.label === label);
    if (found.length !== 1) throw new PkiError('malformed', `audit checkpoint file: expected one "${label}" PEM block, found ${found.length}`);
    return found[0]!.der;
  };
  return { body: one(checkpointLabels.body).toString('utf8'), signature: one(checkpointLabels.signature), certDer: one(checkpointLabels.certificate) };
}

/** The hash ECDSA signs with for a key (P-256: SHA-256, P-384: SHA-384), as the keystore signs. */
function hashFor(key: KeyObject): string | null {
  if (key.asymmetricKeyType === 'ed25519') return null;
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1') return 'sha384';
  return 'sha256';
}

/** True when `signature` (DER ECDSA-Sig-Value) over `body` verifies with the certificate's key. */
export function checkpointSignatureValid(body: string, signature: Buffer, cert: ParsedCertificate): boolean {
  let key: KeyObject;
  try {
    key = loadSpki(cert.spkiDer).publicKey;
  } catch {
    // An undecodable key verifies nothing; the caller reports the checkpoint as unsigned.
    return false;
  }
  try {
    return nodeVerify(hashFor(key), Buffer.from(body, 'utf8'), { key, dsaEncoding: 'der' }, signature);
  } catch {
    // OpenSSL raises on structurally invalid signatures: that is a failed verification.
    return false;
  }
}

/**
 * Why `certDer` cannot vouch for a checkpoint made at `at`, or null when it
 * can: it must parse, be signed by one of `anchors` (the root certificates
 * the verifier trusts), not be a CA, allow digitalSignature or
 * nonRepudiation, and be valid at `at`.
 */
export function signerCertificateProblem(certDer: Buffer, anchors: readonly ParsedCertificate[], at: Date): { cert: ParsedCertificate | null; problem: string | null } {
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(certDer);
  } catch (err) {
    return { cert: null, problem: `the audit certificate does not parse (${(err as Error).message})` };
  }
  const issuer = anchors.find((a) => a.subjectDer.equals(cert.issuerDer) && signedBy(cert, a));
  if (!issuer) return { cert, problem: `the audit certificate (serial ${cert.serialHex}) is not signed by the root` };
  const bc = findExtension(cert, OID.basicConstraints);
  if (bc && decodeBasicConstraints(bc.valueDer).ca) return { cert, problem: `the audit certificate (serial ${cert.serialHex}) is a CA certificate` };
  const ku = findExtension(cert, OID.keyUsage);
  const usages = ku ? decodeKeyUsage(ku.valueDer) : null;
  if (usages && !usages.has('digitalSignature') && !usages.has('nonRepudiation')) return { cert, problem: `the audit certificate (serial ${cert.serialHex}) does not allow signatures (keyUsage)` };
  if (at < cert.notBefore || at > cert.notAfter) {
    return { cert, problem: `the checkpoint time ${at.toISOString()} is outside the audit certificate's validity (${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()})` };
  }
  return { cert, problem: null };
}

function signedBy(cert: ParsedCertificate, issuer: ParsedCertificate): boolean {
  try {
    return verifySignature(cert.signatureAlgorithm.oid, loadSpki(issuer.spkiDer).publicKey, cert.tbsDer, cert.signature, 'audit certificate');
  } catch {
    // Unsupported algorithm or key: not signed by this issuer as far as we can tell.
    return false;
  }
}
