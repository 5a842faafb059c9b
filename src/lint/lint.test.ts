import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { keyIdentifierOf } from '../ca/issuer.js';
import { encodeCertificate, encodeTbs, type TbsParts } from '../ca/tbs.js';
import { parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { generalizedTime, oid, seq } from '../pki/der.js';
import {
  authorityKeyIdentifierExtension, basicConstraintsExtension, extKeyUsageExtension, extension, keyUsageExtension,
  nameConstraintsExtension, ocspNoCheckExtension, subjectAltNameExtension, subjectKeyIdentifierExtension,
} from '../pki/extensions.js';
import { encodeName } from '../pki/name.js';
import { OID } from '../pki/oids.js';
import { assertLintClean, caCertificateRules, lintFindingsOf, lintRules, runLints } from './index.js';

const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spkiDer = key.publicKey.export({ type: 'spki', format: 'der' });
const keyId = keyIdentifierOf(spkiDer.subarray(spkiDer.length - 65));
const alg = seq(oid(OID.ecdsaWithSHA256));
const caName = encodeName({ CN: 'Lint CA' });

function build(parts: Partial<TbsParts>, outerAlg = alg): ParsedCertificate {
  const tbs = encodeTbs({
    serial: Buffer.from('4a1b2c3d4e5f60718293a4b5c6d7e8f9', 'hex'),
    signatureAlgorithm: alg,
    issuerName: caName,
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2026-12-31T23:59:59Z'),
    subjectName: encodeName({ CN: 'leaf.example.test' }),
    spkiDer,
    extensions: [
      basicConstraintsExtension(false), keyUsageExtension(['digitalSignature']), subjectKeyIdentifierExtension(keyId),
      authorityKeyIdentifierExtension(keyId), subjectAltNameExtension([{ type: 'dns', value: 'leaf.example.test' }], false),
    ],
    ...parts,
  });
  return parseCertificate(encodeCertificate(tbs, outerAlg, sign('sha256', tbs, key.privateKey)));
}

const issuer = (() => {
  const tbs = encodeTbs({
    serial: Buffer.from('5a1b2c3d4e5f60718293a4b5c6d7e8f9', 'hex'), signatureAlgorithm: alg, issuerName: caName,
    notBefore: new Date('2025-01-01T00:00:00Z'), notAfter: new Date('2030-01-01T00:00:00Z'), subjectName: caName, spkiDer,
    extensions: [basicConstraintsExtension(true, 0), keyUsageExtension(['keyCertSign', 'cRLSign']), subjectKeyIdentifierExtension(keyId)],
  });
  return parseCertificate(encodeCertificate(tbs, alg, sign('sha256', tbs, key.privateKey)));
})();

const ids = (cert: ParsedCertificate, iss: ParsedCertificate | null = issuer) => runLints({ cert, issuer: iss }).map((f) => f.id);

describe('pre-issuance lints', () => {
  test('a well-formed leaf passes every rule', () => {
    expect(runLints({ cert: build({}), issuer })).toEqual([]);
  });

  test('every rule id says its severity', () => {
    for (const r of lintRules) expect(r.id).toMatch(/^[ew]_[a-z0-9_]+$/);
  });

  const exts = (...extra: Buffer[]) => [subjectKeyIdentifierExtension(keyId), authorityKeyIdentifierExtension(keyId), ...extra];
  test.each<[string, string, Partial<TbsParts>, Buffer?]>([
    ['e_serial_number_invalid', 'rejects: serial of 8 bytes (64 bits or fewer)', { serial: Buffer.from('0102030405060708', 'hex') }],
    ['e_serial_number_invalid', 'rejects: serial longer than 20 octets', { serial: Buffer.alloc(21, 0x41) }],
    ['e_validity_invalid', 'rejects: notAfter before notBefore', { notAfter: new Date('2025-06-01T00:00:00Z') }],
    ['e_validity_exceeds_issuer', 'rejects: notAfter after the issuer', { notAfter: new Date('2031-01-01T00:00:00Z') }],
    ['e_signature_algorithm_mismatch', 'rejects: inner and outer algorithms differ', {}, seq(oid(OID.ecdsaWithSHA384))],
    ['e_issuer_name_mismatch', "rejects: issuer name differs from the issuer's subject", { issuerName: encodeName({ CN: 'Other CA' }) }],
    ['e_extension_duplicate', 'rejects: the same extension twice', { extensions: exts(keyUsageExtension(['digitalSignature']), keyUsageExtension(['digitalSignature'])) }],
    ['e_basic_constraints_invalid', 'rejects: non-critical basicConstraints in a CA', { extensions: exts(extension(OID.basicConstraints, false, seq(Buffer.from([1, 1, 0xff]))), keyUsageExtension(['keyCertSign'])) }],
    ['e_key_usage_invalid', 'rejects: keyCertSign in a leaf', { extensions: exts(basicConstraintsExtension(false), keyUsageExtension(['digitalSignature', 'keyCertSign'])) }],
    ['e_key_usage_invalid', 'rejects: CA without keyCertSign', { extensions: exts(basicConstraintsExtension(true), keyUsageExtension(['digitalSignature'])) }],
    ['e_subject_key_identifier_missing', 'rejects: no subjectKeyIdentifier', { extensions: [authorityKeyIdentifierExtension(keyId), keyUsageExtension(['digitalSignature'])] }],
    ['e_authority_key_identifier_invalid', 'rejects: no authorityKeyIdentifier', { extensions: [subjectKeyIdentifierExtension(keyId), keyUsageExtension(['digitalSignature'])] }],
    ['e_authority_key_identifier_invalid', "rejects: AKI not matching the issuer's SKI", { extensions: [subjectKeyIdentifierExtension(keyId), authorityKeyIdentifierExtension(Buffer.alloc(20, 7))] }],
    ['e_subject_alt_name_invalid', 'rejects: upper-case dNSName', { extensions: exts(subjectAltNameExtension([{ type: 'dns', value: 'Leaf.Example.test' }], false)) }],
    ['e_subject_alt_name_invalid', 'rejects: empty subject with non-critical SAN', { subjectName: encodeName({}), extensions: exts(subjectAltNameExtension([{ type: 'dns', value: 'a.example.test' }], false)) }],
    ['e_subject_alt_name_invalid', 'rejects: empty subject and no SAN', { subjectName: encodeName({}), extensions: exts() }],
    ['e_name_constraints_invalid', 'rejects: nameConstraints in a leaf', { extensions: exts(nameConstraintsExtension({ dns: ['example.test'] })) }],
    ['e_ocsp_signing_misuse', 'rejects: OCSPSigning mixed with serverAuth', { extensions: exts(extKeyUsageExtension([OID.OCSPSigning, OID.serverAuth])) }],
    ['e_ocsp_signing_misuse', 'rejects: ocsp-nocheck without OCSPSigning', { extensions: exts(ocspNoCheckExtension()) }],
  ])('%s %s', (id, _name, parts, outer) => {
    expect(ids(build(parts, outer))).toContain(id);
  });

  test('rejects: GeneralizedTime for a date before 2050 (e_validity_invalid)', () => {
    const good = build({});
    const utc = Buffer.concat([Buffer.from([0x17, 13]), Buffer.from('260101000000Z', 'latin1')]);
    const gen = generalizedTime(new Date('2026-01-01T00:00:00Z'));
    // Swap the notBefore encoding and fix the two enclosing lengths (Validity and TBS, both short enough here).
    const at = good.tbsDer.indexOf(utc);
    const body = Buffer.concat([good.tbsDer.subarray(4, at), gen, good.tbsDer.subarray(at + utc.length)]);
    const validityAt = at - 2 - 4;
    body[validityAt + 1] = body[validityAt + 1]! + 2;
    const tbs = Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body]);
    const cert = parseCertificate(encodeCertificate(tbs, alg, sign('sha256', tbs, key.privateKey)));
    expect(cert.notBeforeTag).toBe(0x18);
    expect(ids(cert)).toContain('e_validity_invalid');
  });
});

