/**
 * Hostile OCSP requests (issue 12): requests made by `openssl ocsp` (one
 * and several CertIDs, SHA-1 and SHA-256, nonce, signed with a certificate)
 * are damaged by src/pki/testing/mutate.ts. parseOcspRequest may only return
 * or throw MalformedOcspRequest (the responder's malformedRequest); when it
 * accepts, pkijs (the differential oracle) reads the same CertIDs and nonce.
 */
import fs from 'node:fs';
import * as asn1js from 'asn1js';
import fc from 'fast-check';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openssl, tempDir } from '../../test/helpers/openssl.js';
import { bitString, ctx, derNull, int, octetString, oid, seq, setOf, Tag, tlv, uintFromBytes, utf8 } from '../pki/der.js';
import { OID } from '../pki/oids.js';
import { fuzzParams, mutatedFrom } from '../pki/testing/mutate.js';
import { encodeCertId, MalformedOcspRequest, parseOcspRequest, type OcspRequest } from './request.js';

const runs = fuzzParams(0x0c5b, 800);
const tmp = tempDir('trellis-ocsp-fuzz-');
const seeds: Buffer[] = [];

beforeAll(async () => {
  await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file('ca.key'), '-subj', '/CN=Fuzz OCSP CA', '-days', '2', '-out', tmp.file('ca.pem'));
  const reqout = async (name: string, ...args: string[]) => {
    await openssl('ocsp', '-issuer', tmp.file('ca.pem'), ...args, '-reqout', tmp.file(name));
    seeds.push(fs.readFileSync(tmp.file(name)));
  };
  await reqout('one.der', '-serial', '0x00ff00aa');
  await reqout('many.der', '-sha256', '-serial', '1', '-serial', '0x7fffffffffffffffffffffffffffffffffffffff', '-serial', '0x80');
  await reqout('signed.der', '-serial', '42', '-signer', tmp.file('ca.pem'), '-signkey', tmp.file('ca.key'), '-no_nonce');
}, 60_000);
afterAll(() => tmp.cleanup());

/** Ours: the request, or null for MalformedOcspRequest; anything else escapes and fails the property. */
function ours(der: Buffer): OcspRequest | null {
  try {
    return parseOcspRequest(der);
  } catch (err) {
    if (err instanceof MalformedOcspRequest) return null;
    throw err;
  }
}

const hex = (v: ArrayBuffer | Uint8Array) => Buffer.from(v instanceof ArrayBuffer ? new Uint8Array(v) : v).toString('hex');

/** pkijs's reading: per CertID the serial and hashes, and the nonce; or why it refuses. */
function theirs(der: Buffer) {
  try {
    const asn = asn1js.fromBER(Uint8Array.from(der).buffer);
    if (asn.offset === -1 || asn.offset !== der.length) return `asn1js: ${asn.result.error || 'trailing data'}`;
    const req = new pkijs.OCSPRequest({ schema: asn.result });
    const nonceExt = req.tbsRequest.requestExtensions?.find((e) => e.extnID === OID.ocspNonce);
    let nonce: string | null = null;
    if (nonceExt) {
      const inner = asn1js.fromBER(nonceExt.extnValue.valueBlock.valueHexView);
      if (!(inner.result instanceof asn1js.OctetString)) return 'nonce is not an OCTET STRING';
      nonce = hex(inner.result.valueBlock.valueHexView);
    }
    return {
      certIds: req.tbsRequest.requestList.map((r) => ({
        serialHex: hex(r.reqCert.serialNumber.valueBlock.valueHexView).replace(/^00(?=[0-9a-f]{2})/, ''),
        issuerNameHash: hex(r.reqCert.issuerNameHash.valueBlock.valueHexView),
        issuerKeyHash: hex(r.reqCert.issuerKeyHash.valueBlock.valueHexView),
      })),
      nonce,
    };
  } catch (err) {
    return `pkijs: ${(err as Error).message}`;
  }
}

function agreeWithPkijs(der: Buffer): void {
  const mine = ours(der);
  if (!mine) return;
  // `canonical` is decided without re-encoding (request.ts): it must say what re-encoding would.
  for (const c of mine.certIds) expect(c.canonical).toBe(c.der.equals(encodeCertId(c.hash, c.issuerNameHash, c.issuerKeyHash, c.serialHex)));
  const other = theirs(der);
  if (typeof other === 'string') expect.fail(`ours accepts, ${other}`);
  expect({
    certIds: mine.certIds.map((c) => ({ serialHex: c.serialHex, issuerNameHash: c.issuerNameHash.toString('hex'), issuerKeyHash: c.issuerKeyHash.toString('hex') })),
    nonce: mine.nonce?.toString('hex') ?? null,
  }).toEqual(other);
}

