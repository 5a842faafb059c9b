import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bitString, ctx, derNull, int, octetString, oid, seq, tlv, Tag, uintFromBytes } from '../pki/der.js';
import { extension } from '../pki/extensions.js';
import { parseCertificate } from '../pki/certificate.js';
import { pemBlocks } from '../pki/pem.js';
import { OID } from '../pki/oids.js';
import { openssl, tempDir } from '../../test/helpers/openssl.js';
import { encodeCertId, hashOids, issuerHashes, MalformedOcspRequest, maxCertIds, parseOcspRequest } from './request.js';

const sha1Id = (serialHex = '0102') => encodeCertId('sha1', Buffer.alloc(20, 1), Buffer.alloc(20, 2), serialHex);
const nonceExt = (n: Buffer) => extension(OID.ocspNonce, false, octetString(n));

/** OCSPRequest from parts, with the DER writer (the parser under test reads it back). */
function request(o: { certIds?: Buffer[]; exts?: Buffer[]; version?: Buffer; requestor?: Buffer; signature?: Buffer; tail?: Buffer[] } = {}): Buffer {
  const tbs = [
    ...(o.version ? [ctx(0, true, o.version)] : []),
    ...(o.requestor ? [ctx(1, true, o.requestor)] : []),
    seq(...(o.certIds ?? [sha1Id()]).map((c) => seq(c))),
    ...(o.exts ? [ctx(2, true, seq(...o.exts))] : []),
    ...(o.tail ?? []),
  ];
  return seq(seq(...tbs), ...(o.signature ? [ctx(0, true, o.signature)] : []));
}

const rejects = (der: Buffer, detail?: RegExp) => {
  let err: unknown;
  try {
    parseOcspRequest(der);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(MalformedOcspRequest);
  if (detail) expect((err as Error).message).toMatch(detail);
};

describe('parseOcspRequest: requests made by openssl ocsp', () => {
  const tmp = tempDir('trellis-ocsp-req-');
  let caPem: string;
  let leafPem: string;
  beforeAll(async () => {
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file('ca.key'), '-subj', '/CN=Request Test CA', '-days', '2', '-out', tmp.file('ca.pem'));
    await openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file('leaf.key'), '-subj', '/CN=leaf', '-out', tmp.file('leaf.csr'));
    await openssl('x509', '-req', '-in', tmp.file('leaf.csr'), '-CA', tmp.file('ca.pem'), '-CAkey', tmp.file('ca.key'), '-set_serial', '0x00ff00aa', '-days', '1', '-out', tmp.file('leaf.pem'));
    caPem = tmp.file('ca.pem');
    leafPem = tmp.file('leaf.pem');
  });
  afterAll(() => tmp.cleanup());

  const reqout = async (...args: string[]) => {
    const out = tmp.file(`req-${Math.random().toString(36).slice(2)}.der`);
    await openssl('ocsp', '-issuer', caPem, ...args, '-reqout', out);
    return fs.readFileSync(out);
  };

  test('a default request: SHA-1 CertID matching the issuer, the serial, a 16-octet nonce', async () => {
    const ca = parseCertificate(pemBlocks(fs.readFileSync(caPem, 'utf8'))[0]!.der);
    const r = parseOcspRequest(await reqout('-cert', leafPem));
    expect(r.certIds).toHaveLength(1);
    const c = r.certIds[0]!;
    const h = issuerHashes('sha1', ca.subjectDer, ca.subjectPublicKey);
    expect(c.hash).toBe('sha1');
    expect(c.issuerNameHash.equals(h.issuerNameHash)).toBe(true);
    expect(c.issuerKeyHash.equals(h.issuerKeyHash)).toBe(true);
    expect(c.serialHex).toBe('ff00aa');
    expect(c.canonical).toBe(true);
    expect(r.nonce?.length).toBeGreaterThanOrEqual(1);
    expect(r.signed).toBe(false);
  });

  test('-no_nonce, several certificates, SHA-256 CertIDs', async () => {
    const r = parseOcspRequest(await reqout('-no_nonce', '-sha256', '-cert', leafPem, '-serial', '0x7f', '-serial', '0x80'));
    expect(r.nonce).toBeNull();
    expect(r.certIds.map((c) => [c.hash, c.serialHex, c.canonical])).toEqual([
      ['sha256', 'ff00aa', true],
      ['sha256', '7f', true],
      ['sha256', '80', true],
    ]);
  });
});

