import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RevokedEntry } from '../ca/ports.js';
import { children, oid, readOne, readOid, readTime, readUnsigned, seq, Tag, value, type Tlv } from '../pki/der.js';
import { parseCertificate } from '../pki/certificate.js';
import { encodeName } from '../pki/name.js';
import { OID } from '../pki/oids.js';
import { toPem } from '../pki/pem.js';
import { refusal } from '../../test/helpers/errors.js';
import { buildCrl, EntryEncoder, expectationsOf, type CrlContent, type CrlSigner } from './build.js';
import { lintingSigner } from './testing/signer.js';

// A fixed Ed25519 key (RFC 8032 signatures are deterministic), so the whole
// CRL, signature included, is a known answer.
const seed = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
const katKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
const rawPublic = (k: KeyObject): Buffer => {
  const spki = createPublicKey(k).export({ type: 'spki', format: 'der' });
  return spki.subarray(spki.length - 32);
};
/** The CA's signer stand-in: lints the TBS against what the encoder expects, then signs it with `key`. */
const ed25519Signer = (key: KeyObject, subjectDer: Buffer) =>
  lintingSigner({
    subjectDer,
    keyIdentifier: createHash('sha1').update(rawPublic(key)).digest(),
    signatureAlgorithm: seq(oid(OID.ed25519)),
    sign: (tbs) => sign(null, tbs, key),
  });

const at = (iso: string) => new Date(iso);
const katContent: CrlContent = {
  crlNumber: 42n,
  thisUpdate: at('2026-01-02T03:04:05Z'),
  nextUpdate: at('2026-01-03T03:04:05Z'),
  distributionPointUrl: 'http://pki.test/crl/issuing-1/3.crl',
};
const katEntries: RevokedEntry[] = [
  { serialHex: '7f01', revokedAt: at('2026-01-01T00:00:00Z'), reason: 0, invalidityDate: null },
  { serialHex: '80aa', revokedAt: at('2026-01-01T12:30:00Z'), reason: 1, invalidityDate: at('2025-12-31T23:59:59Z') },
  { serialHex: '00000abc', revokedAt: at('2026-01-02T00:00:00Z'), reason: 6, invalidityDate: null },
];

// Produced once by this encoder, then checked field by field with `openssl crl -text`
// and the signature with node:crypto (below); any change to the bytes is a change to review.
const katHex = [
  '308201883082013a020101300506032b657030303110300e060355040a0c075472656c6c6973311c301a06035504030c1343524c204b6e6f776e2d41',
  '6e73776572204341170d3236303130323033303430355a170d3236303130333033303430355a3076301302027f01170d323630313031303030303030',
  '5a303c02030080aa170d3236303130313132333030305a3026300a0603551d1504030a010130180603551d180411180f323032353132333132333539',
  '35395a302102020abc170d3236303130323030303030305a300c300a0603551d1504030a0106a0663064301f0603551d23041830168014fd81a6db64',
  'd6faf7f702c07971a82c25c1dc3c90300a0603551d14040302012a30350603551d1c0101ff042b3029a027a0258623687474703a2f2f706b692e7465',
  '73742f63726c2f69737375696e672d312f332e63726c300506032b65700341004297a67c2d3e78ed5ef17692d4e66fbf04b75806b7d735a06ddf517f',
  '057758799149be9aff2651de6ba1a387f14da79a60a633768ef53463340b501cab49920f',
].join('');

/** The parts of a CRL the tests look at, read with the DER reader (not the writer under test). */
function parseCrl(der: Buffer) {
  const [tbsT, algT, sigT] = children(readOne(der, Tag.SEQUENCE));
  const tbs = children(tbsT!);
  let i = 0;
  const version = tbs[0]!.tag === Tag.INTEGER ? readUnsigned(tbs[i++]!)[0] : undefined;
  const alg = tbs[i++]!;
  const issuer = tbs[i++]!;
  const thisUpdate = tbs[i++]!;
  const nextUpdate = tbs[i]!.tag === Tag.UTCTime || tbs[i]!.tag === Tag.GeneralizedTime ? tbs[i++] : undefined;
  const list = tbs[i]?.tag === Tag.SEQUENCE ? tbs[i++] : undefined;
  const extsT = tbs[i]?.tag === 0xa0 ? tbs[i] : undefined;
  const exts = (t: Tlv | undefined) =>
    t ? children(t).map((e) => {
      const c = children(e);
      return { oid: readOid(c[0]!), critical: c.length === 3, valueDer: value(c[c.length - 1]!) };
    }) : [];
  return {
    version, alg, issuer, thisUpdate, nextUpdate, algT, sigT, tbsDer: tbsT!.buf.subarray(tbsT!.headerStart, tbsT!.end),
    entries: list ? children(list).map((e) => {
      const c = children(e);
      return { serial: value(c[0]!), date: c[1]!, exts: exts(c[2]) };
    }) : null,
    extensions: extsT ? exts(children(extsT)[0]) : [],
  };
}

