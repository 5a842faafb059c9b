/**
 * OCSPResponse and BasicOCSPResponse (RFC 6960 §4.2.1) read with the DER
 * reader. The one parser of responses: the verifier (src/verify/ocsp.ts)
 * checks signer, signature, CertID and times on what it returns; the
 * responder's pre-signed cache (src/ocsp/response.ts) compares it with the
 * store. This file checks structure only, never a signature.
 */
import { PkiError } from '../errors/pki-error.js';
import { children, expectTag, readBitString, readOid, readOne, readTime, Tag, value, whole, type Tlv } from './der.js';
import { OID } from './oids.js';

/** What one SingleResponse says about a certificate; `reason` is a CRLReason code (RFC 5280 §5.3.1), null when absent. */
export type SingleStatus = { status: 'good' } | { status: 'unknown' } | { status: 'revoked'; revokedAt: Date; reason: number | null };

/** ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }; `keyHash` is the SHA-1 of the responder's subjectPublicKey bits. */
export type ResponderId = { type: 'byName'; nameDer: Buffer } | { type: 'byKey'; keyHash: Buffer };

/**
 * SingleResponse ::= SEQUENCE { certID CertID, certStatus CertStatus, thisUpdate GeneralizedTime,
 *   nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, singleExtensions [1] EXPLICIT Extensions OPTIONAL }
 * singleExtensions are not read.
 */
export interface SingleResponse {
  /** The CertID SEQUENCE, unparsed: the caller decides what it must name. */
  certId: Tlv;
  certIdDer: Buffer;
  status: SingleStatus;
  thisUpdate: Date;
  nextUpdate: Date | null;
}

/**
 * BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm AlgorithmIdentifier,
 *   signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
 * ResponseData ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, responderID ResponderID,
 *   producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT Extensions OPTIONAL }
 * responseExtensions are not read.
 */
export interface BasicOcspResponse {
  /** tbsResponseData exactly as signed. */
  tbsDer: Buffer;
  responderId: ResponderId;
  producedAt: Date;
  responses: SingleResponse[];
  /** The signatureAlgorithm OID. */
  signatureAlgorithm: string;
  /** The signature BIT STRING's bits. */
  signature: Buffer;
  /** The certificates in `certs`, DER, unparsed. */
  certsDer: Buffer[];
}

/** An OCSPResponse: `basic` is present exactly when `responseStatus` is successful (0). */
export interface OcspResponse {
  responseStatus: number;
  basic: BasicOcspResponse | null;
}

const malformed = (what: string): PkiError => new PkiError('malformed', `malformed OCSP response: ${what}`);

/** The one element inside an EXPLICIT tag. */
function explicit(t: Tlv, tag: number, what: string): Tlv {
  const c = children(expectTag(t, tag, what));
  if (c.length !== 1) throw malformed(`${what}: expected one element`);
  return c[0]!;
}

// CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL }
// RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
function readCertStatus(t: Tlv): SingleStatus {
  switch (t.tag) {
    case 0x80:
      return { status: 'good' };
    case 0x82:
      return { status: 'unknown' };
    case 0xa1: {
      const [time, reason] = children(t);
      const revokedAt = readTime(expectTag(time, Tag.GeneralizedTime, 'revocationTime'));
      if (!reason) return { status: 'revoked', revokedAt, reason: null };
      const code = value(expectTag(explicit(reason, 0xa0, 'revocationReason'), Tag.ENUMERATED, 'CRLReason'));
      if (code.length !== 1) throw malformed('CRLReason is one octet');
      return { status: 'revoked', revokedAt, reason: code[0]! };
    }
    default:
      throw malformed(`unknown CertStatus tag 0x${t.tag.toString(16)}`);
  }
}

function readSingleResponse(t: Tlv): SingleResponse {
  const [certId, status, thisUpdate, next] = children(expectTag(t, Tag.SEQUENCE, 'SingleResponse'));
  expectTag(certId, Tag.SEQUENCE, 'CertID');
  if (!status) throw malformed('SingleResponse without certStatus');
  return {
    certId: certId!,
    certIdDer: whole(certId!),
    status: readCertStatus(status),
    thisUpdate: readTime(expectTag(thisUpdate, Tag.GeneralizedTime, 'thisUpdate')),
    nextUpdate: next?.tag === 0xa0 ? readTime(expectTag(explicit(next, 0xa0, 'nextUpdate'), Tag.GeneralizedTime, 'nextUpdate')) : null,
  };
}

function readResponderId(t: Tlv | undefined): ResponderId {
  if (t?.tag === 0xa1) return { type: 'byName', nameDer: whole(explicit(t, 0xa1, 'byName')) };
  if (t?.tag === 0xa2) return { type: 'byKey', keyHash: value(expectTag(explicit(t, 0xa2, 'byKey'), Tag.OCTET_STRING, 'KeyHash')) };
  throw malformed(`ResponderID: unexpected ${t ? `tag 0x${t.tag.toString(16)}` : 'end'}`);
}

function readBasic(der: Buffer): BasicOcspResponse {
  const [tbsT, algT, sigT, certsT] = children(readOne(der, Tag.SEQUENCE));
  if (!tbsT || !algT || !sigT) throw malformed('BasicOCSPResponse has too few fields');
  const tbs = children(expectTag(tbsT, Tag.SEQUENCE, 'tbsResponseData'));
  let i = tbs[0]?.tag === 0xa0 ? 1 : 0;
  const responderId = readResponderId(tbs[i++]);
  const producedAt = readTime(expectTag(tbs[i++], Tag.GeneralizedTime, 'producedAt'));
  const responses = children(expectTag(tbs[i], Tag.SEQUENCE, 'responses')).map(readSingleResponse);
  return {
    tbsDer: whole(tbsT),
    responderId,
    producedAt,
    responses,
    signatureAlgorithm: readOid(children(expectTag(algT, Tag.SEQUENCE, 'signatureAlgorithm'))[0]!),
    signature: readBitString(sigT).bytes,
    certsDer: certsT ? children(expectTag(explicit(certsT, 0xa0, 'certs'), Tag.SEQUENCE, 'certs')).map(whole) : [],
  };
}

/**
 * Reads a DER OCSPResponse (RFC 6960 §4.2.1):
 *
 *   OCSPResponse ::= SEQUENCE { responseStatus OCSPResponseStatus, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
 *   ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }
 *
 * A successful response must carry a BasicOCSPResponse; any other status is
 * returned with `basic` null and its responseBytes ignored. The signature,
 * signer, CertIDs and times are not checked. Bad DER, a missing field or an
 * unknown CertStatus throws a `malformed` PkiError.
 */
export function readOcspResponse(der: Buffer): OcspResponse {
  const [status, bytes] = children(readOne(der, Tag.SEQUENCE));
  const code = value(expectTag(status, Tag.ENUMERATED, 'responseStatus'));
  if (code.length !== 1) throw malformed('responseStatus is one octet');
  const responseStatus = code[0]!;
  if (responseStatus !== 0) return { responseStatus, basic: null };
  if (!bytes) throw malformed('successful without responseBytes');
  const [type, octets] = children(expectTag(explicit(bytes, 0xa0, 'responseBytes'), Tag.SEQUENCE, 'ResponseBytes'));
  if (readOid(expectTag(type, Tag.OID, 'responseType')) !== OID.ocspBasic) throw malformed('not a BasicOCSPResponse');
  return { responseStatus, basic: readBasic(value(expectTag(octets, Tag.OCTET_STRING, 'response'))) };
}
