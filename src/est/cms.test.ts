/**
 * certs-only CMS as EST answers it: read back by pkijs (an independent parser)
 * and by OpenSSL, each certificate byte for byte.
 */
import fs from 'node:fs';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { beforeAll, describe, expect, test } from 'vitest';
import { openssl, tempDir } from '../../test/helpers/openssl.js';
import { derFromPemOrDer } from '../pki/pem.js';
import { certsOnly, csrAttrs } from './cms.js';

const tmp = tempDir('trellis-cms-');
const certs: Buffer[] = [];

beforeAll(async () => {
  for (const name of ['a', 'b']) {
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file(`${name}.key`), '-subj', `/CN=cms ${name}`, '-days', '1', '-out', tmp.file(`${name}.pem`));
    certs.push(derFromPemOrDer(fs.readFileSync(tmp.file(`${name}.pem`)), ['CERTIFICATE'], 'certificate'));
  }
});

function signedDataOf(der: Buffer): pkijs.SignedData {
  const info = pkijs.ContentInfo.fromBER(der);
  expect(info.contentType).toBe(pkijs.ContentInfo.SIGNED_DATA);
  return new pkijs.SignedData({ schema: info.content });
}

describe('certsOnly', () => {
  test('pkijs reads a degenerate SignedData holding exactly the given certificates, in order', () => {
    const sd = signedDataOf(certsOnly(certs));
    expect(sd.version).toBe(1);
    expect(sd.signerInfos).toEqual([]);
    expect(sd.digestAlgorithms).toEqual([]);
    expect(sd.encapContentInfo.eContentType).toBe('1.2.840.113549.1.7.1');
    expect(sd.encapContentInfo.eContent).toBeUndefined();
    const back = (sd.certificates ?? []).map((c) => Buffer.from((c as pkijs.Certificate).toSchema().toBER(false)));
    expect(back).toEqual(certs);
  });

  test('openssl pkcs7 -print_certs prints both certificates', async () => {
    fs.writeFileSync(tmp.file('both.p7'), certsOnly(certs));
    const out = await openssl('pkcs7', '-inform', 'DER', '-in', tmp.file('both.p7'), '-print_certs');
    expect(out.match(/subject=CN ?= ?cms a/g)).toHaveLength(1);
    expect(out.match(/subject=CN ?= ?cms b/g)).toHaveLength(1);
  });

  test('refuses bytes that are no DER SEQUENCE', () => {
    expect(() => certsOnly([Buffer.from('nope')])).toThrow(/not a DER certificate/);
  });
});

describe('csrAttrs', () => {
  test('a SEQUENCE of OIDs and attributes, as RFC 7030 §4.5.2 has it', () => {
    const der = csrAttrs(['1.2.840.10045.4.3.2', { type: '1.2.840.10045.2.1', values: ['1.2.840.10045.3.1.7'] }]);
    const seq = asn1js.fromBER(der).result as asn1js.Sequence;
    const [oid, attr] = seq.valueBlock.value as [asn1js.ObjectIdentifier, asn1js.Sequence];
    expect(oid.valueBlock.toString()).toBe('1.2.840.10045.4.3.2');
    const [type, set] = attr.valueBlock.value as [asn1js.ObjectIdentifier, asn1js.Set];
    expect(type.valueBlock.toString()).toBe('1.2.840.10045.2.1');
    expect((set.valueBlock.value[0] as asn1js.ObjectIdentifier).valueBlock.toString()).toBe('1.2.840.10045.3.1.7');
  });
});
