/**
 * Hostile certificates (issue 12): openssl-made certificates, damaged by
 * src/pki/testing/mutate.ts, go through parseCertificate and, as the
 * differential oracle, pkijs. Ours may only return or throw a `malformed`
 * PkiError; when it accepts, pkijs must accept too and decode the same fields.
 *
 * The other direction is not asserted: pkijs (asn1js) reads BER and ignores
 * fields its schema does not name, so it accepts what ours refuses on
 * purpose, each as a `malformed` PkiError (the second property): non-minimal
 * or indefinite lengths, non-minimal INTEGERs and OID arcs, non-DER BOOLEANs,
 * constructed strings, a negative serial (RFC 5280 §4.1.2.2), extra fields in
 * an Extension or the TBS, versions above v3, times without seconds or "Z"
 * or out of range, and Name values that are not one of the string types.
 */
import fs from 'node:fs';
import * as asn1js from 'asn1js';
import fc from 'fast-check';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openssl, tempDir } from '../../test/helpers/openssl.js';
import { isPkiError } from '../errors/pki-error.js';
import { parseCertificate, type ParsedCertificate } from './certificate.js';
import { bitString, ctx, derNull, int, oid, seq, Tag, time, tlv, utf8, setOf } from './der.js';
import { OID } from './oids.js';
import { derFromPemOrDer } from './pem.js';
import { fuzzParams, mutatedFrom } from './testing/mutate.js';

const tmp = tempDir('trellis-cert-fuzz-');
const seeds: Buffer[] = [];
const runs = fuzzParams(0x5eed12, 600);

const subj = '/C=DE/O=Fuzz Org/OU=Unit A+OU=Unit B/CN=fuzz.example.test';
const exts = [
  'subjectAltName=DNS:fuzz.example.test,IP:192.0.2.1,IP:2001:db8::1,email:a@example.test,URI:https://example.test/x',
  'basicConstraints=critical,CA:TRUE,pathlen:2',
  'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  'extendedKeyUsage=serverAuth,clientAuth',
  'crlDistributionPoints=URI:http://crl.example.test/a.crl',
  'authorityInfoAccess=OCSP;URI:http://ocsp.example.test,caIssuers;URI:http://ca.example.test/ca.der',
  'nameConstraints=critical,permitted;DNS:example.test,permitted;IP:192.0.2.0/255.255.255.0,excluded;email:bad.example.test',
  'certificatePolicies=1.3.6.1.4.1.99999.1',
];

beforeAll(async () => {
  const makers: [string, string[], string[]][] = [
    ['p256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-days', '30']],
    ['ed25519', ['-newkey', 'ed25519'], ['-days', '12000']], // notAfter past 2049: GeneralizedTime
    ['rsa', ['-newkey', 'rsa:2048'], ['-days', '1']],
  ];
  for (const [name, key, days] of makers) {
    const out = tmp.file(`${name}.pem`);
    await openssl('req', '-x509', ...key, '-nodes', '-keyout', tmp.file(`${name}.key`), '-subj', subj, '-multivalue-rdn', ...days, ...exts.flatMap((e) => ['-addext', e]), '-out', out);
    seeds.push(derFromPemOrDer(fs.readFileSync(out), ['CERTIFICATE'], 'certificate'));
  }
}, 60_000);
afterAll(() => tmp.cleanup());

const ab = (b: Buffer): ArrayBuffer => Uint8Array.from(b).buffer;
const bytes = (v: ArrayBuffer | Uint8Array): Buffer => Buffer.from(v instanceof ArrayBuffer ? new Uint8Array(v) : v);

/** pkijs's reading of a certificate, or why it refuses it. */
function theirs(der: Buffer): pkijs.Certificate | string {
  try {
    const asn = asn1js.fromBER(ab(der));
    if (asn.offset === -1) return `asn1js: ${asn.result.error}`;
    if (asn.offset !== der.length) return 'asn1js: trailing data';
    return new pkijs.Certificate({ schema: asn.result });
  } catch (err) {
    return `pkijs: ${(err as Error).message}`; // pkijs refused it: that is the answer we compare with
  }
}

/** Ours: the parsed certificate, or the PkiError it threw; anything else escapes and fails the property. */
function ours(der: Buffer): ParsedCertificate | null {
  try {
    return parseCertificate(der);
  } catch (err) {
    if (isPkiError(err, 'malformed')) return null;
    throw err;
  }
}

/** The fields both parsers decode, in comparable form. */
function fieldsOfTheirs(c: pkijs.Certificate) {
  return {
    version: c.version,
    serialHex: bytes(c.serialNumber.valueBlock.valueHexView).toString('hex').replace(/^00(?=[0-9a-f]{2})/, ''),
    tbsDer: bytes(c.tbsView),
    issuerDer: bytes(c.issuer.toSchema().toBER()),
    subjectDer: bytes(c.subject.toSchema().toBER()),
    spkiDer: bytes(c.subjectPublicKeyInfo.toSchema().toBER()),
    notBefore: c.notBefore.value.getTime(),
    notAfter: c.notAfter.value.getTime(),
    extensions: (c.extensions ?? []).map((e) => ({ oid: e.extnID, critical: e.critical, valueDer: bytes(e.extnValue.valueBlock.valueHexView) })),
    signatureAlgorithm: c.signatureAlgorithm.algorithmId,
    signature: bytes(c.signatureValue.valueBlock.valueHexView),
  };
}

