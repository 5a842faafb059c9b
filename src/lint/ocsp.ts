/**
 * Lints over an OCSP ResponseData about to be signed (RFC 6960 §4.2.1, the
 * RFC 5019 profile), as Boulder lints its OCSP responses: the status said
 * for each certificate is the one its record gives, the dates hold now, the
 * CertID names this CA, the responder is identified. A walk over a few
 * hundred octets: microseconds, on a path whose answers are cached anyway.
 *
 *   ResponseData ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, responderID ResponderID,
 *     producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT Extensions OPTIONAL }
 *   ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }
 *   SingleResponse ::= SEQUENCE { certID CertID, certStatus CertStatus, thisUpdate GeneralizedTime,
 *     nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, singleExtensions [1] EXPLICIT Extensions OPTIONAL }
 *   CertID ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING, issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }
 *   CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL }
 *   RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
 */
import { children, readOid, readOne, readTime, readUnsigned, Tag, value, type Tlv } from '../pki/der.js';
import type { LintFinding } from './types.js';

/** What the store says about a certificate (the fields of its record OCSP answers from). */
export interface OcspRecord {
  status: 'pending' | 'valid' | 'revoked' | 'failed';
  revokedAt: Date | null;
  revocationReason: number | null;
}

/** What the response must say, from the CA, the responder certificate and the store. */
export interface OcspExpectations {
  now: Date;
  /** SHA-1 of the responder certificate's subjectPublicKey: the ResponderID byKey (§4.2.1). */
  responderKeyHash: Buffer;
  /** The CA's issuerNameHash and issuerKeyHash for each CertID hash algorithm it answers for, by algorithm OID. */
  issuerHashes: Readonly<Record<string, { issuerNameHash: Buffer; issuerKeyHash: Buffer }>>;
  /** One per SingleResponse, in order: the serial looked up and its record (null: the store has none). */
  singles: readonly { serialHex: string; record: OcspRecord | null }[];
  /** Longest nextUpdate - thisUpdate allowed. */
  maxValiditySeconds: number;
}

const id = {
  structure: 'e_ocsp_response_invalid',
  responder: 'e_ocsp_responder_id_invalid',
  producedAt: 'e_ocsp_produced_at_invalid',
  certId: 'e_ocsp_cert_id_invalid',
  status: 'e_ocsp_status_mismatch',
  validity: 'e_ocsp_validity_invalid',
} as const;

const sources: Record<string, string> = {
  [id.structure]: 'RFC 6960 §4.2.1',
  [id.responder]: 'RFC 6960 §4.2.1; RFC 5019 §2.2.3',
  [id.producedAt]: 'RFC 6960 §4.2.1',
  [id.certId]: 'RFC 6960 §4.1.1, §4.2.1',
  [id.status]: 'RFC 6960 §2.2',
  [id.validity]: 'RFC 6960 §4.2.2.1; RFC 5019 §2.2.4',
};

/** The rule ids OCSP lints report. */
export const ocspLintIds: readonly string[] = Object.values(id);

/** Responses are signed as of now; a clock step between building and linting is allowed this much. */
const skewMs = 60_000;

const generalized = (t: Tlv | undefined, what: string): Date => {
  if (!t || t.tag !== Tag.GeneralizedTime) throw new RangeError(`${what} is not a GeneralizedTime`);
  return readTime(t);
};
const second = (d: Date) => Math.floor(d.getTime() / 1000);

/** The status the record calls for (RFC 6960 §2.2: never issued, or not yet, is unknown). */
function expectedStatus(r: OcspRecord | null): 'good' | 'revoked' | 'unknown' {
  if (!r) return 'unknown';
  return r.status === 'valid' ? 'good' : r.status === 'revoked' ? 'revoked' : 'unknown';
}

/**
 * Lints the exact ResponseData DER about to be signed. Returns every finding
 * (all are errors: e_*); none means it may be signed.
 */
