/**
 * Extension decoders under hostile input (issue 12): the extension values of
 * an openssl-made CA certificate (SAN of every kind, basicConstraints,
 * keyUsage, EKU, SKI/AKI, CRL DP, AIA, name constraints with DNS, IP, email
 * and directoryName subtrees), damaged by src/pki/testing/mutate.ts, go
 * through each decoder and the name-constraint checks built on them. Each may
 * only return or throw a PkiError of type malformed or badCSR.
 */
import fs from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openssl, tempDir } from '../../test/helpers/openssl.js';
import { isPkiError } from '../errors/pki-error.js';
import { parseCertificate } from './certificate.js';
import { ctx, int, oid, seq, tlv, Tag } from './der.js';
import {
  decodeAuthorityInfoAccess, decodeAuthorityKeyIdentifier, decodeBasicConstraints, decodeCrlDistributionPoints, decodeExtKeyUsage, decodeKeyUsage,
  decodeSubjectAltName, decodeSubjectKeyIdentifier,
} from './extensions.js';
import { decodeNameConstraints, findNameConstraintViolation, sanNamesOfExtension, constrainedNames } from './name-constraints.js';
import { OID } from './oids.js';
import { derFromPemOrDer } from './pem.js';
import { fuzzParams, mutatedFrom } from './testing/mutate.js';

const runs = fuzzParams(0xe27, 500);
const tmp = tempDir('trellis-ext-fuzz-');
const values = new Map<string, Buffer>();

beforeAll(async () => {
  const exts = [
    'subjectAltName=DNS:a.example.test,IP:192.0.2.1,IP:2001:db8::1,email:a@example.test,URI:https://a.example.test/x,dirName:dir_sect,otherName:1.2.3.4;UTF8:x',
    'basicConstraints=critical,CA:TRUE,pathlen:2',
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid:always',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature,decipherOnly',
    'extendedKeyUsage=serverAuth,clientAuth,1.2.3.4',
    'crlDistributionPoints=URI:http://crl.example.test/a.crl,URI:ldap://x',
    'authorityInfoAccess=OCSP;URI:http://ocsp.example.test,caIssuers;URI:http://ca.example.test/ca.der',
    'nameConstraints=critical,permitted;DNS:example.test,permitted;IP:192.0.2.0/255.255.255.0,permitted;IP:2001:db8::/ffff:ffff::,excluded;email:bad.example.test,permitted;dirName:dir_sect,excluded;URI:.bad.test',
  ];
  fs.writeFileSync(tmp.file('ext.cnf'), '[req]\ndistinguished_name=dn\n[dn]\n[dir_sect]\nC=DE\nO=Fuzz\nCN=Dir Name\n');
  await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file('k.pem'), '-config', tmp.file('ext.cnf'), '-subj', '/CN=ext', '-days', '1', ...exts.flatMap((e) => ['-addext', e]), '-out', tmp.file('c.pem'));
  const cert = parseCertificate(derFromPemOrDer(fs.readFileSync(tmp.file('c.pem')), ['CERTIFICATE'], 'certificate'));
  for (const e of cert.extensions) values.set(e.oid, e.valueDer);
}, 60_000);
afterAll(() => tmp.cleanup());

function refusesCleanly(f: () => unknown): void {
  try {
    f();
  } catch (err) {
    if (!(isPkiError(err, 'malformed') || isPkiError(err, 'badCSR'))) throw err;
  }
}

const decoders: [string, (v: Buffer) => unknown][] = [
  [OID.keyUsage, decodeKeyUsage],
  [OID.extKeyUsage, decodeExtKeyUsage],
  [OID.basicConstraints, decodeBasicConstraints],
  [OID.subjectKeyIdentifier, decodeSubjectKeyIdentifier],
  [OID.authorityKeyIdentifier, decodeAuthorityKeyIdentifier],
  [OID.subjectAltName, decodeSubjectAltName],
  [OID.subjectAltName, sanNamesOfExtension],
  [OID.cRLDistributionPoints, decodeCrlDistributionPoints],
  [OID.authorityInfoAccess, decodeAuthorityInfoAccess],
  [OID.nameConstraints, decodeNameConstraints],
];

describe('extension decoders under hostile input', () => {
  test('every decoder reads its seed value', () => {
    for (const [o, decode] of decoders) expect(values.has(o) ? decode(values.get(o)!) : 'missing').not.toBe('missing');
  });

  test.each(decoders.map(([o, decode]) => [`${decode.name} (${o})`, o, decode] as const))('%s: mutated values return or throw a malformed/badCSR PkiError', (_name, o, decode) => {
    fc.assert(fc.property(mutatedFrom([values.get(o)!]), (v) => refusesCleanly(() => decode(v))), runs);
  });

  test('mutated name constraints and SANs: the constraint check returns a violation or null, or the decoders refuse', () => {
    fc.assert(
      fc.property(mutatedFrom([values.get(OID.nameConstraints)!]), mutatedFrom([values.get(OID.subjectAltName)!]), (nc, san) => {
        refusesCleanly(() => {
          const constraints = decodeNameConstraints(nc);
          const names = constrainedNames(seq(), sanNamesOfExtension(san), true);
          findNameConstraintViolation(names, [{ name: 'CN=fuzz', constraints }]);
        });
      }),
      runs,
    );
  });
});

describe('extension decoders: counterexamples kept as regression tests', () => {
  const malformed = (f: () => unknown) => expect(f).toThrow(expect.objectContaining({ name: 'PkiError', type: 'malformed' }));

  test('rejects: an AccessDescription without accessLocation, or with a location that is not a GeneralName', () => {
    malformed(() => decodeAuthorityInfoAccess(seq(seq(oid(OID.ocsp)))));
    malformed(() => decodeAuthorityInfoAccess(seq(seq(oid(OID.ocsp), int(1)))));
  });

  test('rejects: basicConstraints with a field after pathLenConstraint', () => {
    malformed(() => decodeBasicConstraints(seq(tlv(Tag.BOOLEAN, Buffer.from([0xff])), int(1), int(2))));
  });

  test('rejects: a DistributionPoint that is not a SEQUENCE', () => {
    malformed(() => decodeCrlDistributionPoints(seq(ctx(0, false, Buffer.from('x')))));
  });
});
