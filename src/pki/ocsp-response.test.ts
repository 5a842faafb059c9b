/** readOcspResponse against responses `openssl ocsp` signs (OpenSSL's -resp_text is the oracle), and hand-made malformed ones. */
import { createHash, verify, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openssl, tempDir } from '../../test/helpers/openssl.js';
import { isPkiError } from '../errors/pki-error.js';
import { parseCertificate } from './certificate.js';
import { bitString, ctx, generalizedTime, octetString, oid, seq, tlv, Tag } from './der.js';
import { readOcspResponse, type BasicOcspResponse } from './ocsp-response.js';
import { OID } from './oids.js';
import { pemBlocks } from './pem.js';

const tmp = tempDir('trellis-ocsp-response-');
const f = tmp.file;
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
const derOf = (file: string): Buffer => pemBlocks(fs.readFileSync(file, 'utf8'))[0]!.der;

beforeAll(async () => {
  await openssl('req', '-x509', ...ec, '-keyout', f('root.key'), '-subj', '/CN=OCSP Reader Root', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-out', f('root.pem'));
  for (const [name, subj, ext, serial] of [
    ['leaf', '/CN=leaf', 'basicConstraints=critical,CA:FALSE\n', '0x8a01'],
    ['resp', '/CN=Reader Responder', 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=OCSPSigning\n', '0x0b06'],
  ] as const) {
    fs.writeFileSync(f(`${name}.ext`), ext);
    await openssl('req', '-new', ...ec, '-keyout', f(`${name}.key`), '-subj', subj, '-out', f(`${name}.csr`));
    await openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('root.pem'), '-CAkey', f('root.key'), '-set_serial', serial, '-days', '30', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`));
  }
});
afterAll(() => tmp.cleanup());

/** `openssl ocsp` answers for the leaf from an index line (empty: the serial is not known); returns the response and OpenSSL's reading of it. */
async function answer(indexLine: string, extra: string[] = []): Promise<{ der: Buffer; text: string; reqDer: Buffer }> {
  fs.writeFileSync(f('index.txt'), indexLine);
  await openssl('ocsp', '-issuer', f('root.pem'), '-cert', f('leaf.pem'), '-reqout', f('req.der'), ...extra.filter((a) => a === '-no_nonce'));
  await openssl('ocsp', '-index', f('index.txt'), '-CA', f('root.pem'), '-rsigner', f('resp.pem'), '-rkey', f('resp.key'), '-reqin', f('req.der'), '-respout', f('resp.der'), '-ndays', '1', ...extra.filter((a) => a !== '-no_nonce'));
  const text = await openssl('ocsp', '-respin', f('resp.der'), '-resp_text', '-noverify');
  return { der: fs.readFileSync(f('resp.der')), text, reqDer: fs.readFileSync(f('req.der')) };
}

/** A time as `openssl ocsp -resp_text` prints it ("Dec  6 07:35:00 2026 GMT"). */
function printed(text: string, label: string): Date {
  const m = text.match(new RegExp(`${label}: (\\w{3}) +(\\d+) (\\d\\d):(\\d\\d):(\\d\\d) (\\d{4}) GMT`));
  if (!m) throw new Error(`no ${label} in ${text}`);
  const month = 'JanFebMarAprMayJunJulAugSepOctNovDec'.indexOf(m[1]!) / 3;
  return new Date(Date.UTC(Number(m[6]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])));
}

function basicOf(der: Buffer): BasicOcspResponse {
  const r = readOcspResponse(der);
  expect(r.responseStatus).toBe(0);
  return r.basic!;
}

describe('responses signed by openssl ocsp', () => {
  test('good: responder byName, producedAt, the one SingleResponse, certs, and the exact bytes signed', async () => {
    const { der, text, reqDer } = await answer(`V\t491231235959Z\t\t8A01\tunknown\t/CN=leaf\n`);
    expect(text).toMatch(/Cert Status: good/);
    const basic = basicOf(der);
    const respDer = derOf(f('resp.pem'));
    expect(basic.responderId).toEqual({ type: 'byName', nameDer: parseCertificate(respDer).subjectDer });
    expect(basic.producedAt).toEqual(printed(text, 'Produced At'));
    expect(basic.responses).toHaveLength(1);
    const [single] = basic.responses;
    expect(single!.status).toEqual({ status: 'good' });
    expect(single!.thisUpdate).toEqual(printed(text, 'This Update'));
    expect(single!.nextUpdate).toEqual(printed(text, 'Next Update'));
    expect(single!.certId.tag).toBe(Tag.SEQUENCE);
    expect(reqDer.includes(single!.certIdDer)).toBe(true); // the CertID of the request, echoed
    expect(basic.certsDer).toEqual([respDer]);
    expect(basic.signatureAlgorithm).toBe(OID.ecdsaWithSHA256);
    const key = new X509Certificate(fs.readFileSync(f('resp.pem'))).publicKey;
    expect(verify('sha256', basic.tbsDer, { key, dsaEncoding: 'der' }, basic.signature)).toBe(true);
  });

  test('revoked with keyCompromise: revocationTime and reason', async () => {
    const { der, text } = await answer(`R\t491231235959Z\t240101000000Z,keyCompromise\t8A01\tunknown\t/CN=leaf\n`);
    expect(text).toMatch(/Reason: keyCompromise/);
    expect(basicOf(der).responses[0]!.status).toEqual({ status: 'revoked', revokedAt: printed(text, 'Revocation Time'), reason: 1 });
  });

  test('revoked without a reason: reason null', async () => {
    const { der, text } = await answer(`R\t491231235959Z\t240101000000Z\t8A01\tunknown\t/CN=leaf\n`);
    expect(text).not.toMatch(/Reason:/);
    expect(basicOf(der).responses[0]!.status).toEqual({ status: 'revoked', revokedAt: new Date('2024-01-01T00:00:00Z'), reason: null });
  });

  test('unknown, with the ResponderID byKey and no nonce', async () => {
    const { der, text } = await answer('', ['-resp_key_id', '-no_nonce']);
    expect(text).toMatch(/Cert Status: unknown/);
    expect(text).toMatch(/Responder Id: [0-9A-F]{40}/);
    const basic = basicOf(der);
    const spki = parseCertificate(derOf(f('resp.pem'))).subjectPublicKey;
    expect(basic.responderId).toEqual({ type: 'byKey', keyHash: createHash('sha1').update(spki).digest() });
    expect(basic.responses[0]!.status).toEqual({ status: 'unknown' });
  });
});

describe('error statuses and malformed responses', () => {
  test('an error status has no BasicOCSPResponse', () => {
    expect(readOcspResponse(Buffer.from('30030a0103', 'hex'))).toEqual({ responseStatus: 3, basic: null });
  });

  const at = generalizedTime(new Date('2026-03-04T05:06:07Z'));
  const certId = seq(seq(oid('1.3.14.3.2.26')), octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20)), tlv(Tag.INTEGER, Buffer.from([1])));
  const byKey = ctx(2, true, octetString(Buffer.alloc(20)));
  const basicWith = (responderId: Buffer, status: Buffer): Buffer => seq(seq(responderId, at, seq(seq(certId, status, at))), seq(oid(OID.ecdsaWithSHA256)), bitString(Buffer.alloc(8)));
  const wrap = (basic: Buffer, type: string = OID.ocspBasic): Buffer => seq(tlv(Tag.ENUMERATED, Buffer.from([0])), ctx(0, true, seq(oid(type), octetString(basic))));
  const withStatus = (status: Buffer): Buffer => wrap(basicWith(byKey, status));
  const revokedAt = ctx(1, true, at);

  test('the hand-made frame reads back', () => {
    expect(basicOf(withStatus(ctx(1, true, at, ctx(0, true, tlv(Tag.ENUMERATED, Buffer.from([4])))))).responses[0]!.status).toEqual({ status: 'revoked', revokedAt: new Date('2026-03-04T05:06:07Z'), reason: 4 });
  });

  test.each<[string, Buffer, RegExp]>([
    ['an unknown CertStatus tag', withStatus(ctx(3, false)), /unknown CertStatus tag 0x83/],
    ['revoked without revocationTime', withStatus(ctx(1, true)), /revocationTime/],
    ['a UTCTime revocationTime', withStatus(ctx(1, true, tlv(Tag.UTCTime, Buffer.from('260304050607Z')))), /revocationTime/],
    ['a CRLReason of two octets', withStatus(ctx(1, true, at, ctx(0, true, tlv(Tag.ENUMERATED, Buffer.from([0, 1]))))), /CRLReason is one octet/],
    ['a CRLReason not under [0] EXPLICIT', withStatus(ctx(1, true, at, tlv(Tag.ENUMERATED, Buffer.from([1])))), /revocationReason/],
    ['a ResponderID that is neither byName nor byKey', wrap(basicWith(ctx(3, true, octetString(Buffer.alloc(20))), revokedAt)), /ResponderID/],
    ['successful without responseBytes', Buffer.from('30030a0100', 'hex'), /without responseBytes/],
    ['a responseStatus of two octets', Buffer.from('30040a020000', 'hex'), /responseStatus is one octet/],
    ['another responseType', wrap(basicWith(byKey, revokedAt), '1.2.3'), /not a BasicOCSPResponse/],
    ['a BasicOCSPResponse without its signature', wrap(seq(seq(byKey, at, seq()))), /too few fields/],
    ['trailing bytes', Buffer.concat([withStatus(ctx(0, false)), Buffer.from([0])]), /trailing data/],
    ['garbage', Buffer.from('not ocsp'), /malformed DER/],
  ])('refused: %s', (_what, der, message) => {
    let err: unknown;
    try {
      readOcspResponse(der);
    } catch (e) {
      err = e;
    }
    expect(isPkiError(err) && err.type).toBe('malformed');
    expect((err as Error).message).toMatch(message);
  });
});
