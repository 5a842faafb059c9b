/**
 * Hostile CSRs (issue 12). Two sources: openssl-made CSRs damaged anywhere
 * (mostly caught by the signature), and CertificationRequestInfos damaged
 * first and then signed with the CSR's own key, so the damage reaches the
 * subject, attribute and extension parsers behind the signature check.
 * parseCsr may only return or throw `badCSR` / `badPublicKey`; when it
 * accepts, pkijs (the differential oracle) reads the same subject, key and
 * extensions.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import * as asn1js from 'asn1js';
import fc from 'fast-check';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeCsr, tempDir } from '../../test/helpers/openssl.js';
import { isPkiError } from '../errors/pki-error.js';
import { parseCsr, type ParsedCsr } from './csr.js';
import { bitString, children, ctx, oid, readOne, seq, setOf, Tag, tlv, utf8, whole, int } from './der.js';
import { OID } from './oids.js';
import { derFromPemOrDer } from './pem.js';
import { fuzzParams, mutatedFrom } from './testing/mutate.js';

const runs = fuzzParams(0xc5a, 500);
const tmp = tempDir('trellis-csr-fuzz-');
const csrs: Buffer[] = [];
let infos: Buffer[] = [];
let key: KeyObject;

beforeAll(async () => {
  const sans = 'DNS:fuzz.example.test,IP:192.0.2.1,IP:2001:db8::1,email:a@example.test,URI:https://example.test/x,otherName:1.2.3.4;UTF8:x';
  // Ed25519 signatures are deterministic, so a re-signed counterexample reproduces byte for byte.
  const { csrPem, keyPath } = await makeCsr(tmp.dir, 'ed', '/C=DE/O=Fuzz/OU=A+OU=B/CN=fuzz.example.test', { sans, keyAlg: 'ed25519' });
  key = createPrivateKey(fs.readFileSync(keyPath));
  csrs.push(derFromPemOrDer(csrPem, ['CERTIFICATE REQUEST'], 'CSR'));
  for (const [name, alg] of [['p256', 'p256'], ['p384', 'p384']] as const) {
    csrs.push(derFromPemOrDer((await makeCsr(tmp.dir, name, `/CN=${name}.example.test`, { keyAlg: alg, sans: 'DNS:a.example.test' })).csrPem, ['CERTIFICATE REQUEST'], 'CSR'));
  }
  // The info of the Ed25519 CSR, and one with more attributes and extensions, all signed by `key`.
  const info = children(readOne(csrs[0]!))[0]!;
  const [version, subject, spki] = children(info);
  const exts = seq(
    seq(oid(OID.basicConstraints), tlv(Tag.BOOLEAN, Buffer.from([0xff])), tlv(Tag.OCTET_STRING, seq(tlv(Tag.BOOLEAN, Buffer.from([0xff])), int(1)))),
    seq(oid(OID.keyUsage), tlv(Tag.OCTET_STRING, tlv(Tag.BIT_STRING, Buffer.from([7, 0x80])))),
    seq(oid(OID.subjectAltName), tlv(Tag.OCTET_STRING, seq(ctx(2, false, Buffer.from('b.example.test')), ctx(7, false, Buffer.from([10, 0, 0, 1]))))),
  );
  const attrs = ctx(0, true, seq(oid(OID.extensionRequest), setOf(exts)), seq(oid('1.2.840.113549.1.9.7'), setOf(utf8('secret'))));
  infos = [whole(info), seq(whole(version!), whole(subject!), whole(spki!), attrs)];
}, 60_000);
afterAll(() => tmp.cleanup());

/** A CSR around `info`, signed by the test key (Ed25519). */
const signed = (info: Buffer): Buffer =>
  Object.assign(seq(info, seq(oid(OID.ed25519)), bitString(sign(null, info, key))), { [fc.toStringMethod]: () => `signed(${fc.stringify(info)})` });

/** Ours: the parsed CSR, or null for a badCSR/badPublicKey PkiError; anything else escapes and fails the property. */
function ours(der: Buffer | string): ParsedCsr | null {
  try {
    return parseCsr(der);
  } catch (err) {
    if (isPkiError(err, 'badCSR') || isPkiError(err, 'badPublicKey')) return null;
    throw err;
  }
}

/** pkijs's reading: subject DER, SPKI DER and requested extensions; or why it refuses. */
function theirs(der: Buffer) {
  try {
    const asn = asn1js.fromBER(Uint8Array.from(der).buffer);
    if (asn.offset === -1 || asn.offset !== der.length) return `asn1js: ${asn.result.error || 'trailing data'}`;
    const csr = new pkijs.CertificationRequest({ schema: asn.result });
    const extReq = (csr.attributes ?? []).find((a) => a.type === OID.extensionRequest);
    const exts = extReq ? new pkijs.Extensions({ schema: extReq.values[0] }).extensions : [];
    return {
      subjectDer: Buffer.from(csr.subject.toSchema().toBER()),
      spkiDer: Buffer.from(csr.subjectPublicKeyInfo.toSchema().toBER()),
      extensions: exts.map((e) => ({ oid: e.extnID, critical: e.critical, valueDer: Buffer.from(e.extnValue.valueBlock.valueHexView) })),
    };
  } catch (err) {
    return `pkijs: ${(err as Error).message}`;
  }
}

