/**
 * Lints over a TBSCertList about to be signed (RFC 5280 §5), as Boulder lints
 * its CRLs: structure checks over the DER just written, not a re-parse into
 * objects. The revoked entries are walked once, in place, without allocating
 * per entry: a million-entry CRL costs a few tens of milliseconds.
 *
 *   TBSCertList ::= SEQUENCE { version Version OPTIONAL, signature AlgorithmIdentifier, issuer Name,
 *     thisUpdate Time, nextUpdate Time OPTIONAL,
 *     revokedCertificates SEQUENCE OF SEQUENCE { userCertificate CertificateSerialNumber,
 *       revocationDate Time, crlEntryExtensions Extensions OPTIONAL } OPTIONAL,
 *     crlExtensions [0] EXPLICIT Extensions OPTIONAL }
 */
import { children, oid, readBoolean, readOid, readOne, readTime, readUnsigned, Tag, value, whole, type Tlv } from '../pki/der.js';
import { OID } from '../pki/oids.js';
import type { LintFinding } from './types.js';

/** What the CRL must say, from the CA and the scope it is made for (not from the encoder's input alone). */
export interface CrlExpectations {
  /** The CA's subject Name DER: the CRL's issuer, byte for byte (§5.1.2.3). */
  issuerDer: Buffer;
  /** The CA's signature AlgorithmIdentifier DER (§5.1.2.2). */
  signatureAlgorithm: Buffer;
  /** The CA's key identifier: the AKI keyIdentifier (§5.2.1). */
  keyIdentifier: Buffer;
  crlNumber: bigint;
  /** Delta CRLs: the number of their base (deltaCRLIndicator, §5.2.4). Absent for a complete CRL. */
  baseCrlNumber?: bigint;
  /**
   * The issuingDistributionPoint the scope needs (§5.2.5): null for none (a
   * complete CRL of the whole CA, or its delta); otherwise its fullName URL
   * (null: no distribution point name) and onlyContainsCACerts.
   */
  idp: { url: string | null; onlyCaCerts: boolean } | null;
  /** freshestCRL URL a complete CRL must name (§5.2.6), or null for none. Unchecked when undefined. */
  freshestUrl?: string | null;
  /** Longest nextUpdate - thisUpdate allowed. */
  maxValiditySeconds: number;
  /** When given: thisUpdate is not in the future and nextUpdate is (a CRL is never born stale). */
  now?: Date;
}

const id = {
  version: 'e_crl_version_not_v2',
  signature: 'e_crl_signature_algorithm_mismatch',
  issuer: 'e_crl_issuer_name_mismatch',
  validity: 'e_crl_validity_invalid',
  number: 'e_crl_number_invalid',
  aki: 'e_crl_authority_key_identifier_invalid',
  idp: 'e_crl_issuing_distribution_point_invalid',
  delta: 'e_crl_delta_indicator_invalid',
  extension: 'e_crl_extension_invalid',
  entry: 'e_crl_entry_invalid',
  duplicate: 'e_crl_serial_duplicate',
} as const;

const sources: Record<string, string> = {
  [id.version]: 'RFC 5280 §5.1.2.1',
  [id.signature]: 'RFC 5280 §5.1.2.2',
  [id.issuer]: 'RFC 5280 §5.1.2.3',
  [id.validity]: 'RFC 5280 §5.1.2.4-5; CA/B BR §4.9.7',
  [id.number]: 'RFC 5280 §5.2.3',
  [id.aki]: 'RFC 5280 §5.2.1',
  [id.idp]: 'RFC 5280 §5.2.5',
  [id.delta]: 'RFC 5280 §5.2.4',
  [id.extension]: 'RFC 5280 §5.2',
  [id.entry]: 'RFC 5280 §5.1.2.6, §5.3',
  [id.duplicate]: 'RFC 5280 §5.1.2.6',
};

/** The rule ids CRL lints report. */
export const crlLintIds: readonly string[] = Object.values(id);

