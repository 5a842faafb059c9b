import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { children, oid, readOid, readOne, readTlv, seq, Tag, value, whole } from '../pki/der.js';
import { OID } from '../pki/oids.js';
import { throwOnErrors } from '../lint/index.js';
import { lintOcspResponseData, type OcspExpectations, type OcspRecord } from '../lint/ocsp.js';
import { refusal } from '../../test/helpers/errors.js';
import { encodeCertId, hashOids } from './request.js';
import { errorResponse, readResponseSummary, responseStatus, sameStatus, signedResponse, type ResponderSigner, type SingleStatus } from './response.js';

// A fixed Ed25519 key: RFC 8032 signatures are deterministic, so the whole response is a known answer.
const seed = Buffer.from('1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100', 'hex');
const key = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
const rawPublic = (k: KeyObject): Buffer => {
  const spki = createPublicKey(k).export({ type: 'spki', format: 'der' });
  return spki.subarray(spki.length - 32);
};
// certs [0] carries whatever the signer holds; a placeholder keeps the known answer short.
const signer: ResponderSigner = {
  keyHash: createHash('sha1').update(rawPublic(key)).digest(),
  signatureAlgorithm: seq(oid(OID.ed25519)),
  certDer: seq(oid('1.2.3')),
  sign: async (tbs) => sign(null, tbs, key),
};

const at = (iso: string) => new Date(iso);
const certId = encodeCertId('sha1', Buffer.alloc(20, 0xaa), Buffer.alloc(20, 0xbb), '4a5b');
const thisUpdate = at('2026-03-04T05:06:07Z');
const nextUpdate = at('2026-03-05T05:06:07Z');
/** The store record a status is read from (what the responder's lint compares the response with). */
const recordOf = (s: SingleStatus): OcspRecord | null =>
  s.status === 'good' ? { status: 'valid', revokedAt: null, revocationReason: null } : s.status === 'revoked' ? { status: 'revoked', revokedAt: s.revokedAt, revocationReason: s.reason } : null;
const hashesOf = (name: Buffer, key: Buffer) => ({ [hashOids.sha1]: { issuerNameHash: name, issuerKeyHash: key } });
const expectFor = (singles: OcspExpectations['singles'], over: Partial<OcspExpectations> = {}): OcspExpectations => ({
  now: thisUpdate, responderKeyHash: signer.keyHash, issuerHashes: hashesOf(Buffer.alloc(20, 0xaa), Buffer.alloc(20, 0xbb)), singles, maxValiditySeconds: 86_400, ...over,
});
const one = (status: SingleStatus, nonce: Buffer | null = null) =>
  signedResponse(signer, thisUpdate, [{ certIdDer: certId, status, thisUpdate, nextUpdate }], nonce, expectFor([{ serialHex: '4a5b', record: recordOf(status) }]));

/** BasicOCSPResponse parts, read with the DER reader. */
function basicOf(der: Buffer) {
  const [status, bytes] = children(readOne(der, Tag.SEQUENCE));
  expect(value(status!)[0]).toBe(0);
  const [type, octets] = children(children(bytes!)[0]!);
  expect(readOid(type!)).toBe(OID.ocspBasic);
  const [tbs, alg, sig, certs] = children(readOne(value(octets!), Tag.SEQUENCE));
  return { tbs: tbs!, alg: alg!, sig: sig!, certs: certs! };
}

// Produced once by this encoder and read with `openssl asn1parse -inform DER -i` (responseStatus 0,
// id-pkix-ocsp-basic, [2] byKey, producedAt, one SingleResponse revoked 2026-03-01 keyCompromise,
// thisUpdate/nextUpdate, the nonce extension, Ed25519); any change to these bytes is a change to review.
const katHex = [
  '308201380a0100a08201313082012d06092b06010505073001010482011e3082011a3081c3a2160414095527132572c58c41226977aa57f426ed8182',
  '3b180f32303236303330343035303630375a307b3079303b300906052b0e03021a05000414aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0414bb',
  'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb02024a5ba116180f32303236303330313030303030305aa0030a0101180f3230323630333034303530',
  '3630375aa011180f32303236303330353035303630375aa11b3019301706092b0601050507300102040a04080102030405060708300506032b657003',
  '41004f9dd37024077d4d1ac854fee363ba100d4ad02ebcd5f438519f9aacc78e45e2ed876dc5b7a0dbc4d0509995e08549abd76a091025675a56c0c4',
  'a1259ea10e01a0083006300406022a03',
].join('');