describe('parseOcspRequest under hostile input', () => {
  test('the openssl requests parse, and pkijs agrees', () => {
    expect(seeds).toHaveLength(3);
    for (const der of seeds) {
      expect(ours(der)).not.toBeNull();
      agreeWithPkijs(der);
    }
  });

  test('mutated requests: MalformedOcspRequest or a request pkijs reads the same, nothing else', () => {
    fc.assert(fc.property(mutatedFrom(seeds), agreeWithPkijs), runs);
  });

  test('CertIDs with and without NULL parameters, of either hash, any serial: canonical says what re-encoding says', () => {
    const certId = fc.record({
      sha256: fc.boolean(),
      params: fc.constantFrom('null', 'absent', 'other'),
      serial: fc.uint8Array({ minLength: 1, maxLength: 21 }),
      // As written by uintFromBytes (minimal, non-negative), or the octets as they come (maybe refused).
      minimal: fc.boolean(),
    });
    fc.assert(
      fc.property(certId, ({ sha256, params, serial, minimal }) => {
        const n = sha256 ? 32 : 20;
        const alg = seq(oid(sha256 ? '2.16.840.1.101.3.4.2.1' : '1.3.14.3.2.26'), ...(params === 'null' ? [derNull] : params === 'other' ? [int(0)] : []));
        const der = seq(seq(seq(seq(seq(alg, octetString(Buffer.alloc(n, 1)), octetString(Buffer.alloc(n, 2)), minimal ? uintFromBytes(serial) : tlv(Tag.INTEGER, Buffer.from(serial)))))));
        const r = ours(der);
        if (params !== 'other' && minimal) expect(r?.certIds[0]?.canonical).toBe(params === 'null');
        if (r) agreeWithPkijs(der);
      }),
      runs,
    );
  });

  test('random bytes behind a SEQUENCE header: MalformedOcspRequest, nothing else', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => void ours(Buffer.from([0x30, b.length < 128 ? b.length : 0x81, ...(b.length < 128 ? [] : [b.length]), ...b]))), runs);
  });
});

describe('parseOcspRequest: counterexamples kept as regression tests', () => {
  const certId = seq(seq(oid('1.3.14.3.2.26'), derNull), octetString(Buffer.alloc(20, 1)), octetString(Buffer.alloc(20, 2)), int(42));
  const request = (tbsHead: Buffer[], signature?: Buffer) => seq(seq(...tbsHead, seq(seq(certId))), ...(signature ? [ctx(0, true, signature)] : []));
  const rejects = (der: Buffer) => expect(() => parseOcspRequest(der)).toThrow(MalformedOcspRequest);
  const name = seq(setOf(seq(oid(OID.CN), utf8('requestor'))));

  test('accepts a requestorName that is a directoryName or a dNSName', () => {
    expect(parseOcspRequest(request([ctx(1, true, ctx(4, true, name))])).certIds).toHaveLength(1);
    expect(parseOcspRequest(request([ctx(1, true, ctx(2, false, Buffer.from('a.example')))])).certIds).toHaveLength(1);
  });

  test.each([
    ['a directoryName whose Name is an INTEGER', ctx(4, true, int(1))],
    ['a universal BOOLEAN, not a GeneralName', tlv(Tag.BOOLEAN, Buffer.from([0xff]))],
    ['a primitive [0] (otherName is constructed)', ctx(0, false, Buffer.from('x'))],
    ['an otherName holding a Name instead of a type-id and value', ctx(0, true, seq(setOf(seq(oid(OID.CN), utf8('x')))))],
  ])('rejects: requestorName that is %s (was accepted unread)', (_why, gn) => {
    rejects(request([ctx(1, true, gn)]));
  });

  test('rejects: a signed request whose certificate is not a certificate (was accepted unread)', () => {
    const signature = (cert: Buffer) => seq(seq(oid(OID.ecdsaWithSHA256)), bitString(Buffer.alloc(8)), ctx(0, true, seq(cert)));
    rejects(request([], signature(seq(int(1)))));
    rejects(request([], seq(seq(oid(OID.ecdsaWithSHA256), tlv(Tag.GeneralizedTime, Buffer.alloc(0))), bitString(Buffer.alloc(8)))));
    expect(parseOcspRequest(seeds[2]!).signed).toBe(true);
  });
});