// Entry extensions as encoded OIDs (the walk compares bytes).
const reasonOid = oid(OID.reasonCode);
const invalidityOid = oid(OID.invalidityDate);
const validReasons = new Set([1, 2, 3, 4, 5, 6, 8, 9, 10]);
const removeFromCrl = 8;

/** DER header at `p` within `[p, limit)`: content start and length, or -1 when it does not fit. Writes into `h`. */
const h = { start: 0, len: 0 };
function header(buf: Buffer, p: number, limit: number): boolean {
  if (p + 2 > limit) return false;
  let len = buf[p + 1]!;
  let c = p + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4 || c + n > limit) return false;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[c++]!;
  }
  if (c + len > limit) return false;
  h.start = c;
  h.len = len;
  return true;
}

const digits = (buf: Buffer, s: number, n: number): boolean => {
  for (let i = s; i < s + n; i++) if (buf[i]! < 0x30 || buf[i]! > 0x39) return false;
  return true;
};

/**
 * A Time at `p` as RFC 5280 §5.1.2.4/§4.1.2.5 wants it: UTCTime YYMMDDHHMMSSZ
 * through 2049, GeneralizedTime YYYYMMDDHHMMSSZ from 2050. Returns the end
 * offset, or -1. `generalized`: always GeneralizedTime (invalidityDate, §5.3.2).
 */
function timeEnd(buf: Buffer, p: number, limit: number, generalized = false): number {
  const tag = buf[p];
  if (!header(buf, p, limit)) return -1;
  const { start, len } = h;
  if (tag === Tag.UTCTime && !generalized) {
    if (len !== 13 || buf[start + 12] !== 0x5a || !digits(buf, start, 12)) return -1;
  } else if (tag === Tag.GeneralizedTime) {
    if (len !== 15 || buf[start + 14] !== 0x5a || !digits(buf, start, 14)) return -1;
    const year = (buf[start]! - 0x30) * 1000 + (buf[start + 1]! - 0x30) * 100 + (buf[start + 2]! - 0x30) * 10 + (buf[start + 3]! - 0x30);
    if (!generalized && year < 2050) return -1;
  } else return -1;
  return start + len;
}

/** Compares two INTEGER contents (positive, minimal) as numbers. A JS loop: Buffer#compare on ranges costs more than it saves here. */
function compareSerials(buf: Buffer, a: number, aLen: number, b: number, bLen: number): number {
  if (aLen !== bLen) return aLen - bLen;
  for (let i = 0; i < aLen; i++) {
    const d = buf[a + i]! - buf[b + i]!;
    if (d) return d;
  }
  return 0;
}

/** True when `buf` holds `what` at `at`. */
function holds(buf: Buffer, at: number, what: Buffer): boolean {
  for (let i = 0; i < what.length; i++) if (buf[at + i] !== what[i]) return false;
  return true;
}