describe('parseOcspRequest: accepted forms', () => {
  test('nonce of 1 and of 32 octets (RFC 8954 §2.1)', () => {
    expect(parseOcspRequest(request({ exts: [nonceExt(Buffer.alloc(1, 7))] })).nonce).toEqual(Buffer.alloc(1, 7));
    expect(parseOcspRequest(request({ exts: [nonceExt(Buffer.alloc(32, 7))] })).nonce?.length).toBe(32);
  });

  test('an explicit v1 version, a requestorName, unknown non-critical extensions', () => {
    const r = parseOcspRequest(request({ version: int(0), requestor: ctx(2, false, Buffer.from('client')), exts: [extension('1.2.3.4', false, derNull), nonceExt(Buffer.from('abc'))] }));
    expect(r.nonce?.toString()).toBe('abc');
  });

  test(`${maxCertIds} CertIDs in one request`, () => {
    expect(parseOcspRequest(request({ certIds: Array.from({ length: maxCertIds }, (_, i) => sha1Id((i + 1).toString(16).padStart(2, '0'))) })).certIds).toHaveLength(maxCertIds);
  });

  test('a signed request is accepted and its signature ignored', () => {
    const r = parseOcspRequest(request({ signature: seq(seq(oid('1.2.840.10045.4.3.2')), bitString(Buffer.from([1, 2, 3]))) }));
    expect(r.signed).toBe(true);
  });

  test('serials: zero, a sign octet, 20 octets', () => {
    const serialOf = (intDer: Buffer) => parseOcspRequest(request({ certIds: [seq(seq(oid(hashOids.sha1), derNull), octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20)), intDer)] })).certIds[0]!.serialHex;
    expect(serialOf(int(0))).toBe('00');
    expect(serialOf(uintFromBytes(Buffer.from('80', 'hex')))).toBe('80');
    expect(serialOf(uintFromBytes(Buffer.alloc(20, 0x7f)))).toBe('7f'.repeat(20));
  });

  test('hashAlgorithm without NULL parameters parses, but is not the canonical encoding', () => {
    const c = seq(seq(oid(hashOids.sha1)), octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20)), int(5));
    const id = parseOcspRequest(request({ certIds: [c] })).certIds[0]!;
    expect(id.canonical).toBe(false);
    expect(id.der.equals(c)).toBe(true);
  });
});

describe('parseOcspRequest: malformed requests', () => {
  const good = request({ exts: [nonceExt(Buffer.alloc(16, 9))] });

  test.each([
    ['empty body', Buffer.alloc(0)],
    ['not DER', Buffer.from('not der at all')],
    ['a bare INTEGER', int(5)],
    ['trailing bytes', Buffer.concat([good, Buffer.from([0])])],
    ['indefinite length (BER)', Buffer.from([0x30, 0x80, 0x00, 0x00])],
    ['TBSRequest missing', seq()],
    ['empty requestList', request({ certIds: [] })],
    ['requestList as a SET', seq(seq(tlv(Tag.SET, seq(sha1Id()))))],
    [`${maxCertIds + 1} CertIDs`, request({ certIds: Array.from({ length: maxCertIds + 1 }, () => sha1Id()) })],
    ['serial as an OCTET STRING', request({ certIds: [seq(seq(oid(hashOids.sha1), derNull), octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20)), octetString(Buffer.from([1])))] })],
    ['negative serial', request({ certIds: [seq(seq(oid(hashOids.sha1), derNull), octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20)), tlv(Tag.INTEGER, Buffer.from([0xff])))] })],
    ['non-minimal serial', request({ certIds: [seq(seq(oid(hashOids.sha1), derNull), octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20)), tlv(Tag.INTEGER, Buffer.from([0, 1])))] })],
    ['SHA-384 CertID', request({ certIds: [seq(seq(oid('2.16.840.1.101.3.4.2.2'), derNull), octetString(Buffer.alloc(48)), octetString(Buffer.alloc(48)), int(1))] })],
    ['SHA-1 hashes of 32 octets', request({ certIds: [seq(seq(oid(hashOids.sha1), derNull), octetString(Buffer.alloc(32)), octetString(Buffer.alloc(32)), int(1))] })],
    ['hashAlgorithm parameters not NULL', request({ certIds: [seq(seq(oid(hashOids.sha1), int(0)), octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20)), int(1))] })],
    ['CertID with an extra field', request({ certIds: [seq(seq(oid(hashOids.sha1), derNull), octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20)), int(1), int(2))] })],
    ['version v2', request({ version: int(1) })],
    ['a field after requestExtensions', request({ exts: [nonceExt(Buffer.from('x'))], tail: [int(1)] })],
    ['optionalSignature that is not a Signature', request({ signature: int(1) })],
  ])('rejects: %s', (_, der) => rejects(der));

  test('rejects: nonce of 0 or 33 octets (RFC 8954)', () => {
    rejects(request({ exts: [nonceExt(Buffer.alloc(0))] }), /nonce/);
    rejects(request({ exts: [nonceExt(Buffer.alloc(33, 1))] }), /nonce/);
  });

  test('rejects: a nonce not wrapped in an OCTET STRING, twice the nonce, an unknown critical extension', () => {
    rejects(request({ exts: [extension(OID.ocspNonce, false, Buffer.from('raw-bytes'))] }));
    rejects(request({ exts: [nonceExt(Buffer.from('a')), nonceExt(Buffer.from('b'))] }), /twice/);
    rejects(request({ exts: [extension('1.2.3.4', true, derNull)] }), /critical/);
  });

  test('rejects: every truncation of a valid request', () => {
    for (let n = 0; n < good.length; n++) rejects(good.subarray(0, n));
  });

  test('random bytes and single-byte corruptions never escape as another error', () => {
    // Deterministic xorshift so a failure reproduces.
    let s = 0x9e3779b9;
    const rnd = () => ((s ^= s << 13), (s ^= s >>> 17), (s ^= s << 5), (s >>> 0) / 2 ** 32);
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.from(Array.from({ length: Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256)));
      if (rnd() < 0.5 && b.length > 1) b[0] = 0x30;
      try {
        parseOcspRequest(b);
      } catch (e) {
        expect(e).toBeInstanceOf(MalformedOcspRequest);
      }
    }
    for (let i = 0; i < good.length; i++) {
      for (const x of [0x01, 0x80, 0xff]) {
        const b = Buffer.from(good);
        b[i] ^= x;
        try {
          parseOcspRequest(b);
        } catch (e) {
          expect(e).toBeInstanceOf(MalformedOcspRequest);
        }
      }
    }
  });
});
