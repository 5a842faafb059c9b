/** OCSPRequest (RFC 6960 §4.1.1), parsed strictly. Any problem is a malformedRequest. */
import { children, expectTag, readOid, readOne, readUnsigned, Tag, value, type Tlv } from '../pki/der.js';
import { parseExtensions } from '../pki/csr.js';
import { OID } from '../pki/oids.js';

export const hashOids = { sha1: '1.3.14.3.2.26', sha256: '2.16.840.1.101.3.4.2.1' } as const;
export type CertIdHash = keyof typeof hashOids;

/** CertID ::= SEQUENCE { hashAlgorithm, issuerNameHash OCTET STRING, issuerKeyHash OCTET STRING, serialNumber } */
export interface CertId {
  hash: CertIdHash;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  serialHex: string;
  /** The CertID exactly as received: the response echoes it byte for byte. */
  der: Buffer;
}

export interface OcspRequest {
  certIds: CertId[];
  /** RFC 8954: 1..32 octets when present. */
  nonce: Buffer | null;
}

export class MalformedOcspRequest extends Error {}

const hashByOid = new Map<string, CertIdHash>(Object.entries(hashOids).map(([k, v]) => [v, k as CertIdHash]));
const hashLength: Record<CertIdHash, number> = { sha1: 20, sha256: 32 };

/** Most CertIDs answered in one response. */
export const maxCertIds = 10;

function parseCertId(t: Tlv): CertId {
  const [alg, nameHash, keyHash, serial, ...extra] = children(expectTag(t, Tag.SEQUENCE, 'CertID'));
  if (!alg || !nameHash || !keyHash || !serial || extra.length) throw new MalformedOcspRequest('CertID has the wrong number of fields');
  const hash = hashByOid.get(readOid(children(expectTag(alg, Tag.SEQUENCE, 'hashAlgorithm'))[0]!));
  if (!hash) throw new MalformedOcspRequest('unsupported CertID hash algorithm');
  const n = value(expectTag(nameHash, Tag.OCTET_STRING, 'issuerNameHash'));
  const k = value(expectTag(keyHash, Tag.OCTET_STRING, 'issuerKeyHash'));
  if (n.length !== hashLength[hash] || k.length !== hashLength[hash]) throw new MalformedOcspRequest('CertID hash length does not match its algorithm');
  const s = readUnsigned(serial);
  return { hash, issuerNameHash: n, issuerKeyHash: k, serialHex: s.toString('hex'), der: t.buf.subarray(t.headerStart, t.end) };
}

/**
 * OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
 * TBSRequest ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT GeneralName OPTIONAL,
 *   requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
 * Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
 * A request signature is not checked: Trellis answers anyone (RFC 6960 §4.1.2 makes it optional).
 */
export function parseOcspRequest(der: Buffer): OcspRequest {
  try {
    const top = children(readOne(der, Tag.SEQUENCE));
    if (top.length < 1 || top.length > 2 || (top[1] && top[1].tag !== 0xa0)) throw new MalformedOcspRequest('OCSPRequest has the wrong structure');
    const tbs = children(expectTag(top[0], Tag.SEQUENCE, 'TBSRequest'));
    let i = 0;
    if (tbs[i]?.tag === 0xa0) {
      const v = readUnsigned(children(tbs[i++]!)[0]!);
      if (!(v.length === 1 && v[0] === 0)) throw new MalformedOcspRequest('unsupported OCSP request version');
    }
    if (tbs[i]?.tag === 0xa1) i++;
    const list = children(expectTag(tbs[i++], Tag.SEQUENCE, 'requestList'));
    if (list.length === 0) throw new MalformedOcspRequest('empty requestList');
    if (list.length > maxCertIds) throw new MalformedOcspRequest(`more than ${maxCertIds} certificates in one request`);
    const certIds = list.map((r) => parseCertId(children(expectTag(r, Tag.SEQUENCE, 'Request'))[0]!));
    let nonce: Buffer | null = null;
    if (tbs[i]?.tag === 0xa2) {
      for (const e of parseExtensions(children(tbs[i++]!)[0]!)) {
        if (e.oid !== OID.ocspNonce) continue;
        // RFC 8954 §2.1: the nonce is an OCTET STRING of 1 to 32 octets.
        const n = value(readOne(e.valueDer, Tag.OCTET_STRING));
        if (n.length < 1 || n.length > 32) throw new MalformedOcspRequest('nonce must be 1 to 32 octets (RFC 8954)');
        nonce = n;
      }
    }
    if (i !== tbs.length) throw new MalformedOcspRequest('unexpected fields in TBSRequest');
    return { certIds, nonce };
  } catch (err) {
    if (err instanceof MalformedOcspRequest) throw err;
    throw new MalformedOcspRequest((err as Error).message);
  }
}