/** Walks revokedCertificates once: the first problem found per rule. */
function walkEntries(buf: Buffer, start: number, end: number, delta: boolean): { entry: string | null; duplicate: string | null; count: number } {
  let entry: string | null = null;
  let prevStart = -1;
  let prevLen = 0;
  let ordered = true;
  let duplicate: string | null = null;
  let count = 0;
  const bad = (at: number, why: string) => {
    entry ??= `entry ${count} (offset ${at}): ${why}`;
  };
  let p = start;
  while (p < end) {
    const at = p;
    count++;
    if (buf[p] !== Tag.SEQUENCE || !header(buf, p, end)) {
      bad(at, 'not a DER SEQUENCE');
      break;
    }
    const entryEnd = h.start + h.len;
    let q = h.start;
    // userCertificate: a positive INTEGER of at most 20 octets, minimally encoded (§4.1.2.2).
    if (buf[q] !== Tag.INTEGER || !header(buf, q, entryEnd) || h.len === 0) {
      bad(at, 'serial is not an INTEGER');
      p = entryEnd;
      continue;
    }
    const sStart = h.start;
    const sLen = h.len;
    q = sStart + sLen;
    if (sLen > 20) bad(at, `serial of ${sLen} octets (at most 20)`);
    else if (buf[sStart]! & 0x80) bad(at, 'negative serial');
    else if (sLen > 1 && buf[sStart] === 0 && buf[sStart + 1]! < 0x80) bad(at, 'serial not minimally encoded');
    else if (sLen === 1 && buf[sStart] === 0) bad(at, 'serial zero');
    // Duplicates: ordered lists (what the store gives) are checked pairwise; otherwise a Set after the walk.
    if (prevStart >= 0 && ordered) {
      const c = compareSerials(buf, prevStart, prevLen, sStart, sLen);
      if (c === 0) duplicate ??= `serial ${buf.toString('hex', sStart, sStart + sLen)} appears twice`;
      else if (c > 0) ordered = false;
    }
    prevStart = sStart;
    prevLen = sLen;
    // revocationDate
    const dEnd = timeEnd(buf, q, entryEnd);
    if (dEnd < 0) {
      bad(at, 'revocationDate is not a DER Time of the right type');
      p = entryEnd;
      continue;
    }
    q = dEnd;
    if (q < entryEnd) {
      // crlEntryExtensions: reasonCode (§5.3.1) and invalidityDate (§5.3.2) only, each once, non-critical.
      if (buf[q] !== Tag.SEQUENCE || !header(buf, q, entryEnd) || h.start + h.len !== entryEnd || h.len === 0) {
        bad(at, 'malformed crlEntryExtensions');
        p = entryEnd;
        continue;
      }
      let e = h.start;
      let seen = 0;
      while (e < entryEnd) {
        if (buf[e] !== Tag.SEQUENCE || !header(buf, e, entryEnd)) {
          bad(at, 'malformed entry extension');
          break;
        }
        const extEnd = h.start + h.len;
        let f = h.start;
        if (f + reasonOid.length > extEnd) {
          bad(at, 'malformed entry extension');
          break;
        }
        const isReason = holds(buf, f, reasonOid);
        const isInvalidity = !isReason && holds(buf, f, invalidityOid);
        if (!isReason && !isInvalidity) {
          bad(at, 'entry extension other than reasonCode and invalidityDate');
          break;
        }
        const bit = isReason ? 1 : 2;
        if (seen & bit) bad(at, `${isReason ? 'reasonCode' : 'invalidityDate'} twice`);
        seen |= bit;
        f += reasonOid.length;
        if (buf[f] === Tag.BOOLEAN) {
          bad(at, 'critical flag on an entry extension');
          break;
        }
        if (buf[f] !== Tag.OCTET_STRING || !header(buf, f, extEnd) || h.start + h.len !== extEnd) {
          bad(at, 'malformed extnValue');
          break;
        }
        const v = h.start;
        if (isReason) {
          // CRLReason ::= ENUMERATED; unspecified (0) is left out (§5.3.1), 7 is unused, removeFromCRL only in deltas.
          const code = buf[v + 2]!;
          if (buf[v] !== Tag.ENUMERATED || buf[v + 1] !== 1 || v + 3 !== extEnd) bad(at, 'reasonCode is not a one-octet ENUMERATED');
          else if (!validReasons.has(code)) bad(at, `reasonCode ${code} ${code === 0 ? '(unspecified) must be left out' : 'is not a CRLReason'}`);
          else if (code === removeFromCrl && !delta) bad(at, 'removeFromCRL in a complete CRL');
        } else if (timeEnd(buf, v, extEnd, true) !== extEnd) bad(at, 'invalidityDate is not a GeneralizedTime');
        e = extEnd;
      }
    }
    p = entryEnd;
  }
  if (!ordered && duplicate === null) {
    // Unordered (a delta: revocations, then lifted holds): one pass with a Set.
    const seen = new Set<string>();
    for (let r = start; r < end; ) {
      if (!header(buf, r, end)) break;
      const next = h.start + h.len;
      if (buf[h.start] === Tag.INTEGER && header(buf, h.start, next)) {
        const key = buf.toString('latin1', h.start, h.start + h.len);
        if (seen.has(key)) {
          duplicate = `serial ${buf.toString('hex', h.start, h.start + h.len)} appears twice`;
          break;
        }
        seen.add(key);
      }
      r = next;
    }
  }
  return { entry, duplicate, count };
}

