/** OCSPRequest (RFC 6960 §4.1.1), parsed strictly. Any problem is a malformedRequest. */
import { createHash } from 'node:crypto';
import { children, derNull, expectTag, octetString, oid, readBitString, readOid, readOne, readUnsigned, seq, Tag, uintFromBytes, value, whole, type Tlv } from '../pki/der.js';
import { readAlgorithmIdentifier } from '../pki/algorithm-identifier.js';
import { parseCertificate } from '../pki/certificate.js';
import { parseExtensions, type RawExtension } from '../pki/csr.js';
import { parseGeneralName } from '../pki/general-name.js';
import { OID } from '../pki/oids.js';

/** CertID hash algorithms we accept: SHA-1 (RFC 5019 §2.1.1 requires it of clients) and SHA-256. */
export const hashOids = { sha1: '1.3.14.3.2.26', sha256: '2.16.840.1.101.3.4.2.1' } as const;
export type CertIdHash = keyof typeof hashOids;

/** CertID ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING, issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber } */
export interface CertId {
  hash: CertIdHash;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** Lower-case hex, no sign octet: the store's serialHex form. */
  serialHex: string;
  /** The CertID exactly as received: the response echoes it byte for byte. */
  der: Buffer;
  /** True when `der` is the encoding Trellis writes itself (`encodeCertId`), so a pre-signed response answers it. */
  canonical: boolean;
}

export interface OcspRequest {
  certIds: CertId[];
  /** RFC 8954 §2.1: 1..32 octets when present. */
  nonce: Buffer | null;
  /** True when the request carried optionalSignature (not checked, see parseOcspRequest). */
  signed: boolean;
}

/** Thrown by the parser; the responder answers it with malformedRequest. */
export class MalformedOcspRequest extends Error {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(detail, options);
    this.name = 'MalformedOcspRequest';
  }
}

/** Most CertIDs answered in one response: bounds the work one request can ask for. */
export const maxCertIds = 10;

/** RFC 8954 §2.1: Nonce ::= OCTET STRING (SIZE(1..32)). */
export const maxNonceOctets = 32;

const hashByOid = new Map<string, CertIdHash>(Object.entries(hashOids).map(([k, v]) => [v, k as CertIdHash]));
const hashLength: Record<CertIdHash, number> = { sha1: 20, sha256: 32 };

// AlgorithmIdentifier { algorithm, parameters NULL }: the form OpenSSL, Go,
// Java and NSS send, and the one RFC 5019 §2.1.1 shows.
const hashAlgorithmDer: Record<CertIdHash, Buffer> = { sha1: seq(oid(hashOids.sha1), derNull), sha256: seq(oid(hashOids.sha256), derNull) };

/** The CertID Trellis writes for a certificate of an issuer (hashes of the issuer's Name DER and subjectPublicKey bits). */
export function encodeCertId(hash: CertIdHash, issuerNameHash: Buffer, issuerKeyHash: Buffer, serialHex: string): Buffer {
  return seq(hashAlgorithmDer[hash], octetString(issuerNameHash), octetString(issuerKeyHash), uintFromBytes(Buffer.from(serialHex, 'hex')));
}

/** issuerNameHash and issuerKeyHash of an issuer for one hash algorithm (RFC 6960 §4.1.1). */
export function issuerHashes(hash: CertIdHash, subjectDer: Buffer, subjectPublicKey: Buffer): { issuerNameHash: Buffer; issuerKeyHash: Buffer } {
  return { issuerNameHash: createHash(hash).update(subjectDer).digest(), issuerKeyHash: createHash(hash).update(subjectPublicKey).digest() };
}