describe('errorResponse', () => {
  test.each(['malformedRequest', 'internalError', 'tryLater', 'sigRequired', 'unauthorized'] as const)('%s is a bare OCSPResponse', (s) => {
    expect(errorResponse(s).toString('hex')).toBe(`30030a01${responseStatus[s].toString(16).padStart(2, '0')}`);
  });
});

describe('signedResponse', () => {
  test('known answer: revoked with reason and a nonce, byte for byte', async () => {
    const der = await one({ status: 'revoked', revokedAt: at('2026-03-01T00:00:00Z'), reason: 1 }, Buffer.from('0102030405060708', 'hex'));
    expect(der.toString('hex')).toBe(katHex);
  });

  test('responderID byKey, producedAt, SingleResponse fields, certs, and a signature over the TBS', async () => {
    const der = await one({ status: 'good' });
    const { tbs, alg, sig, certs } = basicOf(der);
    const [rid, producedAt, responses, ...rest] = children(tbs);
    expect(rest).toHaveLength(0); // no nonce, no version (v1 is DEFAULT)
    expect(rid!.tag).toBe(0xa2);
    expect(value(readOne(value(rid!), Tag.OCTET_STRING)).equals(signer.keyHash)).toBe(true);
    expect(value(producedAt!).toString()).toBe('20260304050607Z');
    const [single] = children(responses!);
    const [cid, status, tu, nu] = children(single!);
    expect(whole(cid!).equals(certId)).toBe(true);
    expect(whole(status!).toString('hex')).toBe('8000');
    expect(value(tu!).toString()).toBe('20260304050607Z');
    expect(nu!.tag).toBe(0xa0);
    expect(whole(alg).equals(signer.signatureAlgorithm)).toBe(true);
    expect(verify(null, whole(tbs), createPublicKey(key), value(sig).subarray(1))).toBe(true);
    expect(whole(children(certs)[0]!).equals(seq(signer.certDer))).toBe(true);
  });

  test('the nonce is echoed in responseExtensions (RFC 8954)', async () => {
    const { tbs } = basicOf(await one({ status: 'good' }, Buffer.from('nonce-value')));
    const exts = children(tbs).at(-1)!;
    expect(exts.tag).toBe(0xa1);
    const [ext] = children(children(exts)[0]!);
    const [extnId, extnValue] = children(ext!);
    expect(readOid(extnId!)).toBe(OID.ocspNonce);
    expect(value(readOne(value(extnValue!), Tag.OCTET_STRING)).toString()).toBe('nonce-value');
  });

  test('unknown is [2] NULL; revoked unspecified carries no reason; certificateHold does', async () => {
    const statusDer = async (s: SingleStatus) => {
      const { tbs } = basicOf(await one(s));
      const single = children(children(children(tbs)[2]!)[0]!);
      return whole(single[1]!).toString('hex');
    };
    expect(await statusDer({ status: 'unknown' })).toBe('8200');
    expect(await statusDer({ status: 'revoked', revokedAt: at('2026-01-01T00:00:00Z'), reason: 0 })).toBe('a111180f32303236303130313030303030305a');
    expect(await statusDer({ status: 'revoked', revokedAt: at('2026-01-01T00:00:00Z'), reason: null })).toBe('a111180f32303236303130313030303030305a');
    expect(await statusDer({ status: 'revoked', revokedAt: at('2026-01-01T00:00:00Z'), reason: 6 })).toBe('a116180f32303236303130313030303030305aa0030a0106');
  });

  test('refuses reasons OCSP cannot carry, and an empty response list', async () => {
    await expect(one({ status: 'revoked', revokedAt: thisUpdate, reason: 7 })).rejects.toThrow(RangeError);
    await expect(one({ status: 'revoked', revokedAt: thisUpdate, reason: 8 })).rejects.toThrow(RangeError);
    await expect(one({ status: 'revoked', revokedAt: thisUpdate, reason: 11 })).rejects.toThrow(RangeError);
    await expect(signedResponse(signer, thisUpdate, [], null, expectFor([]))).rejects.toThrow(RangeError);
  });

  test('several SingleResponses in request order', async () => {
    const ids = ['01', '02', '03'].map((s) => encodeCertId('sha1', Buffer.alloc(20), Buffer.alloc(20), s));
    const statuses: SingleStatus[] = [{ status: 'good' }, { status: 'unknown' }, { status: 'good' }];
    const der = await signedResponse(
      signer,
      thisUpdate,
      ids.map((certIdDer, i) => ({ certIdDer, status: statuses[i]!, thisUpdate, nextUpdate })),
      null,
      expectFor(['01', '02', '03'].map((serialHex, i) => ({ serialHex, record: recordOf(statuses[i]!) })), { issuerHashes: hashesOf(Buffer.alloc(20), Buffer.alloc(20)) }),
    );
    const singles = children(children(basicOf(der).tbs)[2]!);
    expect(singles.map((s) => whole(children(s)[0]!).toString('hex'))).toEqual(ids.map((i) => i.toString('hex')));
    expect(singles.map((s) => children(s)[1]!.tag)).toEqual([0x80, 0x82, 0x80]);
  });
});