interface Ext {
  critical: boolean;
  value: Buffer;
}

function readExtensions(t: Tlv, add: (oid: string, e: Ext) => void): void {
  const [list, extra] = children(t);
  if (!list || extra) throw new RangeError('crlExtensions: [0] must hold one SEQUENCE');
  for (const e of children(list)) {
    const parts = children(e);
    const critical = parts.length === 3 ? readBoolean(parts[1]!) : false;
    const v = parts[parts.length - 1]!;
    if (v.tag !== Tag.OCTET_STRING) throw new RangeError('extnValue is not an OCTET STRING');
    add(readOid(parts[0]!), { critical, value: value(v) });
  }
}

/** INTEGER of at most 20 octets (§5.2.3) as a bigint, or a reason it is not one. */
function crlNumberOf(der: Buffer): bigint | string {
  const t = readOne(der, Tag.INTEGER);
  if (value(t).length > 20) return `${value(t).length} octets (at most 20)`;
  const magnitude = readUnsigned(t);
  return BigInt(`0x${magnitude.toString('hex') || '0'}`);
}

// IssuingDistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL,
//   onlyContainsUserCerts [1] BOOLEAN DEFAULT FALSE, onlyContainsCACerts [2] BOOLEAN DEFAULT FALSE,
//   onlySomeReasons [3] ReasonFlags OPTIONAL, indirectCRL [4] BOOLEAN DEFAULT FALSE,
//   onlyContainsAttributeCerts [5] BOOLEAN DEFAULT FALSE }
function idpProblem(ext: Ext, want: { url: string | null; onlyCaCerts: boolean }): string | null {
  if (!ext.critical) return 'issuingDistributionPoint MUST be critical';
  const fields = children(readOne(ext.value, Tag.SEQUENCE));
  if (fields.length === 0) return 'empty issuingDistributionPoint';
  let url: string | null = null;
  let onlyCa = false;
  for (const f of fields) {
    if (f.tag === 0xa0) {
      // DistributionPointName ::= CHOICE { fullName [0] GeneralNames, … }: exactly one URI.
      const [full, more] = children(f);
      if (!full || more || full.tag !== 0xa0) return 'distributionPoint is not a fullName';
      const names = children(full);
      if (names.length !== 1 || names[0]!.tag !== 0x86) return 'fullName is not exactly one URI';
      url = value(names[0]!).toString('latin1');
    } else if (f.tag === 0x82) {
      if (f.end - f.start !== 1 || f.buf[f.start] !== 0xff) return 'onlyContainsCACerts is not DER TRUE';
      onlyCa = true;
    } else return `unexpected issuingDistributionPoint field [${f.tag & 0x1f}]`;
  }
  if (url !== want.url) return want.url ? `distribution point ${url ?? 'absent'}, expected ${want.url}` : `distribution point ${url} where none belongs`;
  if (onlyCa !== want.onlyCaCerts) return want.onlyCaCerts ? 'onlyContainsCACerts missing' : 'onlyContainsCACerts where the scope has every certificate';
  return null;
}

// FreshestCRL ::= CRLDistributionPoints: one point, one URI (what Trellis writes).
function freshestUrlOf(der: Buffer): string | null {
  const points = children(readOne(der, Tag.SEQUENCE));
  const dpn = points.length === 1 ? children(points[0]!).find((t) => t.tag === 0xa0) : undefined;
  const full = dpn && children(dpn)[0];
  const names = full && full.tag === 0xa0 ? children(full) : [];
  return names.length === 1 && names[0]!.tag === 0x86 ? value(names[0]!).toString('latin1') : null;
}

