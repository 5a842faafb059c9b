/**
 * The ACME server end to end with the in-test client: a real `serve` (HTTP),
 * the real validation authority against responders on loopback (allowed with
 * --acme-allow-address 127.0.0.0/8), names resolved through a test DNS
 * server, and OpenSSL judging every certificate.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/commands/serve.js';
import { silentLogger } from '../../src/http/log.js';
import { startDnsServer, type TestDnsServer } from '../../src/va/testing/dns-server.js';
import { AcmeClient, assertOk, startHttp01Responder, startTlsAlpn01Responder, type Http01Responder, type TlsAlpn01Responder } from '../helpers/acme-client.js';
import { openssl } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let server: Serving;
let http01: Http01Responder;
let tlsAlpn: TlsAlpn01Responder;
let dns: TestDnsServer;
let directoryUrl: string;

beforeAll(async () => {
  pki = await testPki();
  http01 = await startHttp01Responder();
  tlsAlpn = await startTlsAlpn01Responder();
  dns = await startDnsServer({ 'app.acme.test': { a: ['127.0.0.1'] }, 'api.acme.test': { a: ['127.0.0.1'] } });
  server = await serve({
    dataDir: pki.dataDir,
    port: 0,
    passphrase: testPassphrase,
    log: silentLogger,
    accessLog: false,
    acme: { http01Port: http01.port, tlsAlpn01Port: tlsAlpn.port, resolver: dns.address, allowAddresses: ['127.0.0.0/8'] },
  });
  directoryUrl = `${server.url}/acme/directory`;
});

afterAll(async () => {
  await server?.close();
  await http01?.close();
  await tlsAlpn?.close();
  await dns?.close();
  await pki?.close();
});

test('http-01: account, order for two names, validation, finalize, download; the chain verifies with openssl', async () => {
  const client = await AcmeClient.create({ directoryUrl });
  assertOk(await client.newAccount({ contact: ['mailto:ops@acme.test'], termsOfServiceAgreed: true }), 'newAccount', [201]);
  const { certificate, order } = await client.obtainCertificate({
    identifiers: ['app.acme.test', 'api.acme.test'],
    challengeType: 'http-01',
    respond: (_a, ch, keyAuth) => http01.set(ch.token, keyAuth),
  });
  expect(order.status).toBe('valid');
  const leaf = pki.dir + '/acme-leaf.pem';
  fs.writeFileSync(leaf, certificate.pem);
  await expect(openssl('verify', '-purpose', 'sslserver', '-CAfile', pki.rootPemPath, '-untrusted', leaf, leaf)).resolves.toMatch(/: OK$/m);
  const text = await openssl('x509', '-in', leaf, '-noout', '-ext', 'subjectAltName');
  expect(text).toMatch(/DNS:api\.acme\.test/);
  expect(text).toMatch(/DNS:app\.acme\.test/);
  expect(certificate.alternates).toHaveLength(1);
  client.close();
});

test('tls-alpn-01 for an IP identifier (RFC 8738)', async () => {
  const client = await AcmeClient.create({ directoryUrl });
  assertOk(await client.newAccount({ termsOfServiceAgreed: true }), 'newAccount', [201]);
  const { certificate } = await client.obtainCertificate({
    identifiers: [{ type: 'ip', value: '127.0.0.1' }],
    challengeType: 'tls-alpn-01',
    respond: (a, _ch, keyAuth) => tlsAlpn.set(a.identifier, keyAuth),
  });
  const leaf = pki.dir + '/acme-ip.pem';
  fs.writeFileSync(leaf, certificate.pem);
  await expect(openssl('x509', '-in', leaf, '-noout', '-ext', 'subjectAltName')).resolves.toMatch(/IP Address:127\.0\.0\.1/);
  client.close();
});