describe('signedResponse hands the signer the ResponseData with its expectations', () => {
  test('the bytes the signer gets are the ResponseData in the response, with the expectations as given', async () => {
    const seen: { tbs: Buffer; expect: OcspExpectations }[] = [];
    const recording: ResponderSigner = { ...signer, sign: async (tbs, x) => (seen.push({ tbs, expect: x }), signer.sign(tbs, x)) };
    const x = expectFor([{ serialHex: '4a5b', record: recordOf({ status: 'good' }) }]);
    const der = await signedResponse(recording, thisUpdate, [{ certIdDer: certId, status: { status: 'good' }, thisUpdate, nextUpdate }], null, x);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.expect).toBe(x);
    expect(whole(basicOf(der).tbs).equals(seen[0]!.tbs)).toBe(true);
  });
});

// The CA lints what it is handed before it signs (src/ca); a signer doing the same shows what the lint refuses in what signedResponse builds.
describe('a linting signer (as the CA) refuses with lintFailed, the key never asked (src/lint/ocsp.ts)', () => {
  const revokedAt = at('2026-03-01T00:00:00Z');
  const valid: OcspRecord = { status: 'valid', revokedAt: null, revocationReason: null };
  const revoked: OcspRecord = { status: 'revoked', revokedAt, revocationReason: 1 };
  test.each<[string, string, SingleStatus, Partial<OcspExpectations> & { record?: OcspRecord | null; serialHex?: string }, { thisUpdate?: Date; nextUpdate?: Date; producedAt?: Date }?]>([
    ['e_ocsp_status_mismatch', 'good for a revoked certificate', { status: 'good' }, { record: revoked }],
    ['e_ocsp_status_mismatch', 'good for a certificate the store does not know', { status: 'good' }, { record: null }],
    ['e_ocsp_status_mismatch', 'good for a certificate still pending', { status: 'good' }, { record: { status: 'pending', revokedAt: null, revocationReason: null } }],
    ['e_ocsp_status_mismatch', 'revoked for a valid certificate', { status: 'revoked', revokedAt, reason: 1 }, { record: valid }],
    ['e_ocsp_status_mismatch', 'unknown for a valid certificate', { status: 'unknown' }, { record: valid }],
    ['e_ocsp_status_mismatch', 'another revocation time', { status: 'revoked', revokedAt: at('2026-03-02T00:00:00Z'), reason: 1 }, { record: revoked }],
    ['e_ocsp_status_mismatch', 'another reason', { status: 'revoked', revokedAt, reason: 6 }, { record: revoked }],
    ['e_ocsp_status_mismatch', 'no reason for keyCompromise', { status: 'revoked', revokedAt, reason: null }, { record: revoked }],
    ['e_ocsp_validity_invalid', 'thisUpdate after now', { status: 'good' }, { record: valid }, { thisUpdate: at('2026-03-04T06:00:00Z') }],
    ['e_ocsp_validity_invalid', 'nextUpdate not after now', { status: 'good' }, { record: valid, now: nextUpdate }],
    ['e_ocsp_validity_invalid', 'nextUpdate before thisUpdate', { status: 'good' }, { record: valid }, { nextUpdate: at('2026-03-04T05:06:06Z') }],
    ['e_ocsp_validity_invalid', 'a validity over the configured one', { status: 'good' }, { record: valid, maxValiditySeconds: 3600 }],
    ['e_ocsp_produced_at_invalid', 'producedAt an hour off', { status: 'good' }, { record: valid }, { producedAt: at('2026-03-04T04:06:07Z') }],
    ['e_ocsp_cert_id_invalid', "issuer hashes of another CA", { status: 'good' }, { record: valid, issuerHashes: hashesOf(Buffer.alloc(20, 1), Buffer.alloc(20, 0xbb)) }],
    ['e_ocsp_cert_id_invalid', 'a CertID hash algorithm the CA is not answered for', { status: 'good' }, { record: valid, issuerHashes: {} }],
    ['e_ocsp_cert_id_invalid', 'another serial than the one looked up', { status: 'good' }, { record: valid, serialHex: '4a5c' }],
    ['e_ocsp_responder_id_invalid', "a ResponderID that is not the responder certificate's key", { status: 'good' }, { record: valid, responderKeyHash: Buffer.alloc(20) }],
    ['e_ocsp_response_invalid', 'more SingleResponses than certificates asked', { status: 'good' }, { record: valid, singles: [] }],
  ])('%s: %s', async (id, _what, status, over, dates = {}) => {
    let signed = 0;
    const counting: ResponderSigner = {
      ...signer,
      sign: async (tbs, x) => {
        throwOnErrors(lintOcspResponseData(tbs, x), 'OCSP response lint failed');
        signed++;
        return signer.sign(tbs, x);
      },
    };
    const { record, serialHex, ...x } = over;
    const expect_ = expectFor([{ serialHex: serialHex ?? '4a5b', record: record === undefined ? null : record }], x);
    const err = await refusal(signedResponse(counting, dates.producedAt ?? thisUpdate, [{ certIdDer: certId, status, thisUpdate: dates.thisUpdate ?? thisUpdate, nextUpdate: dates.nextUpdate ?? nextUpdate }], null, expect_));
    expect(err.type).toBe('lintFailed');
    expect(err.message).toMatch(new RegExp(`^OCSP response lint failed: (.*; )?${id} \\(`));
    expect(signed).toBe(0);
  });
});