let dir: { dir: string; file(name: string): string; cleanup(): void };
let openssl: (...args: string[]) => Promise<string>;
/** A self-signed Ed25519 CA made by OpenSSL, for `openssl crl -CAfile`. */
let caPem: string;
let caKey: KeyObject;
let caSigner: CrlSigner;

beforeAll(async () => {
  const helpers = await import('../../test/helpers/openssl.js');
  openssl = helpers.openssl;
  dir = helpers.tempDir('trellis-crl-');
  const { privateKey } = generateKeyPairSync('ed25519');
  fs.writeFileSync(dir.file('ca.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  caPem = dir.file('ca.pem');
  await openssl('req', '-x509', '-new', '-key', dir.file('ca.key'), '-subj', '/O=Trellis Test/CN=CRL Test CA', '-days', '30',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', caPem);
  caKey = privateKey;
  caSigner = ed25519Signer(privateKey, parseCertificate(Buffer.from(fs.readFileSync(caPem, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64')).subjectDer);
});
afterAll(() => dir?.cleanup());

const writeCrl = (name: string, der: Buffer) => {
  fs.writeFileSync(dir.file(name), toPem('X509 CRL', der));
  return dir.file(name);
};

describe('known answer', () => {
  const katSigner = ed25519Signer(katKey, encodeName({ O: 'Trellis', CN: 'CRL Known-Answer CA' }));

  test('fixed key, clock and entries give the same DER byte for byte', async () => {
    const { der, entries } = await buildCrl(katSigner, katContent, [katEntries]);
    expect(entries).toBe(3);
    expect(der.toString('hex')).toBe(katHex);
  });

  test.each([
    ['too small (entries overflow into pages)', 60],
    ['exact', 200],
    ['far too big', 1_000_000],
  ])('a size hint %s gives the same bytes', async (_name, sizeHint) => {
    const pages = [katEntries.slice(0, 1), katEntries.slice(1)];
    const { der } = await buildCrl(katSigner, katContent, pages, [], { sizeHint });
    expect(der.toString('hex')).toBe(katHex);
    expect(der.buffer.byteLength).toBeLessThan(4 * der.length + 8192); // no large hint kept alive behind the CRL
  });

  test('the known answer is a v2 CRL whose signature verifies with the CA key', async () => {
    const crl = parseCrl(Buffer.from(katHex, 'hex'));
    expect(crl.version).toBe(1);
    expect(verify(null, crl.tbsDer, createPublicKey(katKey), value(crl.sigT!).subarray(1))).toBe(true);
    expect(readTime(crl.thisUpdate)).toEqual(katContent.thisUpdate);
    expect(crl.nextUpdate && readTime(crl.nextUpdate)).toEqual(katContent.nextUpdate);
  });

  test('OpenSSL reads every field of the known answer', async () => {
    const text = await openssl('crl', '-in', writeCrl('kat.pem', Buffer.from(katHex, 'hex')), '-noout', '-text');
    expect(text).toMatch(/Version 2 \(0x1\)/);
    expect(text).toMatch(/Signature Algorithm: ED25519/);
    expect(text).toMatch(/Last Update: Jan {2}2 03:04:05 2026 GMT/);
    expect(text).toMatch(/Next Update: Jan {2}3 03:04:05 2026 GMT/);
    expect(text).toMatch(/X509v3 CRL Number: \n\s+42/);
    expect(text).toMatch(/X509v3 Issuing Distribution Point: critical\s+Full Name:\s+URI:http:\/\/pki.test\/crl\/issuing-1\/3.crl/);
    expect(text).toMatch(/Serial Number: 7F01\s+Revocation Date: Jan {2}1 00:00:00 2026 GMT\s+Serial Number: 80AA/);
    expect(text).toMatch(/Serial Number: 80AA[\s\S]*?Key Compromise[\s\S]*?Invalidity Date: \s*Dec 31 23:59:59 2025 GMT/);
    expect(text).toMatch(/Serial Number: 0ABC[\s\S]*?Certificate Hold/);
  });
});

const content = (over: Partial<CrlContent> = {}): CrlContent => ({ crlNumber: 7n, thisUpdate: at('2026-03-01T00:00:00Z'), nextUpdate: at('2026-03-02T00:00:00Z'), ...over });
const entry = (serialHex: string, reason = 0, invalidityDate: Date | null = null, revokedAt = at('2026-02-01T10:00:00Z')): RevokedEntry => ({ serialHex, revokedAt, reason, invalidityDate });

describe('encoding rules', () => {
  test('OpenSSL verifies the signature against the CA certificate', async () => {
    const { der } = await buildCrl(caSigner, content(), [[entry('01', 1)], [entry('02', 4)]]);
    await expect(openssl('crl', '-in', writeCrl('sig.pem', der), '-CAfile', caPem, '-noout')).resolves.toMatch(/verify OK/);
  });

  test('no revoked certificates: revokedCertificates is absent, not an empty SEQUENCE (RFC 5280 §5.1.2.6)', async () => {
    const { der, entries } = await buildCrl(caSigner, content(), []);
    expect(entries).toBe(0);
    expect(parseCrl(der).entries).toBeNull();
    expect(await openssl('crl', '-in', writeCrl('empty.pem', der), '-noout', '-text', '-CAfile', caPem)).toMatch(/No Revoked Certificates/);
  });

  test('serials: minimal INTEGER, sign octet when the high bit is set, odd lengths and leading zeros normalised', async () => {
    const { der } = await buildCrl(caSigner, content(), [[entry('80'), entry('00ff'), entry('abc'), entry('0000000001'), entry('7f'.repeat(20))]]);
    expect(parseCrl(der).entries!.map((e) => e.serial.toString('hex'))).toEqual(['0080', '00ff', '0abc', '01', '7f'.repeat(20)]);
  });

  test('unspecified (0) writes no reasonCode; others are ENUMERATED; invalidityDate is always GeneralizedTime', async () => {
    const { der } = await buildCrl(caSigner, content(), [[entry('01'), entry('02', 3, at('2020-05-06T07:08:09Z'))]]);
    const [a, b] = parseCrl(der).entries!;
    expect(a!.exts).toEqual([]);
    expect(b!.exts.map((e) => [e.oid, e.critical])).toEqual([[OID.reasonCode, false], [OID.invalidityDate, false]]);
    expect(b!.exts[0]!.valueDer.toString('hex')).toBe('0a0103');
    const inv = readOne(b!.exts[1]!.valueDer);
    expect(inv.tag).toBe(Tag.GeneralizedTime);
    expect(readTime(inv)).toEqual(at('2020-05-06T07:08:09Z'));
  });

  test('dates from 2050 are GeneralizedTime, before are UTCTime (RFC 5280 §5.1.2.4)', async () => {
    const { der } = await buildCrl(caSigner, content({ thisUpdate: at('2049-12-31T12:00:00Z'), nextUpdate: at('2050-01-01T00:00:00Z') }), [[entry('01', 0, null, at('2049-12-31T23:59:59Z')), entry('02', 0, null, at('2050-06-01T00:00:00Z'))]]);
    const crl = parseCrl(der);
    expect(crl.thisUpdate.tag).toBe(Tag.UTCTime);
    expect(crl.nextUpdate!.tag).toBe(Tag.GeneralizedTime);
    expect(crl.entries!.map((e) => e.date.tag)).toEqual([Tag.UTCTime, Tag.GeneralizedTime]);
    expect(crl.entries!.map((e) => readTime(e.date))).toEqual([at('2049-12-31T23:59:59Z'), at('2050-06-01T00:00:00Z')]);
  });

  test('a complete CRL for the whole CA: AKI, CRL number, freshestCRL, no IDP', async () => {
    const { der } = await buildCrl(caSigner, content({ crlNumber: 2n ** 70n, freshestUrl: 'http://pki.test/crl/ca/full-delta.crl' }), []);
    const exts = parseCrl(der).extensions;
    expect(exts.map((e) => [e.oid, e.critical])).toEqual([[OID.authorityKeyIdentifier, false], [OID.cRLNumber, false], [OID.freshestCRL, false]]);
    const text = await openssl('crl', '-in', writeCrl('full.pem', der), '-noout', '-text', '-CAfile', caPem);
    expect(text).toMatch(/verify OK/);
    expect(text).toMatch(/X509v3 CRL Number: \n\s+1180591620717411303424/); // 2^70
    expect(text).toMatch(/X509v3 Freshest CRL: \n\s+Full Name:\s+URI:http:\/\/pki.test\/crl\/ca\/full-delta.crl/);
  });

  test('a delta CRL: critical Delta CRL Indicator with the base number, removeFromCRL entries', async () => {
    const { der, entries } = await buildCrl(caSigner, content({ crlNumber: 12n, baseCrlNumber: 10n }), [[entry('0a', 1)]], [{ serialHex: '0b', removedAt: at('2026-03-01T00:00:00Z') }]);
    expect(entries).toBe(2);
    const text = await openssl('crl', '-in', writeCrl('delta.pem', der), '-noout', '-text', '-CAfile', caPem);
    expect(text).toMatch(/verify OK/);
    expect(text).toMatch(/X509v3 Delta CRL Indicator: critical\s+10/);
    expect(text).toMatch(/Serial Number: 0B[\s\S]*?Remove From CRL/);
  });

  test("the root's ARL: IDP with only CA certificates", async () => {
    const { der } = await buildCrl(caSigner, content({ distributionPointUrl: 'http://pki.test/crl/root/0.crl', onlyCaCerts: true }), []);
    const text = await openssl('crl', '-in', writeCrl('arl.pem', der), '-noout', '-text', '-CAfile', caPem);
    expect(text).toMatch(/Issuing Distribution Point: critical\s+Full Name:\s+URI:http:\/\/pki.test\/crl\/root\/0.crl\s+Only CA Certificates/);
  });

  test.each([
    ['rejects: reason 7 (unused in RFC 5280)', [entry('01', 7)], 'malformed'],
    ['rejects: reason above 10', [entry('01', 11)], 'malformed'],
    ['rejects: removeFromCRL as a revocation reason', [entry('01', 8)], 'malformed'],
    ['rejects: a serial that is not hexadecimal', [entry('0g')], 'malformed'],
    ['rejects: an invalid revocation date', [entry('01', 0, null, new Date(NaN))], 'malformed'],
  ])('%s', async (_name, page, type) => {
    expect((await refusal(buildCrl(caSigner, content(), [page]))).type).toBe(type);
  });

  test('rejects: removeFromCRL entries in a complete CRL; nextUpdate not after thisUpdate', async () => {
    expect((await refusal(buildCrl(caSigner, content(), [], [{ serialHex: '01', removedAt: at('2026-03-01T00:00:00Z') }]))).type).toBe('malformed');
    expect((await refusal(buildCrl(caSigner, content({ nextUpdate: at('2026-03-01T00:00:00Z') }), []))).type).toBe('invalidConfig');
  });

  test('the signer gets the TBS with what the lint expects of it: expectationsOf(signer, content, opts.expect)', async () => {
    const got: Parameters<CrlSigner['sign']>[] = [];
    const signer: CrlSigner = { ...caSigner, sign: async (tbs, expect) => (got.push([Buffer.from(tbs), expect]), caSigner.sign(tbs, expect)) };
    const c = content({ distributionPointUrl: 'http://pki.test/crl/ca/3.crl' });
    const over = { idp: { url: 'http://pki.test/crl/ca/3.crl', onlyCaCerts: false }, maxValiditySeconds: 86_400, now: at('2026-03-01T00:00:01Z') };
    const { der } = await buildCrl(signer, c, [[entry('01', 1)]], [], { expect: over });
    expect(got).toHaveLength(1);
    expect(got[0]![0]).toEqual(parseCrl(der).tbsDer);
    expect(got[0]![1]).toEqual(expectationsOf(signer, c, over));
    expect(got[0]![1]).toMatchObject({ issuerDer: caSigner.subjectDer, keyIdentifier: caSigner.keyIdentifier, crlNumber: 7n, ...over });
  });

  describe("linted by the signer before it signs (src/lint/crl.ts, the CA's job): refused with lintFailed, the key never asked", () => {
    const counting = () => {
      const signer = ed25519Signer(caKey, caSigner.subjectDer);
      return { calls: signer.signed, signer };
    };
    // A run of entries already in DER, as the incremental path copies them from the previous CRL (trusted, so not re-checked by the encoder).
    const encoded = (...entries: RevokedEntry[]) => ({ der: readEntries(entries), count: entries.length });
    test.each<[string, string, () => Parameters<typeof buildCrl>]>([
      ['e_crl_serial_duplicate', 'a serial listed twice by the store', () => [caSigner, content(), [[entry('01', 1), entry('02')], [entry('02', 4)]]]],
      ['e_crl_serial_duplicate', 'a copied run and a new entry for the same serial', () => [caSigner, content(), [encoded(entry('01'), entry('05', 1)), [entry('05', 4)]]]],
      ['e_crl_entry_invalid', 'a copied entry with removeFromCRL in a complete CRL', () => [caSigner, content(), [{ der: readEntries([], [{ serialHex: '0b', removedAt: at('2026-03-01T00:00:00Z') }]), count: 1 }]]],
      ['e_crl_entry_invalid', 'a copied entry with serial zero', () => [caSigner, content(), [encoded(entry('00'))]]],
      ['e_crl_validity_invalid', 'a validity over twelve months', () => [caSigner, content({ nextUpdate: at('2027-03-03T00:00:00Z') }), []]],
      ['e_crl_number_invalid', 'a CRL number over 20 octets', () => [caSigner, content({ crlNumber: 2n ** 160n }), []]],
      ['e_crl_delta_indicator_invalid', 'a delta whose base is not below its number', () => [caSigner, content({ crlNumber: 7n, baseCrlNumber: 7n }), []]],
      ['e_crl_issuing_distribution_point_invalid', "a shard IDP other than the scope's URL", () => [caSigner, content({ distributionPointUrl: 'http://pki.test/crl/ca/3.crl' }), [], [], { expect: { idp: { url: 'http://pki.test/crl/ca/4.crl', onlyCaCerts: false } } }]],
      ['e_crl_authority_key_identifier_invalid', "an AKI that is not the CA's key", () => [caSigner, content(), [], [], { expect: { keyIdentifier: Buffer.alloc(20, 9) } }]],
      ['e_crl_issuer_name_mismatch', "an issuer that is not the CA's subject", () => [caSigner, content(), [], [], { expect: { issuerDer: encodeName({ CN: 'Other' }) } }]],
      ['e_crl_validity_invalid', 'a thisUpdate in the future', () => [caSigner, content(), [], [], { expect: { now: at('2026-02-01T00:00:00Z') } }]],
    ])('%s: %s', async (id, _what, args) => {
      const { calls, signer } = counting();
      const [, c, pages, removed, opts] = args();
      const err = await refusal(buildCrl(signer, c, pages, removed, opts));
      expect(err.type).toBe('lintFailed');
      expect(err.message).toMatch(new RegExp(`^CRL lint failed \\(CRL number \\d+\\): (.*; )?${id} \\(`));
      expect(calls).toHaveLength(0);
    });
  });

  test('streams pages from an async iterator: 200,000 entries, every one present, in order, verified by OpenSSL', async () => {
    async function* pages() {
      for (let p = 0; p < 20; p++) {
        yield Array.from({ length: 10_000 }, (_, i) => entry((0x4000_0000 + p * 10_000 + i).toString(16) + 'deadbeefcafe0123', i % 3, i % 5 === 0 ? at('2026-01-01T00:00:00Z') : null));
      }
    }
    const { der, entries } = await buildCrl(caSigner, content(), pages());
    expect(entries).toBe(200_000);
    const list = parseCrl(der).entries!;
    expect(list.length).toBe(200_000);
    expect(list[123_456]!.serial.toString('hex')).toBe((0x4000_0000 + 123_456).toString(16) + 'deadbeefcafe0123');
    await expect(openssl('crl', '-in', writeCrl('big.pem', der), '-CAfile', caPem, '-noout')).resolves.toMatch(/verify OK/);
  });

  test('ECDSA P-384: lengths stay right with longer DER signatures', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const signer = lintingSigner({ ...caSigner, signatureAlgorithm: seq(oid(OID.ecdsaWithSHA384)), sign: (tbs) => sign('sha384', tbs, privateKey) });
    const { der } = await buildCrl(signer, content(), [[entry('01', 1)]]);
    const crl = parseCrl(der);
    expect(verify('sha384', crl.tbsDer, createPublicKey(privateKey), value(crl.sigT!).subarray(1))).toBe(true);
    expect(readOid(children(crl.algT!)[0]!)).toBe(OID.ecdsaWithSHA384);
  });
});

/** revokedCertificates contents for entries (and removeFromCRL entries), written by the entry encoder alone (nothing lints them there). */
function readEntries(entries: RevokedEntry[], removed: { serialHex: string; removedAt: Date }[] = []): Buffer {
  const encoder = new EntryEncoder();
  encoder.addRevoked(entries);
  encoder.addRemoved(removed);
  return Buffer.concat(encoder.take());
}
