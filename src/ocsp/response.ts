/** OCSP responses (RFC 6960 §4.2), encoded with the lean DER writer. */
import { bitString, ctx, generalizedTime, oid, octetString, seq, seqOf, tlv, Tag } from '../pki/der.js';
import { extension } from '../pki/extensions.js';
import { OID } from '../pki/oids.js';

/** OCSPResponseStatus ::= ENUMERATED (RFC 6960 §4.2.1). */
export const responseStatus = { successful: 0, malformedRequest: 1, internalError: 2, tryLater: 3, sigRequired: 5, unauthorized: 6 } as const;
export type ResponseStatusName = keyof typeof responseStatus;

/** OCSPResponse without responseBytes, for every status but successful. */
export const errorResponse = (status: Exclude<ResponseStatusName, 'successful'>): Buffer => seq(tlv(Tag.ENUMERATED, Buffer.from([responseStatus[status]])));

export type SingleStatus = { status: 'good' } | { status: 'unknown' } | { status: 'revoked'; revokedAt: Date; reason: number | null };

export interface SingleResponseInput {
  certIdDer: Buffer;
  status: SingleStatus;
  thisUpdate: Date;
  nextUpdate: Date;
}

export interface ResponderSigner {
  /** SHA-1 of the responder's public key (ResponderID byKey). */
  keyHash: Buffer;
  signatureAlgorithm: Buffer;
  certDer: Buffer;
  sign(tbs: Buffer): Promise<Buffer>;
}

// CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL }
// RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
function certStatus(s: SingleStatus): Buffer {
  switch (s.status) {
    case 'good':
      return ctx(0, false, Buffer.alloc(0));
    case 'unknown':
      return ctx(2, false, Buffer.alloc(0));
    case 'revoked':
      return ctx(1, true, generalizedTime(s.revokedAt), ...(s.reason !== null && s.reason !== 0 ? [ctx(0, true, tlv(Tag.ENUMERATED, Buffer.from([s.reason])))] : []));
  }
}

// SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate GeneralizedTime, nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, … }
const singleResponse = (r: SingleResponseInput): Buffer => seq(r.certIdDer, certStatus(r.status), generalizedTime(r.thisUpdate), ctx(0, true, generalizedTime(r.nextUpdate)));

/**
 * BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm, signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
 * ResponseData ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, responderID ResponderID, producedAt GeneralizedTime,
 *   responses SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT Extensions OPTIONAL }
 * ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }
 * wrapped in OCSPResponse ::= SEQUENCE { responseStatus, responseBytes [0] EXPLICIT ResponseBytes { responseType, response OCTET STRING } }
 */
export async function signedResponse(signer: ResponderSigner, producedAt: Date, responses: SingleResponseInput[], nonce: Buffer | null): Promise<Buffer> {
  const parts = [ctx(2, true, octetString(signer.keyHash)), generalizedTime(producedAt), seqOf(responses.map(singleResponse))];
  if (nonce) parts.push(ctx(1, true, seq(extension(OID.ocspNonce, false, octetString(nonce)))));
  const tbs = seq(...parts);
  const basic = seq(tbs, signer.signatureAlgorithm, bitString(await signer.sign(tbs)), ctx(0, true, seq(signer.certDer)));
  return seq(tlv(Tag.ENUMERATED, Buffer.from([0])), ctx(0, true, seq(oid(OID.ocspBasic), octetString(basic))));
}