/**
 * Lints the exact TBSCertList DER that is about to be signed. Returns every
 * finding (all are errors: e_*); none means it may be signed.
 */
export function lintCrl(tbsDer: Buffer, x: CrlExpectations): LintFinding[] {
  const findings: LintFinding[] = [];
  const fail = (rule: string, detail: string) => {
    if (!findings.some((f) => f.id === rule)) findings.push({ id: rule, source: sources[rule]!, detail });
  };
  let fields: Tlv[];
  try {
    fields = children(readOne(tbsDer, Tag.SEQUENCE));
  } catch (err) {
    return [{ id: id.entry, source: sources[id.entry]!, detail: `TBSCertList is not DER: ${(err as Error).message}` }];
  }
  let i = 0;
  // §5.1.2.1: version v2 (INTEGER 1), required because the CRL has extensions.
  if (fields[i]?.tag === Tag.INTEGER) {
    if (!value(fields[i]!).equals(Buffer.from([1]))) fail(id.version, `version INTEGER ${value(fields[i]!).toString('hex')}, expected 1 (v2)`);
    i++;
  } else fail(id.version, 'no version: a CRL with extensions MUST be v2');
  const alg = fields[i++];
  if (!alg || !whole(alg).equals(x.signatureAlgorithm)) fail(id.signature, "TBS signature algorithm differs from the CA's");
  const issuer = fields[i++];
  if (!issuer || !whole(issuer).equals(x.issuerDer)) fail(id.issuer, "issuer differs from the CA's subject");

  // §5.1.2.4-5: thisUpdate, and nextUpdate (conforming CAs MUST include it), encoded per the 2050 rule.
  const thisT = fields[i++];
  const nextT = fields[i]?.tag === Tag.UTCTime || fields[i]?.tag === Tag.GeneralizedTime ? fields[i++] : undefined;
  if (!thisT || timeEnd(tbsDer, thisT.headerStart, thisT.end) !== thisT.end) fail(id.validity, 'thisUpdate is not a DER Time of the right type');
  else if (!nextT) fail(id.validity, 'no nextUpdate');
  else if (timeEnd(tbsDer, nextT.headerStart, nextT.end) !== nextT.end) fail(id.validity, 'nextUpdate is not a DER Time of the right type');
  else {
    const thisUpdate = readTime(thisT);
    const nextUpdate = readTime(nextT);
    const seconds = (nextUpdate.getTime() - thisUpdate.getTime()) / 1000;
    if (seconds <= 0) fail(id.validity, `nextUpdate ${nextUpdate.toISOString()} is not after thisUpdate ${thisUpdate.toISOString()}`);
    else if (seconds > x.maxValiditySeconds) fail(id.validity, `validity of ${seconds} s exceeds ${x.maxValiditySeconds} s`);
    else if (x.now && thisUpdate.getTime() > x.now.getTime() + 60_000) fail(id.validity, `thisUpdate ${thisUpdate.toISOString()} is in the future`);
    else if (x.now && nextUpdate.getTime() <= x.now.getTime()) fail(id.validity, `nextUpdate ${nextUpdate.toISOString()} has passed`);
  }

  const delta = x.baseCrlNumber !== undefined;
  if (fields[i]?.tag === Tag.SEQUENCE) {
    const list = fields[i++]!;
    // §5.1.2.6: absent, not empty, when nothing is revoked.
    if (list.end === list.start) fail(id.entry, 'revokedCertificates present but empty');
    try {
      const walked = walkEntries(tbsDer, list.start, list.end, delta);
      if (walked.entry) fail(id.entry, walked.entry);
      if (walked.duplicate) fail(id.duplicate, walked.duplicate);
    } catch (err) {
      fail(id.entry, `revokedCertificates cannot be walked: ${(err as Error).message}`);
    }
  }

  const exts = new Map<string, Ext>();
  const extsT = fields[i]?.tag === 0xa0 ? fields[i++] : undefined;
  if (fields[i]) fail(id.extension, `unexpected TBSCertList field 0x${fields[i]!.tag.toString(16)}`);
  try {
    if (extsT) {
      readExtensions(extsT, (o, e) => {
        if (exts.has(o)) fail(id.extension, `extension ${o} appears twice`);
        exts.set(o, e);
      });
    }
  } catch (err) {
    fail(id.extension, `malformed crlExtensions: ${(err as Error).message}`);
    return findings;
  }
  const known = new Set<string>([OID.authorityKeyIdentifier, OID.cRLNumber, OID.deltaCRLIndicator, OID.issuingDistributionPoint, OID.freshestCRL]);
  for (const o of exts.keys()) if (!known.has(o)) fail(id.extension, `unexpected extension ${o}`);
  const check = (rule: string, what: () => string | null) => {
    try {
      const d = what();
      if (d) fail(rule, d);
    } catch (err) {
      fail(rule, `undecodable: ${(err as Error).message}`);
    }
  };

  // §5.2.1: AKI MUST be present (keyIdentifier method), non-critical, naming the CA's key.
  check(id.aki, () => {
    const aki = exts.get(OID.authorityKeyIdentifier);
    if (!aki) return 'no authorityKeyIdentifier';
    if (aki.critical) return 'authorityKeyIdentifier MUST be non-critical';
    const keyId = children(readOne(aki.value, Tag.SEQUENCE)).find((t) => t.tag === 0x80);
    if (!keyId) return 'authorityKeyIdentifier without keyIdentifier';
    return value(keyId).equals(x.keyIdentifier) ? null : "keyIdentifier differs from the CA's key";
  });
  // §5.2.3: cRLNumber MUST be present, non-critical, at most 20 octets; it is the number drawn for this CRL.
  check(id.number, () => {
    const n = exts.get(OID.cRLNumber);
    if (!n) return 'no cRLNumber';
    if (n.critical) return 'cRLNumber MUST be non-critical';
    const v = crlNumberOf(n.value);
    if (typeof v === 'string') return `cRLNumber of ${v}`;
    return v === x.crlNumber ? null : `cRLNumber ${v}, expected ${x.crlNumber}`;
  });
  // §5.2.4: a delta carries a critical deltaCRLIndicator naming a lower, complete CRL; a complete CRL none.
  check(id.delta, () => {
    const d = exts.get(OID.deltaCRLIndicator);
    if (!delta) return d ? 'deltaCRLIndicator in a complete CRL' : null;
    if (!d) return 'delta CRL without deltaCRLIndicator';
    if (!d.critical) return 'deltaCRLIndicator MUST be critical';
    const base = crlNumberOf(d.value);
    if (typeof base === 'string') return `BaseCRLNumber of ${base}`;
    if (base !== x.baseCrlNumber) return `BaseCRLNumber ${base}, expected ${x.baseCrlNumber}`;
    return base < x.crlNumber ? null : `BaseCRLNumber ${base} is not below the CRL number ${x.crlNumber}`;
  });
  // §5.2.5: the IDP the scope needs, critical; none where the CRL covers the whole CA.
  check(id.idp, () => {
    const idp = exts.get(OID.issuingDistributionPoint);
    if (!x.idp) return idp ? 'issuingDistributionPoint where the scope covers every certificate of the CA' : null;
    if (!idp) return 'no issuingDistributionPoint for a partitioned scope';
    return idpProblem(idp, x.idp);
  });
  // §5.2.6: freshestCRL non-critical, never in a delta CRL.
  check(id.extension, () => {
    const f = exts.get(OID.freshestCRL);
    if (f && delta) return 'freshestCRL in a delta CRL';
    if (f?.critical) return 'freshestCRL MUST be non-critical';
    if (x.freshestUrl === undefined) return null;
    const url = f ? freshestUrlOf(f.value) : null;
    return url === x.freshestUrl ? null : `freshestCRL ${url ?? 'absent'}, expected ${x.freshestUrl ?? 'none'}`;
  });
  return findings;
}
