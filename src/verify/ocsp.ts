/**
 * OCSP for the verifier (RFC 6960, RFC 5019 profile): the request built with
 * pkijs, the response read by src/pki/ocsp-response.ts and checked here: signer
 * (the issuer, or a responder certificate it issued with id-kp-OCSPSigning),
 * signature, CertID, thisUpdate/nextUpdate.
 */
import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { findExtension, parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { children, expectTag, readOid, readUnsigned, Tag, value, type Tlv } from '../pki/der.js';
import { decodeExtKeyUsage } from '../pki/extensions.js';
import { readOcspResponse, type ResponderId } from '../pki/ocsp-response.js';
import { OID } from '../pki/oids.js';
import { loadSpki } from '../pki/public-key.js';
import { verifySignature } from '../pki/signature.js';
import { signedBy } from './chain.js';

const sha1Oid = '1.3.14.3.2.26';
const sha256Oid = '2.16.840.1.101.3.4.2.1';

/** A status the verifier can act on. */
export type CertStatus = { status: 'good' } | { status: 'revoked'; reason: number | null } | { status: 'unknown' };

/** An answer whose signature, CertID and times were checked. */
export interface CheckedStatus {
  status: CertStatus;
  thisUpdate: Date;
  nextUpdate: Date | null;
}

/** Why an OCSP or CRL answer cannot be used (the verifier then tries the next source). */
export class UnusableAnswer extends Error {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(detail, options);
    this.name = 'UnusableAnswer';
  }
}

/** Clock skew tolerated between the gateway and the responder. */
export const skewMs = 5 * 60_000;

/** DER OCSPRequest for one certificate: SHA-1 CertID (RFC 5019 §2.1.1), no nonce (answers are pre-signed and cached). */
export function buildOcspRequest(leaf: ParsedCertificate, issuer: ParsedCertificate): Buffer {
  const certId = new pkijs.CertID({
    hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: sha1Oid, algorithmParams: new asn1js.Null() }),
    issuerNameHash: new asn1js.OctetString({ valueHex: createHash('sha1').update(issuer.subjectDer).digest() }),
    issuerKeyHash: new asn1js.OctetString({ valueHex: createHash('sha1').update(issuer.subjectPublicKey).digest() }),
    serialNumber: new asn1js.Integer({ valueHex: leaf.serialContent }),
  });
  const req = new pkijs.OCSPRequest({ tbsRequest: new pkijs.TBSRequest({ requestList: [new pkijs.Request({ reqCert: certId })] }) });
  return Buffer.from(req.toSchema(true).toBER(false));
}

/** True when a CertID names `leaf` of `issuer` (SHA-1 or SHA-256 hashes). */
function certIdMatches(t: Tlv, leaf: ParsedCertificate, issuer: ParsedCertificate): boolean {
  const [alg, nameHash, keyHash, serial] = children(expectTag(t, Tag.SEQUENCE, 'CertID'));
  const algOid = readOid(children(expectTag(alg, Tag.SEQUENCE, 'hashAlgorithm'))[0]!);
  const hash = algOid === sha1Oid ? 'sha1' : algOid === sha256Oid ? 'sha256' : null;
  if (!hash || !nameHash || !keyHash || !serial) return false;
  return (
    value(expectTag(nameHash, Tag.OCTET_STRING, 'issuerNameHash')).equals(createHash(hash).update(issuer.subjectDer).digest()) &&
    value(expectTag(keyHash, Tag.OCTET_STRING, 'issuerKeyHash')).equals(createHash(hash).update(issuer.subjectPublicKey).digest()) &&
    readUnsigned(serial).equals(leaf.serial)
  );
}

/** The certificate that signed the response, checked: the issuer itself, or a delegated responder it issued (RFC 6960 §4.2.2.2). */
function responderOf(responderId: ResponderId, certs: ParsedCertificate[], issuer: ParsedCertificate, now: Date): ParsedCertificate {
  const named = (c: ParsedCertificate): boolean =>
    responderId.type === 'byName' ? responderId.nameDer.equals(c.subjectDer) : responderId.keyHash.equals(createHash('sha1').update(c.subjectPublicKey).digest());
  if (named(issuer)) return issuer;
  const delegated = certs.find(named);
  if (!delegated) throw new UnusableAnswer('OCSP response signed by an unknown responder');
  if (!signedBy(delegated, issuer)) throw new UnusableAnswer('OCSP responder certificate is not issued by the certificate issuer');
  const eku = findExtension(delegated, OID.extKeyUsage);
  if (!eku || !decodeExtKeyUsage(eku.valueDer).includes(OID.OCSPSigning)) throw new UnusableAnswer('OCSP responder certificate lacks id-kp-OCSPSigning');
  if (now < delegated.notBefore || now > delegated.notAfter) throw new UnusableAnswer('OCSP responder certificate is not valid now');
  return delegated;
}

/**
 * Checks a DER OCSPResponse for `leaf` and returns its status. Any problem
 * (not successful, bad signature, wrong signer, no matching CertID, stale or
 * future times) is an UnusableAnswer.
 */
export function checkOcspResponse(der: Buffer, leaf: ParsedCertificate, issuer: ParsedCertificate, now: Date): CheckedStatus {
  try {
    const { responseStatus, basic } = readOcspResponse(der);
    if (!basic) throw new UnusableAnswer(`OCSP responseStatus ${responseStatus}`);
    const signer = responderOf(basic.responderId, basic.certsDer.map(parseCertificate), issuer, now);
    if (!verifySignature(basic.signatureAlgorithm, loadSpki(signer.spkiDer).publicKey, basic.tbsDer, basic.signature, 'OCSP response')) throw new UnusableAnswer('OCSP response signature does not verify');
    if (basic.producedAt.getTime() > now.getTime() + skewMs) throw new UnusableAnswer('OCSP response produced in the future');

    const single = basic.responses.find((r) => certIdMatches(r.certId, leaf, issuer));
    if (!single) throw new UnusableAnswer('OCSP response does not answer for this certificate');
    const { status, thisUpdate, nextUpdate } = single;
    if (thisUpdate.getTime() > now.getTime() + skewMs) throw new UnusableAnswer('OCSP thisUpdate is in the future');
    if (nextUpdate && nextUpdate.getTime() < now.getTime()) throw new UnusableAnswer('OCSP response is stale (nextUpdate passed)');
    return { status: status.status === 'revoked' ? { status: 'revoked', reason: status.reason } : status, thisUpdate, nextUpdate };
  } catch (err) {
    if (err instanceof UnusableAnswer) throw err;
    throw new UnusableAnswer(`OCSP response cannot be read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
