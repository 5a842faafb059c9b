/**
 * What an OCSP answer said, for `trellis_ocsp_responses_total`: the
 * responseStatus of an error response, else the certStatus of its
 * SingleResponses. Read with a lean walk over the DER headers (no times, no
 * certificates), and remembered by the answer's ETag (a hash of its bytes;
 * the responder's cache hands out a fresh copy of a pre-signed answer on each
 * hit) or else per Buffer, so a pre-signed answer is walked once.
 */
import { isPkiError } from '../errors/pki-error.js';
import { children, readOne, readTlv, Tag, value, type Tlv } from '../pki/der.js';

/** OCSPResponseStatus (RFC 6960 §4.2.1) names other than successful, then the CertStatus choices. */
export const ocspAnswerStatuses = ['good', 'revoked', 'unknown', 'malformedRequest', 'internalError', 'tryLater', 'sigRequired', 'unauthorized', 'unreadable'] as const;
export type OcspAnswerStatus = (typeof ocspAnswerStatuses)[number];

const errorStatuses: Record<number, OcspAnswerStatus> = { 1: 'malformedRequest', 2: 'internalError', 3: 'tryLater', 5: 'sigRequired', 6: 'unauthorized' };

const seen = new WeakMap<Buffer, OcspAnswerStatus>();
/** Statuses by ETag, at most this many (then started afresh): ~100 bytes each. */
const etagsKept = 8192;
const byEtag = new Map<string, OcspAnswerStatus>();

/**
 * The status an OCSPResponse DER carries. With several SingleResponses:
 * revoked if any is revoked, else unknown if any is unknown, else good.
 * `unreadable` for bytes that are not an OCSPResponse (never sent by the responder).
 */
export function ocspAnswerStatusOf(der: Buffer, etag?: string): OcspAnswerStatus {
  if (etag !== undefined) {
    let status = byEtag.get(etag);
    if (status === undefined) {
      status = read(der);
      if (byEtag.size >= etagsKept) byEtag.clear();
      byEtag.set(etag, status);
    }
    return status;
  }
  let status = seen.get(der);
  if (status === undefined) {
    status = read(der);
    seen.set(der, status);
  }
  return status;
}

function read(der: Buffer): OcspAnswerStatus {
  try {
    return readStatus(der);
  } catch (err) {
    // The DER reader refuses bytes that are no DER with a PkiError (malformed): counted, not thrown.
    if (isPkiError(err)) return 'unreadable';
    throw err;
  }
}

function readStatus(der: Buffer): OcspAnswerStatus {
  // OCSPResponse ::= SEQUENCE { responseStatus OCSPResponseStatus, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
  const [statusTlv, bytes] = children(readOne(der, Tag.SEQUENCE));
  if (statusTlv?.tag !== Tag.ENUMERATED || statusTlv.end - statusTlv.start !== 1) return 'unreadable';
  const code = der[statusTlv.start]!;
  if (code !== 0) return errorStatuses[code] ?? 'unreadable';
  if (bytes?.tag !== 0xa0) return 'unreadable';
  // ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }
  const [, response] = children(readTlv(der, bytes.start, bytes.end));
  if (response?.tag !== Tag.OCTET_STRING) return 'unreadable';
  // BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm, signature, certs [0] EXPLICIT OPTIONAL }
  const basic = readOne(value(response), Tag.SEQUENCE);
  const tbs = children(basic)[0];
  if (tbs?.tag !== Tag.SEQUENCE) return 'unreadable';
  // ResponseData ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, responderID CHOICE { [1], [2] }, producedAt GeneralizedTime,
  //   responses SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT OPTIONAL }: the one universal SEQUENCE is `responses`.
  const responses = children(tbs).find((t) => t.tag === Tag.SEQUENCE);
  if (!responses) return 'unreadable';
  const statuses = children(responses).map(certStatusOf);
  if (statuses.length === 0 || statuses.includes('unreadable')) return 'unreadable';
  if (statuses.includes('revoked')) return 'revoked';
  return statuses.includes('unknown') ? 'unknown' : 'good';
}

/** SingleResponse ::= SEQUENCE { certID CertID, certStatus CertStatus, … }; CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT UnknownInfo }. */
function certStatusOf(single: Tlv): OcspAnswerStatus {
  const certStatus = single.tag === Tag.SEQUENCE ? children(single)[1] : undefined;
  switch (certStatus?.tag) {
    case 0x80:
      return 'good';
    case 0xa1:
      return 'revoked';
    case 0x82:
      return 'unknown';
    default:
      return 'unreadable';
  }
}
