/**
 * Every profile issues a certificate that OpenSSL accepts under -x509_strict,
 * and whose extensions (read back with @peculiar/x509, an independent parser)
 * are what the profile says.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makeCsr, openssl } from '../helpers/openssl.js';
import { testPki, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
beforeAll(async () => {
  pki = await testPki();
});
afterAll(() => pki?.close());

const verify = (pemPath: string, ...extra: string[]) =>
  openssl('verify', '-x509_strict', ...extra, '-CAfile', pki.rootPemPath, '-untrusted', pki.issuingPemPath, pemPath);

const parse = (der: Buffer) => new x509.X509Certificate(der);

describe('issuance per profile', () => {
  test('server: ECDSA P-256, DNS and IP SANs, serverAuth, verifies with -purpose sslserver', async () => {
    const { csrPem } = await makeCsr(pki.dir, 'srv', '/CN=app.example.test', { sans: 'DNS:app.example.test,IP:127.0.0.1' });
    const leaf = await pki.issue('server', csrPem);
    await expect(verify(leaf.pemPath, '-purpose', 'sslserver')).resolves.toMatch(/: OK$/m);
    const c = parse(leaf.certDer);
    expect(c.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    expect(c.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(c.getExtension(x509.KeyUsagesExtension)?.critical).toBe(true);
    expect(c.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    const san = c.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON();
    expect(san).toEqual([{ type: 'dns', value: 'app.example.test' }, { type: 'ip', value: '127.0.0.1' }]);
    const aia = c.getExtension(x509.AuthorityInfoAccessExtension)!;
    expect(aia.ocsp.map((g) => g.value)).toEqual(['http://pki.test:8080/ocsp']);
    expect(aia.caIssuers.map((g) => g.value)).toEqual(['http://pki.test:8080/ca/issuing-1.cer']);
    const crl = c.getExtension(x509.CRLDistributionPointsExtension)!.distributionPoints[0]!.distributionPoint!.fullName![0]!.uniformResourceIdentifier;
    expect(crl).toMatch(/^http:\/\/pki\.test:8080\/crl\/issuing-1\/\d+\.crl$/);
    const issuing = parse(fs.readFileSync(pki.issuingPemPath));
    const ski = issuing.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
    expect(c.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(ski);
    expect(c.getExtension(x509.SubjectKeyIdentifierExtension)).toBeTruthy();
    // validity: 90 days by default, backdated 5 minutes, never past the issuer
    const days = (c.notAfter.getTime() - c.notBefore.getTime()) / 86400_000;
    expect(days).toBeCloseTo(90, 2);
    expect(c.serialNumber.length).toBe(32);
  });

  test.each(['p384', 'rsa2048', 'ed25519'] as const)('server: %s subject key verifies', async (keyAlg) => {
    const { csrPem } = await makeCsr(pki.dir, `srv-${keyAlg}`, `/CN=${keyAlg}.example.test`, { keyAlg });
    const leaf = await pki.issue('server', csrPem);
    await expect(verify(leaf.pemPath, '-purpose', 'sslserver')).resolves.toMatch(/: OK$/m);
    // the CN was added to the SANs
    expect(parse(leaf.certDer).getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON()).toEqual([{ type: 'dns', value: `${keyAlg}.example.test` }]);
  });

  test('client: clientAuth, verifies with -purpose sslclient', async () => {
    const { csrPem } = await makeCsr(pki.dir, 'cli', '/CN=alice/O=Example');
    const leaf = await pki.issue('client', csrPem);
    await expect(verify(leaf.pemPath, '-purpose', 'sslclient')).resolves.toMatch(/: OK$/m);
    expect(parse(leaf.certDer).getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.clientAuth]);
  });

  test('device: id in subject serialNumber and a URI SAN, one year, clientAuth', async () => {
    const { csrPem } = await makeCsr(pki.dir, 'dev', '/serialNumber=SN-000042');
    const leaf = await pki.issue('device', csrPem);
    await expect(verify(leaf.pemPath, '-purpose', 'sslclient')).resolves.toMatch(/: OK$/m);
    const c = parse(leaf.certDer);
    expect(c.subject).toContain('SN-000042');
    expect(c.subjectName.getField('2.5.4.5')).toEqual(['SN-000042']);
    const uris = c.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON().filter((n) => n.type === 'url');
    expect(uris.map((u) => u.value)).toEqual(['urn:dev:trellis:SN-000042']);
    const days = (c.notAfter.getTime() - c.notBefore.getTime()) / 86400_000;
    expect(days).toBeGreaterThan(364);
    expect(days).toBeLessThanOrEqual(366);
  });

  test('ocsp-responder: OCSPSigning and ocsp-nocheck, issued at init by Trellis itself (never through the RA)', async () => {
    const rows = await pki.instance.store.certificates.count({ status: 'valid' });
    expect(rows).toBeGreaterThanOrEqual(2); // the issuing CA (under the root) and the responder
    const held = await pki.instance.store.certificates.latestHeld('issuing-1', 'ocsp-responder');
    expect(held?.der).toBeTruthy();
    const pemPath = `${pki.dir}/responder.pem`;
    fs.writeFileSync(pemPath, new x509.X509Certificate(held!.der!).toString('pem'));
    const c = parse(held!.der!);
    expect(c.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.ocspSigning]);
    expect(c.getExtension('1.3.6.1.5.5.7.48.1.5')).toBeTruthy();
    await expect(verify(pemPath, '-purpose', 'ocsphelper')).resolves.toMatch(/: OK$/m);
    // Issue 9: an OCSP signer in a client's hands signs "good" for revoked certificates; no channel may ask for one.
    const { csrPem } = await makeCsr(pki.dir, 'ocsp', '/CN=extra responder');
    await expect(pki.issue('ocsp-responder', csrPem)).rejects.toMatchObject({ type: 'badProfile' });
  });

  test('root and issuing CA certificates: CA constraints as the profiles say', async () => {
    const root = parse(fs.readFileSync(pki.rootPemPath));
    const issuing = parse(fs.readFileSync(pki.issuingPemPath));
    expect(root.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: true, critical: true });
    expect(issuing.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: true, pathLength: 0, critical: true });
    expect(issuing.getExtension(x509.KeyUsagesExtension)!.usages & x509.KeyUsageFlags.keyCertSign).toBeTruthy();
    expect(root.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-384' });
    expect(issuing.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' });
    await expect(openssl('verify', '-x509_strict', '-CAfile', pki.rootPemPath, pki.issuingPemPath)).resolves.toMatch(/: OK$/m);
  });

  test('every issued certificate is stored as valid with its DER, and the audit chain holds', async () => {
    const { csrPem } = await makeCsr(pki.dir, 'stored', '/CN=stored.example.test');
    const leaf = await pki.issue('server', csrPem);
    const rec = await pki.instance.store.certificates.findBySerial(leaf.issuerId, leaf.serialHex);
    expect(rec?.status).toBe('valid');
    expect(rec?.der?.equals(leaf.certDer)).toBe(true);
    expect(rec?.profile).toBe('server');
    expect(rec?.requestedVia).toBe('cli');
    await expect(pki.instance.audit.verify()).resolves.toMatchObject({ ok: true });
  });
});
