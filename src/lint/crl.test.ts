import { describe, expect, test } from 'vitest';
import { bool, ctx, generalizedTime, int, octetString, oid, seq, seqOf, tlv, Tag, time } from '../pki/der.js';
import { authorityKeyIdentifierExtension, distributionPointName, extension } from '../pki/extensions.js';
import { encodeName } from '../pki/name.js';
import { OID } from '../pki/oids.js';
import { lintCrl, type CrlExpectations } from './crl.js';

// A TBSCertList assembled field by field with the generic DER writer, so each
// test can corrupt exactly one field of an otherwise correct CRL.
const alg = seq(oid(OID.ecdsaWithSHA256));
const issuerDer = encodeName({ O: 'Trellis', CN: 'Lint CA' });
const keyId = Buffer.alloc(20, 0x5a);
const at = (iso: string) => new Date(iso);
const url = 'http://pki.test/crl/issuing-1/3.crl';

const serial = (hex: string) => tlv(Tag.INTEGER, Buffer.from(hex, 'hex'));
const reason = (code: number, critical = false) => extension(OID.reasonCode, critical, tlv(Tag.ENUMERATED, Buffer.from([code])));
const invalidity = (d: Buffer) => extension(OID.invalidityDate, false, d);
const entry = (hex: string, exts: Buffer[] = [], date = time(at('2026-02-01T00:00:00Z'))) => seq(serial(hex), date, ...(exts.length ? [seq(...exts)] : []));
const idp = (value: Buffer, critical = true) => extension(OID.issuingDistributionPoint, critical, value);
const idpFor = (u: string) => idp(seq(distributionPointName(u)));
const number = (n: bigint | Buffer, critical = false) => extension(OID.cRLNumber, critical, Buffer.isBuffer(n) ? n : int(n));
const deltaIndicator = (n: bigint, critical = true) => extension(OID.deltaCRLIndicator, critical, int(n));

interface Parts {
  version: Buffer | null;
  alg: Buffer;
  issuer: Buffer;
  thisUpdate: Buffer;
  nextUpdate: Buffer | null;
  entries: Buffer[] | null;
  exts: Buffer[];
}
const good: Parts = {
  version: int(1),
  alg,
  issuer: issuerDer,
  thisUpdate: time(at('2026-03-01T00:00:00Z')),
  nextUpdate: time(at('2026-03-02T00:00:00Z')),
  entries: [entry('01', [reason(1)]), entry('02'), entry('00ff', [reason(6), invalidity(generalizedTime(at('2026-01-01T00:00:00Z')))])],
  exts: [authorityKeyIdentifierExtension(keyId), number(7n), idpFor(url)],
};
const tbs = (over: Partial<Parts> = {}): Buffer => {
  const p = { ...good, ...over };
  return seq(...[p.version, p.alg, p.issuer, p.thisUpdate, p.nextUpdate, p.entries ? seqOf(p.entries) : null, p.exts.length ? ctx(0, true, seq(...p.exts)) : null].filter((b): b is Buffer => b !== null));
};
const expectations: CrlExpectations = { issuerDer, signatureAlgorithm: alg, keyIdentifier: keyId, crlNumber: 7n, idp: { url, onlyCaCerts: false }, maxValiditySeconds: 7 * 86_400 };
const ids = (t: Buffer, x: Partial<CrlExpectations> = {}) => lintCrl(t, { ...expectations, ...x }).map((f) => f.id);
const delta: Partial<CrlExpectations> = { baseCrlNumber: 5n, idp: null };
const deltaExts = [authorityKeyIdentifierExtension(keyId), number(7n), deltaIndicator(5n)];

