import { generateKeyPairSync, sign } from 'node:crypto';
import { expect, test } from 'vitest';
import { encodeCertificate, encodeTbs } from '../../ca/tbs.js';
import { parseCertificate, type ParsedCertificate } from '../../pki/certificate.js';
import { ctx, oid, seq } from '../../pki/der.js';
import { extension, subjectAltNameExtension } from '../../pki/extensions.js';
import type { GeneralName } from '../../pki/general-name.js';
import { encodeName } from '../../pki/name.js';
import { OID } from '../../pki/oids.js';
import { lintRules, runLints } from '../index.js';
import { dnsNameNumericTld, ipAddressUnspecified } from './address-like-names.js';

const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spkiDer = key.publicKey.export({ type: 'spki', format: 'der' });
const alg = seq(oid(OID.ecdsaWithSHA256));

function leaf(sanExtension: Buffer): ParsedCertificate {
  const tbs = encodeTbs({
    serial: Buffer.from('4a1b2c3d4e5f60718293a4b5c6d7e8f9', 'hex'),
    signatureAlgorithm: alg,
    issuerName: encodeName({ CN: 'Lint CA' }),
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2026-12-31T23:59:59Z'),
    subjectName: encodeName({}),
    spkiDer,
    extensions: [sanExtension],
  });
  return parseCertificate(encodeCertificate(tbs, alg, sign('sha256', tbs, key.privateKey)));
}
const withSans = (sans: GeneralName[]) => leaf(subjectAltNameExtension(sans, true));
const ids = (cert: ParsedCertificate) => runLints({ cert, issuer: null }, [dnsNameNumericTld, ipAddressUnspecified]).map((f) => f.id);

test('both rules are registered with the pre-issuance lints and cite their sources', () => {
  expect(lintRules).toContain(dnsNameNumericTld);
  expect(lintRules).toContain(ipAddressUnspecified);
  expect(dnsNameNumericTld.source).toMatch(/RFC 1123 §2\.1/);
  expect(ipAddressUnspecified.source).toMatch(/RFC 4291/);
});

test.each(['127.1', '2130706433', '0x7f.1', '1.2.3.4.5', '*.10'])('e_dns_name_numeric_tld: a dNSName %s', (name) => {
  expect(ids(withSans([{ type: 'dns', value: 'ok.example' }, { type: 'dns', value: name }]))).toEqual(['e_dns_name_numeric_tld']);
});

test.each(['0.0.0.0', '::'])('e_ip_address_unspecified: an iPAddress %s', (ip) => {
  expect(ids(withSans([{ type: 'ip', value: ip }]))).toEqual(['e_ip_address_unspecified']);
});

test('the encoded octets are judged, not text: an all-zero 16-octet iPAddress', () => {
  const raw = extension(OID.subjectAltName, true, seq(ctx(7, false, Buffer.alloc(16))));
  expect(ids(leaf(raw))).toEqual(['e_ip_address_unspecified']);
});

test('passes: ordinary names and addresses', () => {
  expect(ids(withSans([{ type: 'dns', value: 'example.com' }, { type: 'dns', value: 'a1.example' }, { type: 'dns', value: 'xn--80ak6aa92e.com' }, { type: 'ip', value: '192.0.2.1' }, { type: 'ip', value: '::1' }]))).toEqual([]);
});