function fieldsOfOurs(c: ParsedCertificate) {
  return {
    version: c.version,
    serialHex: c.serialHex,
    tbsDer: c.tbsDer,
    issuerDer: c.issuerDer,
    subjectDer: c.subjectDer,
    spkiDer: c.spkiDer,
    notBefore: c.notBefore.getTime(),
    notAfter: c.notAfter.getTime(),
    extensions: c.extensions,
    signatureAlgorithm: c.signatureAlgorithm.oid,
    signature: c.signature,
  };
}

describe('parseCertificate under hostile input', () => {
  test('the seeds parse, and ours and pkijs agree on them', () => {
    expect(seeds).toHaveLength(3);
    for (const der of seeds) expect(fieldsOfOurs(ours(der)!)).toEqual(fieldsOfTheirs(theirs(der) as pkijs.Certificate));
  });

  test('mutated certificates: ours returns or throws a malformed PkiError, nothing else', () => {
    fc.assert(fc.property(mutatedFrom(seeds), (der) => void ours(der)), runs);
  });

  test('mutated certificates: when ours accepts, pkijs accepts and decodes the same fields', () => {
    fc.assert(
      fc.property(mutatedFrom(seeds), (der) => {
        const mine = ours(der);
        if (!mine) return;
        const other = theirs(der);
        if (typeof other === 'string') expect.fail(`ours accepts, pkijs refuses: ${other}`);
        expect(fieldsOfOurs(mine)).toEqual(fieldsOfTheirs(other));
      }),
      runs,
    );
  });

  test('random bytes and random DER-looking prefixes: ours returns or throws a malformed PkiError', () => {
    const prefixed = fc.tuple(fc.constantFrom(0x30, 0x31, 0xa0, 0x02), fc.uint8Array({ maxLength: 300 })).map(([tag, rest]) => Buffer.from([tag, ...rest]));
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), prefixed), (der) => void ours(der)), runs);
  });
});

describe('parseCertificate: counterexamples kept as regression tests', () => {
  // A hand-built certificate whose fields each test replaces: the signature does not matter to the parser.
  const name = seq(setOf(seq(oid(OID.CN), utf8('regression'))));
  const ecAlg = seq(oid(OID.ecPublicKey), oid(OID.secp256r1));
  const fields = {
    version: ctx(0, true, int(2)),
    serial: int(0x1234),
    signature: seq(oid(OID.ecdsaWithSHA256)),
    validity: seq(time(new Date('2026-01-01T00:00:00Z')), time(new Date('2027-01-01T00:00:00Z'))),
    spki: seq(ecAlg, bitString(Buffer.alloc(65, 4))),
    extra: [] as Buffer[],
  };
  const cert = (o: Partial<typeof fields> = {}) => {
    const f = { ...fields, ...o };
    const tbs = seq(f.version, f.serial, f.signature, name, f.validity, name, f.spki, ...f.extra);
    return seq(tbs, seq(oid(OID.ecdsaWithSHA256)), bitString(Buffer.alloc(8)));
  };
  const malformed = (der: Buffer) => expect(() => parseCertificate(der)).toThrow(expect.objectContaining({ name: 'PkiError', type: 'malformed' }));

  test('accepts the hand-built certificate, and pkijs agrees', () => {
    const der = cert();
    expect(fieldsOfOurs(parseCertificate(der))).toEqual(fieldsOfTheirs(theirs(der) as pkijs.Certificate));
  });

  test('rejects: SubjectPublicKeyInfo whose algorithm is not an AlgorithmIdentifier (tag 0x00 where the SEQUENCE was)', () => {
    malformed(cert({ spki: seq(tlv(0x00, oid(OID.ecPublicKey)), bitString(Buffer.alloc(65, 4))) }));
  });

  test('rejects: SubjectPublicKeyInfo with a third field', () => {
    malformed(cert({ spki: seq(ecAlg, bitString(Buffer.alloc(65, 4)), derNull) }));
  });

  test.each([
    ['an empty GeneralizedTime', tlv(Tag.GeneralizedTime, Buffer.alloc(0))],
    ['a constructed REAL', tlv(0x29, Buffer.alloc(0))],
    ['a NULL with contents', tlv(Tag.NULL, Buffer.from([0]))],
  ])('rejects: AlgorithmIdentifier parameters that are %s (pkijs refuses them too)', (_why, params) => {
    malformed(cert({ signature: seq(oid(OID.ecdsaWithSHA256), params) }));
    malformed(cert({ spki: seq(seq(oid(OID.ecPublicKey), params), bitString(Buffer.alloc(65, 4))) }));
  });

  test('rejects: Validity with one Time (was a TypeError)', () => {
    malformed(cert({ validity: seq(time(new Date('2026-01-01T00:00:00Z'))) }));
  });

  test('rejects: a field after subjectPublicKeyInfo other than [1], [2], [3] (was ignored)', () => {
    malformed(cert({ extra: [int(5)] }));
    malformed(cert({ extra: [ctx(3, true, seq()), ctx(3, true, seq())] }));
  });

  test('rejects: version above v3, and a version [0] holding two elements', () => {
    malformed(cert({ version: ctx(0, true, int(3)) }));
    malformed(cert({ version: ctx(0, true, int(2), int(2)) }));
  });

  test('rejects: notAfter on 31 April (was read as 1 May)', () => {
    malformed(cert({ validity: seq(time(new Date('2026-01-01T00:00:00Z')), tlv(Tag.UTCTime, Buffer.from('270431000000Z'))) }));
  });
});