describe('e_name_constraints_violated: the TBS against the constraints of the whole chain', () => {
  const caWith = (nc: Buffer, name = caName) => {
    const tbs = encodeTbs({
      serial: Buffer.from('6a1b2c3d4e5f60718293a4b5c6d7e8f9', 'hex'), signatureAlgorithm: alg, issuerName: name,
      notBefore: new Date('2025-01-01T00:00:00Z'), notAfter: new Date('2030-01-01T00:00:00Z'), subjectName: name, spkiDer,
      extensions: [basicConstraintsExtension(true, 0), keyUsageExtension(['keyCertSign', 'cRLSign']), subjectKeyIdentifierExtension(keyId), nc],
    });
    return parseCertificate(encodeCertificate(tbs, alg, sign('sha256', tbs, key.privateKey)));
  };
  const constrained = caWith(nameConstraintsExtension({ dns: ['example.test'] }, { dns: ['bad.example.test'] }));
  const leafWith = (names: string[]) => build({ extensions: [basicConstraintsExtension(false), keyUsageExtension(['digitalSignature']), subjectKeyIdentifierExtension(keyId), authorityKeyIdentifierExtension(keyId), subjectAltNameExtension(names.map((value) => ({ type: 'dns' as const, value })), false)] });

  test('passes: names inside the issuer\'s permitted subtree', () => {
    expect(ids(leafWith(['leaf.example.test']), constrained)).not.toContain('e_name_constraints_violated');
  });
  test.each([
    ['a SAN outside the permitted subtree', ['leaf.example.test', 'leaf.other.test'], /dNSName "leaf\.other\.test" is not within the permitted dNSName subtrees \(example\.test\)/],
    ['a SAN in the excluded subtree', ['x.bad.example.test'], /excluded dNSName subtree bad\.example\.test/],
  ])('rejects: %s', (_what, names, detail) => {
    const findings = runLints({ cert: leafWith(names), issuer: constrained });
    expect(findings.find((f) => f.id === 'e_name_constraints_violated')?.detail).toMatch(detail);
  });
  test('rejects: a name excluded by a CA above the issuer (the root)', () => {
    const root = caWith(nameConstraintsExtension(undefined, { dns: ['leaf.example.test'] }), encodeName({ CN: 'Constrained Root' }));
    expect(ids(leafWith(['leaf.example.test']), issuer)).not.toContain('e_name_constraints_violated');
    const findings = runLints({ cert: leafWith(['leaf.example.test']), issuer, chain: [root] });
    expect(findings.find((f) => f.id === 'e_name_constraints_violated')?.detail).toMatch(/excluded dNSName subtree leaf\.example\.test of CA "CN=Constrained Root"/);
  });
  test('assertLintClean throws lintFailed naming the rule, and hands the findings back', () => {
    let thrown: unknown;
    try {
      assertLintClean({ cert: leafWith(['leaf.other.test']), issuer: constrained });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ type: 'lintFailed', message: expect.stringMatching(/^pre-issuance lint failed: e_name_constraints_violated \(/) });
    expect(lintFindingsOf(thrown)?.map((f) => f.id)).toEqual(['e_name_constraints_violated']);
  });
});

