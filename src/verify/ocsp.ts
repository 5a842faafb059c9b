/**
 * OCSP for the verifier (RFC 6960, RFC 5019 profile): the request built with
 * pkijs, the response parsed with the DER reader and checked here: signer
 * (the issuer, or a responder certificate it issued with id-kp-OCSPSigning),
 * signature, CertID, thisUpdate/nextUpdate.
 */
import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { findExtension, parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { children, expectTag, readOid, readOne, readTime, readUnsigned, Tag, value, whole, type Tlv } from '../pki/der.js';
import { decodeExtKeyUsage } from '../pki/extensions.js';
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

const only = (t: Tlv, what: string): Tlv => {
  const c = children(t);
  if (c.length !== 1) throw new UnusableAnswer(`${what}: expected one element`);
  return c[0]!;
};

function readStatus(t: Tlv): CertStatus {
  switch (t.tag) {
    case 0x80:
      return { status: 'good' };
    case 0x82:
      return { status: 'unknown' };
    case 0xa1: {
      const [, reason] = children(t);
      if (!reason) return { status: 'revoked', reason: null };
      const code = value(expectTag(only(expectTag(reason, 0xa0, 'revocationReason'), 'revocationReason'), Tag.ENUMERATED, 'CRLReason'));
      return { status: 'revoked', reason: code.length === 1 ? code[0]! : null };
    }
    default:
      throw new UnusableAnswer(`unknown CertStatus tag 0x${t.tag.toString(16)}`);
  }
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
function responderOf(responderId: Tlv, certs: ParsedCertificate[], issuer: ParsedCertificate, now: Date): ParsedCertificate {
  const named = (c: ParsedCertificate): boolean =>
    responderId.tag === 0xa1
      ? whole(only(responderId, 'byName')).equals(c.subjectDer)
      : responderId.tag === 0xa2 && value(expectTag(only(responderId, 'byKey'), Tag.OCTET_STRING, 'KeyHash')).equals(createHash('sha1').update(c.subjectPublicKey).digest());
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
    const [status, bytes] = children(readOne(der, Tag.SEQUENCE));
    const code = value(expectTag(status, Tag.ENUMERATED, 'responseStatus'));
    if (code.length !== 1 || code[0] !== 0) throw new UnusableAnswer(`OCSP responseStatus ${code[0] ?? '?'}`);
    if (!bytes) throw new UnusableAnswer('OCSP response without responseBytes');
    const [type, octets] = children(expectTag(only(expectTag(bytes, 0xa0, 'responseBytes'), 'responseBytes'), Tag.SEQUENCE, 'ResponseBytes'));
    if (readOid(expectTag(type, Tag.OID, 'responseType')) !== OID.ocspBasic) throw new UnusableAnswer('not a BasicOCSPResponse');
    // BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
    const [tbsT, algT, sigT, certsT] = children(readOne(value(expectTag(octets, Tag.OCTET_STRING, 'response')), Tag.SEQUENCE));
    if (!tbsT || !algT || !sigT) throw new UnusableAnswer('BasicOCSPResponse has too few fields');
    const certs = certsT ? children(only(expectTag(certsT, 0xa0, 'certs'), 'certs')).map((c) => parseCertificate(whole(c))) : [];
    const tbs = children(expectTag(tbsT, Tag.SEQUENCE, 'tbsResponseData'));
    let i = tbs[0]?.tag === 0xa0 ? 1 : 0;
    const responderId = tbs[i++]!;
    const producedAt = readTime(expectTag(tbs[i++], Tag.GeneralizedTime, 'producedAt'));
    const responses = children(expectTag(tbs[i], Tag.SEQUENCE, 'responses'));

    const signer = responderOf(responderId, certs, issuer, now);
    const algOid = readOid(children(expectTag(algT, Tag.SEQUENCE, 'signatureAlgorithm'))[0]!);
    const sig = value(expectTag(sigT, Tag.BIT_STRING, 'signature')).subarray(1);
    if (!verifySignature(algOid, loadSpki(signer.spkiDer).publicKey, whole(tbsT), sig, 'OCSP response')) throw new UnusableAnswer('OCSP response signature does not verify');
    if (producedAt.getTime() > now.getTime() + skewMs) throw new UnusableAnswer('OCSP response produced in the future');

    for (const r of responses) {
      const single = children(expectTag(r, Tag.SEQUENCE, 'SingleResponse'));
      if (!certIdMatches(single[0]!, leaf, issuer)) continue;
      const thisUpdate = readTime(expectTag(single[2], Tag.GeneralizedTime, 'thisUpdate'));
      const nextUpdate = single[3]?.tag === 0xa0 ? readTime(expectTag(only(single[3], 'nextUpdate'), Tag.GeneralizedTime, 'nextUpdate')) : null;
      if (thisUpdate.getTime() > now.getTime() + skewMs) throw new UnusableAnswer('OCSP thisUpdate is in the future');
      if (nextUpdate && nextUpdate.getTime() < now.getTime()) throw new UnusableAnswer('OCSP response is stale (nextUpdate passed)');
      return { status: readStatus(single[1]!), thisUpdate, nextUpdate };
    }
    throw new UnusableAnswer('OCSP response does not answer for this certificate');
  } catch (err) {
    if (err instanceof UnusableAnswer) throw err;
    throw new UnusableAnswer(`OCSP response cannot be read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
