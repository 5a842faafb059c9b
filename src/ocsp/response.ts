/** OCSP responses (RFC 6960 §4.2), encoded with the lean DER writer, and read back for the pre-signed cache. */
import { bitString, ctx, generalizedTime, oid, octetString, seq, seqOf, tlv, Tag } from '../pki/der.js';
import { extension } from '../pki/extensions.js';
import { readOcspResponse, type SingleStatus } from '../pki/ocsp-response.js';
import { OID } from '../pki/oids.js';
import type { OcspExpectations } from '../lint/ocsp.js';

/** OCSPResponseStatus ::= ENUMERATED (RFC 6960 §4.2.1); 4 is not used. */
export const responseStatus = { successful: 0, malformedRequest: 1, internalError: 2, tryLater: 3, sigRequired: 5, unauthorized: 6 } as const;
export type ResponseStatusName = keyof typeof responseStatus;
export type ErrorStatusName = Exclude<ResponseStatusName, 'successful'>;

const errorDer = Object.fromEntries(
  Object.entries(responseStatus)
    .filter(([k]) => k !== 'successful')
    .map(([k, v]) => [k, seq(tlv(Tag.ENUMERATED, Buffer.from([v])))]),
) as Record<ErrorStatusName, Buffer>;

/**
 * OCSPResponse ::= SEQUENCE { responseStatus OCSPResponseStatus, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
 * without responseBytes: RFC 6960 §4.2.1 sends them only with successful.
 */
export const errorResponse = (status: ErrorStatusName): Buffer => errorDer[status];

/** What one SingleResponse says about a certificate (defined beside the reader in src/pki/ocsp-response.ts). */
export type { SingleStatus };

export interface SingleResponseInput {
  certIdDer: Buffer;
  status: SingleStatus;
  thisUpdate: Date;
  nextUpdate: Date;
}

/** The delegated responder: built by `responderSignerOf` in src/ca from the certificate and its key. */
export interface ResponderSigner {
  /** SHA-1 of the responder's subjectPublicKey bits (ResponderID byKey, RFC 6960 §4.2.1). */
  keyHash: Buffer;
  /** AlgorithmIdentifier DER for the responder key's signature. */
  signatureAlgorithm: Buffer;
  /** The responder certificate, sent in `certs` so clients can check the delegation. */
  certDer: Buffer;
  /**
   * Signs a ResponseData. The CA lints `tbs` against `expect` first
   * (src/lint/ocsp.ts) and throws `lintFailed` without signing on a finding.
   */
  sign(tbs: Buffer, expect: OcspExpectations): Promise<Buffer>;
}

// RFC 5280 §5.3.1 CRLReason; 7 is unused and removeFromCRL (8) never appears in OCSP.
const isReason = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 10 && n !== 7 && n !== 8;

// CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL }
// RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
function certStatus(s: SingleStatus): Buffer {
  switch (s.status) {
    case 'good':
      return ctx(0, false);
    case 'unknown':
      return ctx(2, false);
    case 'revoked': {
      if (s.reason !== null && !isReason(s.reason)) throw new RangeError(`not a CRLReason for OCSP: ${s.reason}`);
      // unspecified (0) is left out, as RFC 5280 §5.3.1 asks of CRL entries.
      const reason = s.reason !== null && s.reason !== 0 ? [ctx(0, true, tlv(Tag.ENUMERATED, Buffer.from([s.reason])))] : [];
      return ctx(1, true, generalizedTime(s.revokedAt), ...reason);
    }
  }
}

// SingleResponse ::= SEQUENCE { certID CertID, certStatus CertStatus, thisUpdate GeneralizedTime,
//   nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, singleExtensions [1] EXPLICIT Extensions OPTIONAL }
const singleResponse = (r: SingleResponseInput): Buffer => seq(r.certIdDer, certStatus(r.status), generalizedTime(r.thisUpdate), ctx(0, true, generalizedTime(r.nextUpdate)));

/**
 * Signs a successful response with the delegated responder.
 *
 *   BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm AlgorithmIdentifier,
 *     signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
 *   ResponseData ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, responderID ResponderID,
 *     producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT Extensions OPTIONAL }
 *   ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }
 *   OCSPResponse ::= SEQUENCE { responseStatus, responseBytes [0] EXPLICIT ResponseBytes }
 *   ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }
 *
 * ResponderID is byKey (RFC 5019 §2.2.3 allows either; the key hash stays
 * the same across subject changes). The nonce, when given, is echoed in
 * responseExtensions (RFC 8954 §2.1); version is v1 and so left out (DER).
 *
 * `expect` goes to the signer with the ResponseData: the CA lints one
 * against the other before it signs (src/lint/ocsp.ts: each status is its
 * record's, the dates hold now, the CertIDs name this CA, the responder is
 * identified), and a finding is a `lintFailed` error with nothing signed.
 */
export async function signedResponse(signer: ResponderSigner, producedAt: Date, responses: SingleResponseInput[], nonce: Buffer | null, expect: OcspExpectations): Promise<Buffer> {
  if (responses.length === 0) throw new RangeError('a response answers at least one CertID');
  const parts = [ctx(2, true, octetString(signer.keyHash)), generalizedTime(producedAt), seqOf(responses.map(singleResponse))];
  if (nonce) parts.push(ctx(1, true, seq(extension(OID.ocspNonce, false, octetString(nonce)))));
  const tbs = seq(...parts);
  const basic = seq(tbs, signer.signatureAlgorithm, bitString(await signer.sign(tbs, expect)), ctx(0, true, seq(signer.certDer)));
  return seq(tlv(Tag.ENUMERATED, Buffer.from([responseStatus.successful])), ctx(0, true, seq(oid(OID.ocspBasic), octetString(basic))));
}

/** The first SingleResponse of a successful response: what a pre-signed response says, so it can be checked against the store. */
export interface ResponseSummary {
  producedAt: Date;
  certIdDer: Buffer;
  status: SingleStatus;
  thisUpdate: Date;
  nextUpdate: Date | null;
}

/** Reads back a successful OCSPResponse written by `signedResponse` with src/pki/ocsp-response.ts (throws on anything else; the signature is not checked). */
export function readResponseSummary(der: Buffer): ResponseSummary {
  const { basic } = readOcspResponse(der);
  if (!basic) throw new RangeError('not a successful OCSP response');
  const [single] = basic.responses;
  if (!single) throw new RangeError('OCSP response without a SingleResponse');
  return { producedAt: basic.producedAt, certIdDer: single.certIdDer, status: single.status, thisUpdate: single.thisUpdate, nextUpdate: single.nextUpdate };
}

/** True when two statuses say the same thing at OCSP's one-second resolution (unspecified and no reason are the same). */
export function sameStatus(a: SingleStatus, b: SingleStatus): boolean {
  if (a.status !== b.status) return false;
  if (a.status !== 'revoked' || b.status !== 'revoked') return true;
  return Math.floor(a.revokedAt.getTime() / 1000) === Math.floor(b.revokedAt.getTime() / 1000) && (a.reason ?? 0) === (b.reason ?? 0);
}