describe('readResponseSummary and sameStatus', () => {
  test.each<SingleStatus>([{ status: 'good' }, { status: 'unknown' }, { status: 'revoked', revokedAt: at('2026-02-02T02:02:02Z'), reason: 1 }, { status: 'revoked', revokedAt: at('2026-02-02T02:02:02Z'), reason: null }])('round trip: %o', async (s) => {
    const summary = readResponseSummary(await one(s));
    expect(summary.producedAt).toEqual(thisUpdate);
    expect(summary.thisUpdate).toEqual(thisUpdate);
    expect(summary.nextUpdate).toEqual(nextUpdate);
    expect(summary.certIdDer.equals(certId)).toBe(true);
    expect(sameStatus(summary.status, s)).toBe(true);
  });

  test('error responses and garbage are refused', () => {
    expect(() => readResponseSummary(errorResponse('tryLater'))).toThrow();
    expect(() => readResponseSummary(Buffer.from('junk'))).toThrow();
    expect(readTlv(errorResponse('unauthorized')).tag).toBe(Tag.SEQUENCE);
  });

  test('sameStatus compares at one-second resolution; unspecified equals no reason', () => {
    const r = (ms: number, reason: number | null): SingleStatus => ({ status: 'revoked', revokedAt: new Date(ms), reason });
    expect(sameStatus(r(1_000_500, 0), r(1_000_000, null))).toBe(true);
    expect(sameStatus(r(1_000_000, 1), r(1_000_000, 6))).toBe(false);
    expect(sameStatus(r(1_000_000, 1), r(2_000_000, 1))).toBe(false);
    expect(sameStatus({ status: 'good' }, r(1, 1))).toBe(false);
    expect(sameStatus({ status: 'good' }, { status: 'good' })).toBe(true);
  });
});