function agreeWithPkijs(der: Buffer): void {
  const mine = ours(der);
  if (!mine) return;
  const other = theirs(der);
  if (typeof other === 'string') expect.fail(`ours accepts, ${other}`);
  const info = children(readOne(der))[0]!;
  expect({ subjectDer: whole(children(info)[1]!), spkiDer: mine.spkiDer, extensions: mine.extensions }).toEqual(other);
}

describe('parseCsr under hostile input', () => {
  test('the seeds parse, signed again too, and pkijs agrees', () => {
    expect(csrs).toHaveLength(3);
    for (const der of [...csrs, ...infos.map(signed)]) {
      expect(ours(der)).not.toBeNull();
      agreeWithPkijs(der);
    }
  });

  test('mutated CSRs: badCSR or badPublicKey or a parsed CSR pkijs agrees with, nothing else', () => {
    fc.assert(fc.property(mutatedFrom(csrs), agreeWithPkijs), runs);
  });

  test('mutated CertificationRequestInfo, signed again: badCSR or badPublicKey or a parsed CSR pkijs agrees with', () => {
    fc.assert(fc.property(mutatedFrom(infos).map(signed), agreeWithPkijs), runs);
  });

  test('PEM wrapping random bytes or text: badCSR or badPublicKey, nothing else', () => {
    const pem = fc.uint8Array({ maxLength: 200 }).map((b) => `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(b).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`);
    fc.assert(fc.property(fc.oneof(pem, fc.string({ maxLength: 200 })), (text) => void ours(text)), runs);
  });
});

describe('parseCsr: counterexamples kept as regression tests', () => {
  /** The Ed25519 info with its attributes [0] replaced, signed again. */
  const withAttributes = (...attrs: Buffer[]) => {
    const [version, subject, spki] = children(readOne(infos[0]!));
    return signed(seq(whole(version!), whole(subject!), whole(spki!), ctx(0, true, ...attrs)));
  };
  const rejects = (der: Buffer) => expect(() => parseCsr(der)).toThrow(expect.objectContaining({ name: 'PkiError', type: 'badCSR' }));
  const challengePassword = '1.2.840.113549.1.9.7';

  test('accepts an attribute it does not read (challengePassword) when it is DER', () => {
    expect(parseCsr(withAttributes(seq(oid(challengePassword), setOf(utf8('secret')))))).toMatchObject({ extensions: [] });
  });

  test.each([
    ['a UTF8String shortened to length 0, its text left as bytes', tlv(Tag.SET, Buffer.concat([Buffer.from([0x0c, 0]), Buffer.from('secret')]))],
    ['an end-of-contents tag (universal 0) as the value', tlv(Tag.SET, tlv(0x00, Buffer.from('secret')))],
    ['a BIT STRING with 0x55 unused bits', setOf(tlv(Tag.BIT_STRING, Buffer.from([0x55, 0x1d, 0x13])))],
    ['a constructed UTF8String (BER, not DER)', setOf(tlv(0x2c, utf8('secret')))],
  ])('rejects: an attribute it skips whose value is not DER: %s (was accepted unread)', (_why, values) => {
    rejects(withAttributes(seq(oid(challengePassword), values)));
  });

  test('rejects: an attribute with a third field', () => {
    rejects(withAttributes(seq(oid(challengePassword), setOf(utf8('secret')), int(1))));
  });

  test('rejects: basicConstraints with a field other than cA and pathLenConstraint (was read as cA=FALSE)', () => {
    const bc = seq(oid(OID.basicConstraints), tlv(Tag.OCTET_STRING, seq(tlv(0x04, Buffer.from([0xff])), int(1))));
    rejects(withAttributes(seq(oid(OID.extensionRequest), setOf(seq(bc)))));
  });

  test('rejects: an EC key whose AlgorithmIdentifier tag is not SEQUENCE (the fast P-256 path skipped the check)', () => {
    const p256 = children(children(readOne(csrs[1]!))[0]!)[2]!; // the P-256 CSR's SPKI
    const [alg, bits] = children(p256);
    const spki = seq(tlv(0x60, Buffer.from(whole(alg!).subarray(2))), whole(bits!));
    expect(() => parseCsr(seq(seq(int(0), seq(), spki), seq(oid(OID.ecdsaWithSHA256)), bitString(Buffer.alloc(8))))).toThrow(expect.objectContaining({ type: 'badPublicKey' }));
  });

  test('rejects: signature AlgorithmIdentifier parameters that are not NULL, an OID or a SEQUENCE', () => {
    const info = infos[0]!;
    rejects(seq(info, seq(oid(OID.ed25519), tlv(Tag.GeneralizedTime, Buffer.alloc(0))), bitString(sign(null, info, key))));
  });
});