describe('CRL lint', () => {
  test('a well-formed shard CRL, a delta and a complete CRL pass', () => {
    expect(lintCrl(tbs(), expectations)).toEqual([]);
    expect(ids(tbs({ exts: deltaExts, entries: [entry('01', [reason(8)])] }), delta)).toEqual([]);
    expect(ids(tbs({ exts: [authorityKeyIdentifierExtension(keyId), number(7n)], entries: null }), { idp: null })).toEqual([]);
  });

  test.each<[string, string, Partial<Parts>, Partial<CrlExpectations>?]>([
    // version, signature, issuer
    ['e_crl_version_not_v2', 'no version', { version: null }],
    ['e_crl_version_not_v2', 'v1', { version: int(0) }],
    ['e_crl_signature_algorithm_mismatch', "another algorithm than the CA's", { alg: seq(oid(OID.ecdsaWithSHA384)) }],
    ['e_crl_issuer_name_mismatch', "an issuer other than the CA's subject", { issuer: encodeName({ CN: 'Other CA' }) }],
    // dates
    ['e_crl_validity_invalid', 'nextUpdate before thisUpdate', { nextUpdate: time(at('2026-02-28T00:00:00Z')) }],
    ['e_crl_validity_invalid', 'nextUpdate equal to thisUpdate', { nextUpdate: time(at('2026-03-01T00:00:00Z')) }],
    ['e_crl_validity_invalid', 'no nextUpdate', { nextUpdate: null }],
    ['e_crl_validity_invalid', 'a validity beyond the bound', { nextUpdate: time(at('2026-03-09T00:00:00Z')) }],
    ['e_crl_validity_invalid', 'GeneralizedTime before 2050', { thisUpdate: generalizedTime(at('2026-03-01T00:00:00Z')) }],
    ['e_crl_validity_invalid', 'thisUpdate in the future', {}, { now: at('2026-02-27T00:00:00Z') }],
    ['e_crl_validity_invalid', 'nextUpdate already passed', {}, { now: at('2026-03-03T00:00:00Z') }],
    // entries
    ['e_crl_entry_invalid', 'revokedCertificates present but empty', { entries: [] }],
    ['e_crl_entry_invalid', 'a negative serial', { entries: [entry('80')] }],
    ['e_crl_entry_invalid', 'serial zero', { entries: [entry('00')] }],
    ['e_crl_entry_invalid', 'a serial of 21 octets', { entries: [entry('7f'.repeat(21))] }],
    ['e_crl_entry_invalid', 'a serial not minimally encoded', { entries: [entry('0001')] }],
    ['e_crl_entry_invalid', 'reason unspecified written out', { entries: [entry('01', [reason(0)])] }],
    ['e_crl_entry_invalid', 'reason 7 (unused)', { entries: [entry('01', [reason(7)])] }],
    ['e_crl_entry_invalid', 'reason 11 (undefined)', { entries: [entry('01', [reason(11)])] }],
    ['e_crl_entry_invalid', 'removeFromCRL in a complete CRL', { entries: [entry('01', [reason(8)])] }],
    ['e_crl_entry_invalid', 'a critical reasonCode', { entries: [entry('01', [reason(1, true)])] }],
    ['e_crl_entry_invalid', 'reasonCode twice', { entries: [entry('01', [reason(1), reason(1)])] }],
    ['e_crl_entry_invalid', 'an entry extension other than reason and invalidity date', { entries: [entry('01', [extension(OID.certificatePolicies, false, seq())])] }],
    ['e_crl_entry_invalid', 'invalidityDate as UTCTime', { entries: [entry('01', [invalidity(time(at('2026-01-01T00:00:00Z')))])] }],
    ['e_crl_entry_invalid', 'a revocationDate as GeneralizedTime before 2050', { entries: [entry('01', [], generalizedTime(at('2026-01-01T00:00:00Z')))] }],
    ['e_crl_entry_invalid', 'an entry that is not a SEQUENCE', { entries: [serial('01')] }],
    ['e_crl_serial_duplicate', 'the same serial twice in order', { entries: [entry('01'), entry('02'), entry('02'), entry('03')] }],
    ['e_crl_serial_duplicate', 'the same serial twice out of order', { entries: [entry('05'), entry('01'), entry('05', [reason(1)])] }],
    // extensions
    ['e_crl_authority_key_identifier_invalid', 'no AKI', { exts: [number(7n), idpFor(url)] }],
    ['e_crl_authority_key_identifier_invalid', 'a critical AKI', { exts: [extension(OID.authorityKeyIdentifier, true, seq(ctx(0, false, keyId))), number(7n), idpFor(url)] }],
    ['e_crl_authority_key_identifier_invalid', "an AKI of another key", { exts: [authorityKeyIdentifierExtension(Buffer.alloc(20, 1)), number(7n), idpFor(url)] }],
    ['e_crl_number_invalid', 'no CRL number', { exts: [authorityKeyIdentifierExtension(keyId), idpFor(url)] }],
    ['e_crl_number_invalid', 'a critical CRL number', { exts: [authorityKeyIdentifierExtension(keyId), number(7n, true), idpFor(url)] }],
    ['e_crl_number_invalid', 'another number than the one drawn', { exts: [authorityKeyIdentifierExtension(keyId), number(8n), idpFor(url)] }],
    ['e_crl_number_invalid', 'a number of 21 octets', { exts: [authorityKeyIdentifierExtension(keyId), number(tlv(Tag.INTEGER, Buffer.alloc(21, 0x11))), idpFor(url)] }],
    ['e_crl_number_invalid', 'a negative number', { exts: [authorityKeyIdentifierExtension(keyId), number(tlv(Tag.INTEGER, Buffer.from([0xff]))), idpFor(url)] }],
    ['e_crl_issuing_distribution_point_invalid', 'no IDP on a shard', { exts: [authorityKeyIdentifierExtension(keyId), number(7n)] }],
    ['e_crl_issuing_distribution_point_invalid', 'a non-critical IDP', { exts: [authorityKeyIdentifierExtension(keyId), number(7n), idp(seq(distributionPointName(url)), false)] }],
    ['e_crl_issuing_distribution_point_invalid', "another shard's URL", { exts: [authorityKeyIdentifierExtension(keyId), number(7n), idpFor('http://pki.test/crl/issuing-1/4.crl')] }],
    ['e_crl_issuing_distribution_point_invalid', 'an empty IDP', { exts: [authorityKeyIdentifierExtension(keyId), number(7n), idp(seq())] }],
    ['e_crl_issuing_distribution_point_invalid', 'onlyContainsUserCerts', { exts: [authorityKeyIdentifierExtension(keyId), number(7n), idp(seq(distributionPointName(url), ctx(1, false, Buffer.from([0xff]))))] }],
    ['e_crl_issuing_distribution_point_invalid', 'onlyContainsCACerts in a CRL of leaves', { exts: [authorityKeyIdentifierExtension(keyId), number(7n), idp(seq(distributionPointName(url), ctx(2, false, Buffer.from([0xff]))))] }],
    ['e_crl_issuing_distribution_point_invalid', 'an IDP on the full CRL', {}, { idp: null }],
    ['e_crl_issuing_distribution_point_invalid', 'no onlyContainsCACerts on the ARL', {}, { idp: { url, onlyCaCerts: true } }],
    ['e_crl_delta_indicator_invalid', 'a deltaCRLIndicator in a complete CRL', { exts: [...good.exts, deltaIndicator(5n)] }],
    ['e_crl_delta_indicator_invalid', 'a delta without deltaCRLIndicator', { exts: [authorityKeyIdentifierExtension(keyId), number(7n)] }, delta],
    ['e_crl_delta_indicator_invalid', 'a non-critical deltaCRLIndicator', { exts: [authorityKeyIdentifierExtension(keyId), number(7n), deltaIndicator(5n, false)] }, delta],
    ['e_crl_delta_indicator_invalid', 'another base', { exts: [authorityKeyIdentifierExtension(keyId), number(7n), deltaIndicator(6n)] }, delta],
    ['e_crl_delta_indicator_invalid', 'a base not below the number', { exts: [authorityKeyIdentifierExtension(keyId), number(7n), deltaIndicator(7n)] }, { ...delta, baseCrlNumber: 7n }],
    ['e_crl_extension_invalid', 'freshestCRL in a delta', { exts: [...deltaExts, extension(OID.freshestCRL, false, seq(seq(distributionPointName(url))))] }, delta],
    ['e_crl_extension_invalid', 'freshestCRL missing on a full CRL that has a delta', { exts: [authorityKeyIdentifierExtension(keyId), number(7n)] }, { idp: null, freshestUrl: 'http://pki.test/crl/issuing-1/full-delta.crl' }],
    ['e_crl_extension_invalid', 'an unknown extension', { exts: [...good.exts, extension(OID.certificatePolicies, false, seq())] }],
    ['e_crl_extension_invalid', 'an extension twice', { exts: [...good.exts, number(7n)] }],
  ])('%s rejects: %s', (id, what, parts, x) => {
    expect(ids(tbs(parts), x), what).toContain(id);
  });

  test('e_crl_extension_invalid rejects: a field after the extensions', () => {
    expect(ids(seq(...splitTbs(tbs()), int(9)))).toContain('e_crl_extension_invalid');
  });

  test('a malformed entry extension list or TBS never throws: it is a finding', () => {
    expect(ids(tbs({ entries: [seq(serial('01'), time(at('2026-02-01T00:00:00Z')), seq(bool(true)))] }))).toContain('e_crl_entry_invalid');
    expect(ids(Buffer.from([0x30, 0x05, 0x02]))).toEqual(['e_crl_entry_invalid']);
    expect(ids(tbs({ entries: [entry('01', [seq(oid(OID.reasonCode))])] }))).toContain('e_crl_entry_invalid');
    expect(ids(tbs({ exts: [octetString(Buffer.from('x'))] }))).toContain('e_crl_extension_invalid');
  });

  test('linear: 200,000 ordered entries are walked once, with no finding', () => {
    const entries = Array.from({ length: 200_000 }, (_, i) => entry((0x1000000 + i).toString(16).padStart(8, '0'), i % 2 ? [reason(1)] : []));
    expect(lintCrl(tbs({ entries }), expectations)).toEqual([]);
  });
});

/** The top-level fields of a TBS, to append one. */
function splitTbs(t: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let p = t[1]! & 0x80 ? 2 + (t[1]! & 0x7f) : 2;
  while (p < t.length) {
    let len = t[p + 1]!;
    let c = p + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + t[c++]!;
    }
    out.push(t.subarray(p, c + len));
    p = c + len;
  }
  return out;
}