/** True when the TLV's whole encoding is `bytes` (compared in place: no view of the buffer is made). */
function encodes(t: Tlv, bytes: Buffer): boolean {
  if (t.end - t.headerStart !== bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (t.buf[t.headerStart + i] !== bytes[i]) return false;
  return true;
}

/** The CertID's hash algorithm, and whether it is written as Trellis writes it (OID with NULL parameters). */
function parseHashAlgorithm(t: Tlv): { hash: CertIdHash; canonical: boolean } {
  // The form nearly every client sends (OID, NULL): known by its bytes, without reading the OID.
  if (encodes(t, hashAlgorithmDer.sha1)) return sha1Canonical;
  if (encodes(t, hashAlgorithmDer.sha256)) return sha256Canonical;
  const [alg, params, ...extra] = children(expectTag(t, Tag.SEQUENCE, 'hashAlgorithm'));
  if (!alg || extra.length) throw new MalformedOcspRequest('hashAlgorithm has the wrong number of fields');
  // RFC 5754 §2: SHA-2 parameters are absent or NULL; SHA-1 likewise.
  if (params && !(params.tag === Tag.NULL && params.end === params.start)) throw new MalformedOcspRequest('hashAlgorithm parameters must be absent or NULL');
  const hash = hashByOid.get(readOid(alg));
  if (!hash) throw new MalformedOcspRequest('unsupported CertID hash algorithm (SHA-1 or SHA-256)');
  // Not the bytes above, so not the canonical form (parameters absent, for one).
  return { hash, canonical: false };
}

const sha1Canonical = { hash: 'sha1', canonical: true } as const;
const sha256Canonical = { hash: 'sha256', canonical: true } as const;

function parseCertId(t: Tlv): CertId {
  const [alg, nameHash, keyHash, serial, ...extra] = children(expectTag(t, Tag.SEQUENCE, 'CertID'));
  if (!alg || !nameHash || !keyHash || !serial || extra.length) throw new MalformedOcspRequest('CertID has the wrong number of fields');
  const { hash, canonical } = parseHashAlgorithm(alg);
  const n = value(expectTag(nameHash, Tag.OCTET_STRING, 'issuerNameHash'));
  const k = value(expectTag(keyHash, Tag.OCTET_STRING, 'issuerKeyHash'));
  if (n.length !== hashLength[hash] || k.length !== hashLength[hash]) throw new MalformedOcspRequest('CertID hash length does not match its algorithm');
  const serialHex = readUnsigned(serial).toString('hex');
  // Canonical means `der` equals encodeCertId(hash, n, k, serialHex), decided without encoding it again (half of a cached
  // answer's parse): the reader takes only minimal DER lengths and minimal non-negative INTEGERs, and the two OCTET STRINGs
  // and the serial re-encode to the bytes they were read from, so the CertID is canonical exactly when its hashAlgorithm
  // is (OID with NULL parameters). request.test.ts checks the two definitions agree.
  return { hash, issuerNameHash: n, issuerKeyHash: k, serialHex, der: whole(t), canonical };
}

/**
 * RFC 6960 §4.4: unrecognised extensions are ignored unless critical; a
 * critical one we do not understand makes the request one we cannot answer.
 * The same extension twice is malformed (RFC 5280 §4.2, same Extensions type).
 */
function checkExtensions(exts: RawExtension[], understood: readonly string[]): void {
  const seen = new Set<string>();
  for (const e of exts) {
    if (seen.has(e.oid)) throw new MalformedOcspRequest(`extension ${e.oid} appears twice`);
    seen.add(e.oid);
    if (e.critical && !understood.includes(e.oid)) throw new MalformedOcspRequest(`unsupported critical extension ${e.oid}`);
  }
}

/** Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL } */
function parseRequest(t: Tlv): CertId {
  const [reqCert, exts, ...extra] = children(expectTag(t, Tag.SEQUENCE, 'Request'));
  if (!reqCert || extra.length || (exts && exts.tag !== 0xa0)) throw new MalformedOcspRequest('Request has the wrong structure');
  if (exts) checkExtensions(parseExtensions(explicit(exts)), []);
  return parseCertId(reqCert);
}

/** The single element inside an EXPLICIT tag. */
function explicit(t: Tlv): Tlv {
  const inner = children(t);
  if (inner.length !== 1) throw new MalformedOcspRequest(`[${t.tag & 0x1f}] EXPLICIT must hold exactly one element`);
  return inner[0]!;
}

/** Signature ::= SEQUENCE { signatureAlgorithm AlgorithmIdentifier, signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL } */
function checkSignatureShape(t: Tlv): void {
  const [alg, sig, certs, ...extra] = children(expectTag(t, Tag.SEQUENCE, 'Signature'));
  readAlgorithmIdentifier(alg);
  readBitString(expectTag(sig, Tag.BIT_STRING, 'signature'));
  if (extra.length || (certs && certs.tag !== 0xa0)) throw new MalformedOcspRequest('Signature has the wrong structure');
  // Unchecked, but still read: a request is DER throughout, certificates included.
  if (certs) for (const c of children(expectTag(explicit(certs), Tag.SEQUENCE, 'certs'))) parseCertificate(whole(c));
}

/**
 * Parses a DER OCSPRequest.
 *
 *   OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
 *   TBSRequest ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT GeneralName OPTIONAL,
 *     requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
 *
 * A request signature is accepted and not checked: Trellis answers anyone
 * (RFC 6960 §4.1.2 makes signing optional, and the answers are public).
 * More than `maxCertIds` CertIDs, an empty list, a CertID hash other than
 * SHA-1/SHA-256, a nonce outside 1..32 octets (RFC 8954 §2.1), an unknown
 * critical extension, BER or trailing bytes: all throw MalformedOcspRequest.
 */
export function parseOcspRequest(der: Buffer): OcspRequest {
  try {
    const top = children(readOne(der, Tag.SEQUENCE));
    if (top.length < 1 || top.length > 2 || (top[1] && top[1].tag !== 0xa0)) throw new MalformedOcspRequest('OCSPRequest has the wrong structure');
    if (top[1]) checkSignatureShape(explicit(top[1]));
    const tbs = children(expectTag(top[0], Tag.SEQUENCE, 'TBSRequest'));
    let i = 0;
    if (tbs[i]?.tag === 0xa0) {
      // v1(0) is the only version; DER would omit it (DEFAULT), but some clients write it.
      const v = readUnsigned(explicit(tbs[i++]!));
      if (!(v.length === 1 && v[0] === 0)) throw new MalformedOcspRequest('unsupported OCSP request version');
    }
    if (tbs[i]?.tag === 0xa1) {
      // requestorName: informational only, but still a GeneralName in DER.
      parseGeneralName(explicit(tbs[i++]!));
    }
    const list = children(expectTag(tbs[i++], Tag.SEQUENCE, 'requestList'));
    if (list.length === 0) throw new MalformedOcspRequest('empty requestList');
    if (list.length > maxCertIds) throw new MalformedOcspRequest(`more than ${maxCertIds} certificates in one request`);
    const certIds = list.map(parseRequest);
    let nonce: Buffer | null = null;
    if (tbs[i]?.tag === 0xa2) {
      const exts = parseExtensions(explicit(tbs[i++]!));
      checkExtensions(exts, [OID.ocspNonce]);
      const e = exts.find((x) => x.oid === OID.ocspNonce);
      if (e) {
        // RFC 8954 §2.1: the extnValue holds Nonce ::= OCTET STRING (SIZE(1..32)).
        nonce = value(readOne(e.valueDer, Tag.OCTET_STRING));
        if (nonce.length < 1 || nonce.length > maxNonceOctets) throw new MalformedOcspRequest(`nonce must be 1 to ${maxNonceOctets} octets (RFC 8954)`);
      }
    }
    if (i !== tbs.length) throw new MalformedOcspRequest('unexpected fields in TBSRequest');
    return { certIds, nonce, signed: top.length === 2 };
  } catch (err) {
    if (err instanceof MalformedOcspRequest) throw err;
    throw new MalformedOcspRequest(err instanceof Error ? err.message : String(err), { cause: err });
  }
}
