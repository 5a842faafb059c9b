/**
 * The ACME server end to end with the in-test client: a real `serve` (HTTP),
 * the real validation authority against responders on loopback (allowed with
 * --acme-allow-address 127.0.0.0/8), names resolved through a test DNS
 * server, and OpenSSL judging every certificate.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { AcmeClient, assertOk } from '../helpers/acme-client.js';
import { startAcmeServer, type AcmeTestServer } from '../helpers/acme-server.js';
import { openssl } from '../helpers/openssl.js';

let t: AcmeTestServer;
beforeAll(async () => {
  t = await startAcmeServer({ zone: { 'app.acme.test': { a: ['127.0.0.1'] }, 'api.acme.test': { a: ['127.0.0.1'] } } });
});
afterAll(() => t?.close());

test('http-01: account, order for two names, validation, finalize, download; the chain verifies with openssl', async () => {
  const client = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
  assertOk(await client.newAccount({ contact: ['mailto:ops@acme.test'], termsOfServiceAgreed: true }), 'newAccount', [201]);
  const { certificate, order } = await client.obtainCertificate({
    identifiers: ['app.acme.test', 'api.acme.test'],
    challengeType: 'http-01',
    respond: (_a, ch, keyAuth) => t.http01.set(ch.token, keyAuth),
  });
  expect(order.status).toBe('valid');
  const leaf = t.pki.dir + '/acme-leaf.pem';
  fs.writeFileSync(leaf, certificate.pem);
  await expect(openssl('verify', '-purpose', 'sslserver', '-CAfile', t.pki.rootPemPath, '-untrusted', leaf, leaf)).resolves.toMatch(/: OK$/m);
  const text = await openssl('x509', '-in', leaf, '-noout', '-ext', 'subjectAltName');
  expect(text).toMatch(/DNS:api\.acme\.test/);
  expect(text).toMatch(/DNS:app\.acme\.test/);
  expect(certificate.alternates).toHaveLength(1);
  client.close();
});

test('tls-alpn-01 for an IP identifier (RFC 8738)', async () => {
  const client = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
  assertOk(await client.newAccount({ termsOfServiceAgreed: true }), 'newAccount', [201]);
  const { certificate } = await client.obtainCertificate({
    identifiers: [{ type: 'ip', value: '127.0.0.1' }],
    challengeType: 'tls-alpn-01',
    respond: (a, _ch, keyAuth) => t.tlsAlpn.set(a.identifier, keyAuth),
  });
  const leaf = t.pki.dir + '/acme-ip.pem';
  fs.writeFileSync(leaf, certificate.pem);
  await expect(openssl('x509', '-in', leaf, '-noout', '-ext', 'subjectAltName')).resolves.toMatch(/IP Address:127\.0\.0\.1/);
  client.close();
});
