/** The OCSP responder against `openssl ocsp`: good, revoked with reason, unknown, unauthorized, malformed, GET, nonce, several certificates. */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { createToken } from '../../src/tokens/tokens.js';
import { makeCsr, openssl, opensslRun } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let server: Serving;
let admin: string;
const leaves: Record<string, Awaited<ReturnType<TestPki['issue']>>> = {};

beforeAll(async () => {
  pki = await testPki();
  for (const n of ['o-good', 'o-bad', 'o-other']) leaves[n] = await pki.issue('device', (await makeCsr(pki.dir, n, `/serialNumber=${n}`)).csrPem, n);
  admin = (await createToken(pki.instance.store.tokens, 'admin', 'a')).secret;
  server = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger });
});
afterAll(async () => {
  await server?.close();
  await pki?.close();
});

const ocsp = (...args: string[]) => opensslRun(['ocsp', '-issuer', pki.issuingPemPath, '-CAfile', pki.rootPemPath, '-url', `${server.url}/ocsp`, ...args]);

describe('OCSP responder', () => {
  test('good, signed by the delegated responder, verified by openssl (with a nonce)', async () => {
    const r = await ocsp('-cert', leaves['o-good']!.pemPath);
    expect(r.stdout + r.stderr).toMatch(/Response verify OK/);
    expect(r.stdout).toMatch(/o-good\.pem: good/);
  });

  test('revoked (with reason) right after an API revocation; the cached good answer is replaced', async () => {
    const bad = leaves['o-bad']!;
    expect((await ocsp('-no_nonce', '-cert', bad.pemPath)).stdout).toMatch(/: good/);
    const res = await fetch(`${server.url}/api/v1/certificates/${bad.serialHex}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{"reason":"keyCompromise"}' });
    expect(res.status).toBe(200);
    const r = await ocsp('-no_nonce', '-cert', bad.pemPath);
    expect(r.stdout + r.stderr).toMatch(/Response verify OK/);
    expect(r.stdout).toMatch(/o-bad\.pem: revoked/);
    expect(r.stdout).toMatch(/Reason: keyCompromise/);
  });

  test('a revocation made by another process (the CLI) shows within the poll interval', async () => {
    const other = leaves['o-other']!;
    expect((await ocsp('-no_nonce', '-cert', other.pemPath)).stdout).toMatch(/: good/);
    await pki.instance.store.certificates.revoke('issuing-1', other.serialHex, { reason: 4, revokedAt: new Date(), invalidityDate: null, revokedBy: 'cli' });
    let out = '';
    for (let i = 0; i < 20 && !/revoked/.test(out); i++) {
      await new Promise((r) => setTimeout(r, 500));
      out = (await ocsp('-no_nonce', '-cert', other.pemPath)).stdout;
    }
    expect(out).toMatch(/o-other\.pem: revoked/);
  });

  test('several certificates in one request, and an unknown serial', async () => {
    const r = await ocsp('-cert', leaves['o-good']!.pemPath, '-cert', leaves['o-bad']!.pemPath, '-serial', '0x4abcdef0123456789abcdef012345678');
    expect(r.stdout + r.stderr).toMatch(/Response verify OK/);
    expect(r.stdout).toMatch(/o-good\.pem: good/);
    expect(r.stdout).toMatch(/o-bad\.pem: revoked/);
    expect(r.stdout).toMatch(/0x4ABCDEF0123456789ABCDEF012345678: unknown/i);
  });

  test('SHA-256 CertIDs (openssl ocsp -sha256)', async () => {
    const r = await ocsp('-sha256', '-cert', leaves['o-good']!.pemPath);
    expect(r.stdout + r.stderr).toMatch(/Response verify OK/);
    expect(r.stdout).toMatch(/o-good\.pem: good/);
  });

  test('an issuer we do not serve gets unauthorized', async () => {
    const r = await opensslRun(['ocsp', '-issuer', pki.rootPemPath, '-cert', pki.issuingPemPath, '-url', `${server.url}/ocsp`, '-no_nonce']);
    expect(r.stdout + r.stderr).toMatch(/unauthorized/i);
  });

  test('malformed bodies get malformedRequest, never a 500', async () => {
    for (const body of [Buffer.from('not der'), Buffer.alloc(0), Buffer.from([0x30, 0x03, 0x02, 0x01])]) {
      const res = await fetch(`${server.url}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body });
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]))).toBe(true);
    }
    // Oversize bodies are refused before they are read (RFC 5019 requests are a few hundred octets).
    const big = await fetch(`${server.url}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.alloc(64 * 1024, 0x30) });
    expect(big.status).toBe(413);
    expect((await ocsp('-no_nonce', '-cert', leaves['o-good']!.pemPath)).stdout).toMatch(/: good/);
  });

  test('GET /ocsp/{base64} answers with RFC 5019 caching headers', async () => {
    const reqFile = `${pki.dir}/req.der`;
    await openssl('ocsp', '-issuer', pki.issuingPemPath, '-cert', leaves['o-good']!.pemPath, '-no_nonce', '-reqout', reqFile);
    const b64 = encodeURIComponent(fs.readFileSync(reqFile).toString('base64'));
    const res = await fetch(`${server.url}/ocsp/${b64}`);
    // base64url (no padding) names the same request and gets the same bytes.
    const again = await fetch(`${server.url}/ocsp/${fs.readFileSync(reqFile).toString('base64url')}`);
    expect(again.headers.get('etag')).toBe(res.headers.get('etag'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/ocsp-response');
    expect(res.headers.get('cache-control')).toMatch(/max-age=\d+, public, no-transform, must-revalidate/);
    expect(res.headers.get('last-modified')).toBeTruthy();
    expect(res.headers.get('expires')).toBeTruthy();
    const respFile = `${pki.dir}/resp.der`;
    fs.writeFileSync(respFile, Buffer.from(await res.arrayBuffer()));
    const r = await opensslRun(['ocsp', '-respin', respFile, '-issuer', pki.issuingPemPath, '-cert', leaves['o-good']!.pemPath, '-CAfile', pki.rootPemPath, '-no_nonce']);
    expect(r.stdout + r.stderr).toMatch(/Response verify OK/);
    expect(r.stdout).toMatch(/: good/);
  });
});