describe('caCertificateRules: an issuing-CA certificate from an external root', () => {
  const caTbs = (extensions: Buffer[], signatureAlgorithm = alg) =>
    encodeTbs({
      serial: Buffer.from('0102030405060708', 'hex'), signatureAlgorithm, issuerName: caName,
      notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2029-01-01T00:00:00Z'), subjectName: encodeName({ CN: 'Imported CA' }), spkiDer, extensions,
    });
  const caCert = (extensions: Buffer[], signatureAlgorithm = alg) => {
    const tbs = caTbs(extensions, signatureAlgorithm);
    return parseCertificate(encodeCertificate(tbs, signatureAlgorithm, sign('sha256', tbs, key.privateKey)));
  };
  const keyIds = [subjectKeyIdentifierExtension(keyId), authorityKeyIdentifierExtension(keyId)];
  const caIds = (cert: ParsedCertificate) => runLints({ cert, issuer }, caCertificateRules).filter((f) => f.id.startsWith('e_')).map((f) => f.id);

  test('passes: critical cA, keyCertSign and cRLSign, key identifiers, ECDSA SHA-256 (a 64-bit serial is the root\'s business)', () => {
    expect(caIds(caCert([basicConstraintsExtension(true, 0), keyUsageExtension(['keyCertSign', 'cRLSign']), ...keyIds]))).toEqual([]);
  });
  test.each<[string, string, Buffer[], Buffer?]>([
    ['e_ca_certificate_invalid', 'no basicConstraints', [keyUsageExtension(['digitalSignature']), ...keyIds]],
    ['e_ca_certificate_invalid', 'cA FALSE', [basicConstraintsExtension(false), keyUsageExtension(['digitalSignature']), ...keyIds]],
    ['e_ca_certificate_invalid', 'no keyUsage', [basicConstraintsExtension(true), ...keyIds]],
    ['e_ca_certificate_invalid', 'no keyCertSign', [basicConstraintsExtension(true), keyUsageExtension(['cRLSign']), ...keyIds]],
    ['e_ca_certificate_invalid', 'no cRLSign', [basicConstraintsExtension(true), keyUsageExtension(['keyCertSign']), ...keyIds]],
    ['e_authority_key_identifier_invalid', "an AKI that is not the root's key", [basicConstraintsExtension(true), keyUsageExtension(['keyCertSign', 'cRLSign']), subjectKeyIdentifierExtension(keyId), authorityKeyIdentifierExtension(Buffer.alloc(20, 3))]],
    ['e_subject_key_identifier_missing', 'no SKI', [basicConstraintsExtension(true), keyUsageExtension(['keyCertSign', 'cRLSign']), authorityKeyIdentifierExtension(keyId)]],
    ['e_signature_algorithm_not_allowed', 'sha1WithRSAEncryption', [basicConstraintsExtension(true), keyUsageExtension(['keyCertSign', 'cRLSign']), ...keyIds], seq(oid(OID.sha1WithRSA), Buffer.from([5, 0]))],
  ])('%s rejects: %s', (id, _what, extensions, signatureAlgorithm) => {
    expect(caIds(caCert(extensions, signatureAlgorithm))).toContain(id);
  });
});
