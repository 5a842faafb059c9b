/** POST /api/v1/certificates over real HTTP: success, and every kind of bad input answered with a problem document and nothing stored. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { createToken } from '../../src/tokens/tokens.js';
import { makeCsr, openssl } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

const fixture = (name: string) => fs.readFileSync(path.join(import.meta.dirname, '../fixtures/csr', name));

let pki: TestPki;
let server: Serving;
let issuerToken: string;
let csrPem: string;

beforeAll(async () => {
  pki = await testPki();
  issuerToken = (await createToken(pki.instance.store.tokens, 'issuer', 'test')).secret;
  csrPem = (await makeCsr(pki.dir, 'api', '/CN=api.example.test', { sans: 'DNS:api.example.test' })).csrPem;
  server = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger });
});
afterAll(async () => {
  await server?.close();
  await pki?.close();
});

const post = (body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${server.url}/api/v1/certificates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${issuerToken}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });

const rows = () => pki.instance.store.certificates.count();

describe('POST /api/v1/certificates', () => {
  test('201 with the PEM chain, leaf first; verifies against the root', async () => {
    const res = await post({ profile: 'server', csr: csrPem });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toMatch(/application\/pem-certificate-chain/);
    expect(res.headers.get('location')).toMatch(/^\/api\/v1\/certificates\/[0-9a-f]{32}$/);
    const chain = await res.text();
    expect(chain.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    const file = path.join(pki.dir, 'api-leaf.pem');
    fs.writeFileSync(file, chain);
    await expect(openssl('verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', pki.rootPemPath, '-untrusted', file, file)).resolves.toMatch(/: OK$/m);
  });

  test('DER leaf on Accept: application/pkix-cert', async () => {
    const res = await post({ profile: 'server', csr: csrPem }, { accept: 'application/pkix-cert' });
    expect(res.status).toBe(201);
    const der = Buffer.from(await res.arrayBuffer());
    await expect(openssl('x509', '-inform', 'DER', '-noout', '-subject', '-in', writeTmp('leaf.der', der))).resolves.toMatch(/CN ?= ?api\.example\.test/);
  });

  test('CA certificates are served without authentication at the caIssuers URL', async () => {
    const res = await fetch(`${server.url}/ca/issuing-1.cer`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pkix-cert');
    const issuing = pki.instance.cas.find((c) => c.id === 'issuing-1')!;
    expect(Buffer.from(await res.arrayBuffer()).equals(issuing.certDer)).toBe(true);
  });

  test('GET /healthz answers 200 when ready', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
  });

  const big = 'x'.repeat(70 * 1024);
  test.each<[string, () => Promise<Response>, number, string]>([
    ['no token', () => post({ profile: 'server', csr: 'x' }, { authorization: '' }), 401, 'unauthorized'],
    ['a wrong token', () => post({ profile: 'server', csr: 'x' }, { authorization: 'Bearer trellis_wrong' }), 401, 'unauthorized'],
    ['random bytes as CSR', () => post({ profile: 'server', csr: fixture('random.bin').toString('base64') }), 400, 'badCSR'],
    ['truncated DER', () => post({ profile: 'server', csr: `-----BEGIN CERTIFICATE REQUEST-----\n${fixture('truncated.der').toString('base64')}\n-----END CERTIFICATE REQUEST-----\n` }), 400, 'badCSR'],
    ['wrong PEM label', () => post({ profile: 'server', csr: fixture('wrong-label.pem').toString() }), 400, 'badCSR'],
    ['a broken CSR signature', () => post({ profile: 'server', csr: `-----BEGIN CERTIFICATE REQUEST-----\n${fixture('broken-signature.der').toString('base64')}\n-----END CERTIFICATE REQUEST-----\n` }), 400, 'badCSR'],
    ['RSA 1024', () => post({ profile: 'server', csr: fixture('rsa1024.csr').toString() }), 400, 'badPublicKey'],
    ['P-192', () => post({ profile: 'server', csr: fixture('p192.csr').toString() }), 400, 'badPublicKey'],
    ['a SAN type the profile forbids', () => post({ profile: 'server', csr: fixture('email-san.csr').toString() }), 400, 'rejectedIdentifier'],
    ['a CA request', () => post({ profile: 'server', csr: fixture('ca-request.csr').toString() }), 400, 'badCSR'],
    ['an unknown profile', () => post({ profile: 'nope', csr: 'x' }), 400, 'badProfile'],
    ['a ceremony profile', () => post({ profile: 'issuing-ca', csr: 'x' }), 400, 'badProfile'],
    ['a body over the size limit', () => post({ profile: 'server', csr: big }), 413, 'payloadTooLarge'],
    ['invalid JSON', () => post('{"profile": '), 400, 'malformed'],
    ['an unknown field', () => post({ profile: 'server', csr: 'x', extra: 1 }), 400, 'malformed'],
    ['a non-JSON content type', () => post('profile=server', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupportedMediaType'],
  ])('rejects %s with a problem document and stores nothing', async (_name, send, status, type) => {
    const before = await rows();
    const res = await send();
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const doc = (await res.json()) as { type: string; status: number; detail: string };
    expect(doc.type).toBe(`urn:trellis:problem:${type}`);
    expect(doc.status).toBe(status);
    expect(doc.detail.length).toBeGreaterThan(5);
    expect(await rows()).toBe(before);
  });

  test('unknown paths are 404 problems', async () => {
    const res = await fetch(`${server.url}/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
  });
});

function writeTmp(name: string, data: Buffer): string {
  const f = path.join(pki.dir, name);
  fs.writeFileSync(f, data);
  return f;
}