export function lintOcspResponseData(tbsDer: Buffer, x: OcspExpectations): LintFinding[] {
  const findings: LintFinding[] = [];
  const fail = (rule: string, detail: string) => {
    if (!findings.some((f) => f.id === rule)) findings.push({ id: rule, source: sources[rule]!, detail });
  };
  const check = (rule: string, what: () => string | null) => {
    try {
      const d = what();
      if (d) fail(rule, d);
    } catch (err) {
      fail(rule, `undecodable: ${(err as Error).message}`);
    }
  };
  let fields: Tlv[];
  try {
    fields = children(readOne(tbsDer, Tag.SEQUENCE));
  } catch (err) {
    return [{ id: id.structure, source: sources[id.structure]!, detail: `ResponseData is not DER: ${(err as Error).message}` }];
  }
  let i = 0;
  // version v1 is the DEFAULT, so DER leaves it out (X.690 §11.5).
  if (fields[i]?.tag === 0xa0) {
    fail(id.structure, 'version written out (v1 is the DEFAULT)');
    i++;
  }
  const responderT = fields[i++];
  check(id.responder, () => {
    if (!responderT || (responderT.tag !== 0xa1 && responderT.tag !== 0xa2)) return 'no ResponderID';
    if (responderT.tag === 0xa1) return 'ResponderID byName; Trellis names its responder byKey';
    const [hash, extra] = children(responderT);
    if (!hash || extra || hash.tag !== Tag.OCTET_STRING) return 'byKey is not one OCTET STRING';
    return value(hash).equals(x.responderKeyHash) ? null : "byKey is not the SHA-1 of the responder certificate's key";
  });
  const producedT = fields[i++];
  check(id.producedAt, () => {
    const producedAt = generalized(producedT, 'producedAt');
    return Math.abs(producedAt.getTime() - x.now.getTime()) <= skewMs ? null : `producedAt ${producedAt.toISOString()} is not now (${x.now.toISOString()})`;
  });
  const responsesT = fields[i++];
  let singles: Tlv[] = [];
  check(id.structure, () => {
    if (!responsesT || responsesT.tag !== Tag.SEQUENCE) return 'no responses';
    singles = children(responsesT);
    if (singles.length !== x.singles.length) return `${singles.length} SingleResponses for ${x.singles.length} certificates`;
    if (fields[i] && fields[i]!.tag !== 0xa1) return `unexpected ResponseData field 0x${fields[i]!.tag.toString(16)}`;
    return fields[i + 1] ? 'fields after responseExtensions' : null;
  });

  singles.forEach((single, n) => {
    const want = x.singles[n];
    if (!want) return;
    const label = `response ${n + 1} (serial ${want.serialHex})`;
    let parts: Tlv[] = [];
    check(id.structure, () => {
      parts = children(single);
      return parts.length >= 3 ? null : `${label}: SingleResponse has ${parts.length} fields`;
    });
    if (parts.length < 3) return;
    const [certIdT, statusT, thisT, ...rest] = parts as [Tlv, Tlv, Tlv, ...Tlv[]];
    check(id.certId, () => {
      const [algT, nameHashT, keyHashT, serialT] = children(certIdT);
      if (!algT || !nameHashT || !keyHashT || !serialT) return `${label}: CertID has missing fields`;
      const hashOid = readOid(children(algT)[0]!);
      const mine = x.issuerHashes[hashOid];
      if (!mine) return `${label}: CertID hash algorithm ${hashOid} is not one this responder answers for`;
      if (!value(nameHashT).equals(mine.issuerNameHash) || !value(keyHashT).equals(mine.issuerKeyHash)) return `${label}: CertID issuer hashes are not this CA's`;
      const serial = readUnsigned(serialT).toString('hex').replace(/^0+(?=.)/, '');
      return serial === want.serialHex.toLowerCase().replace(/^0+(?=.)/, '') ? null : `${label}: CertID names serial ${serial}`;
    });
    check(id.status, () => {
      const expected = expectedStatus(want.record);
      const said = statusT.tag === 0x80 ? 'good' : statusT.tag === 0xa1 ? 'revoked' : statusT.tag === 0x82 ? 'unknown' : null;
      if (said === null) return `${label}: CertStatus tag 0x${statusT.tag.toString(16)}`;
      if ((said === 'good' || said === 'unknown') && statusT.end !== statusT.start) return `${label}: ${said} is not an empty NULL`;
      if (said !== expected) return `${label}: says ${said}, its record says ${expected}${want.record ? ` (status ${want.record.status})` : ' (no record)'}`;
      if (said !== 'revoked') return null;
      const [timeT, reasonT, extra] = children(statusT);
      if (extra) return `${label}: RevokedInfo has extra fields`;
      const revokedAt = generalized(timeT, 'revocationTime');
      if (!want.record!.revokedAt || second(revokedAt) !== second(want.record!.revokedAt)) return `${label}: revocationTime ${revokedAt.toISOString()}, its record says ${want.record!.revokedAt?.toISOString() ?? 'none'}`;
      let reason: number | null = null;
      if (reasonT) {
        const [e, more] = children(reasonT);
        if (reasonT.tag !== 0xa0 || !e || more || e.tag !== Tag.ENUMERATED || e.end - e.start !== 1) return `${label}: revocationReason is not [0] EXPLICIT ENUMERATED`;
        reason = e.buf[e.start]!;
      }
      // unspecified (0) is left out, as RFC 5280 §5.3.1 asks of CRL entries.
      const recorded = want.record!.revocationReason ?? 0;
      if (reason === 0) return `${label}: revocationReason unspecified written out`;
      return (reason ?? 0) === recorded ? null : `${label}: revocationReason ${reason ?? 'absent'}, its record says ${recorded}`;
    });
    check(id.validity, () => {
      const thisUpdate = generalized(thisT, 'thisUpdate');
      const nextT = rest[0]?.tag === 0xa0 ? rest[0] : undefined;
      if (!nextT) return `${label}: no nextUpdate (RFC 5019 §2.2.4: responses are cached until it)`;
      const [nT, extra] = children(nextT);
      if (extra) return `${label}: nextUpdate [0] holds more than one value`;
      const nextUpdate = generalized(nT, 'nextUpdate');
      const now = x.now.getTime();
      if (thisUpdate.getTime() > now + skewMs) return `${label}: thisUpdate ${thisUpdate.toISOString()} is after now ${x.now.toISOString()}`;
      if (nextUpdate.getTime() <= now) return `${label}: nextUpdate ${nextUpdate.toISOString()} is not after now ${x.now.toISOString()}`;
      const seconds = (nextUpdate.getTime() - thisUpdate.getTime()) / 1000;
      return seconds <= x.maxValiditySeconds ? null : `${label}: validity of ${seconds} s exceeds ${x.maxValiditySeconds} s`;
    });
  });
  return findings;
}
