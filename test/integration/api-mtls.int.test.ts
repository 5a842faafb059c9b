/**
 * Operators over mutual TLS (issue 12): Node TLS clients present
 * certificates to a real `serve --tls`. An `operator` certificate issued by
 * `trellis issue` (the cli channel) authenticates as its OU's role; a
 * revoked one, one of another profile, one we did not issue, one with an OU
 * that is no role, and a certificate on a plain-HTTP server do not. The
 * profile cannot be enrolled over the API or ACME.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { createToken } from '../../src/tokens/tokens.js';
import { makeCsr, openssl } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let server: Serving;
let baseUrl: string;
interface Credential {
  cert: string;
  key: string;
  serial: string;
}
const creds: Record<string, Credential> = {};

async function credential(name: string, subj: string, profile: string): Promise<Credential> {
  const csr = await makeCsr(pki.dir, `op-${name}`, subj);
  const issued = await pki.issue(profile, csr.csrPem, `op-${name}`);
  return { cert: fs.readFileSync(issued.pemPath, 'utf8'), key: fs.readFileSync(csr.keyPath, 'utf8'), serial: issued.serialHex };
}

/** One HTTPS request with an optional client certificate. */
function request(p: string, opts: { cred?: Credential; method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${baseUrl}${p}`,
      {
        method: opts.method ?? 'GET',
        ca: pki.rootPem,
        servername: 'localhost',
        agent: false,
        headers: { ...(opts.body ? { 'content-type': 'application/json' } : {}), ...opts.headers },
        ...(opts.cred ? { cert: opts.cred.cert, key: opts.cred.key } : {}),
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : null }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

beforeAll(async () => {
  pki = await testPki({ baseUrl: 'https://localhost:8443' });
  server = await serve({ dataDir: pki.dataDir, host: '127.0.0.1', port: 0, tls: true, passphrase: testPassphrase, log: silentLogger, accessLog: false });
  baseUrl = `https://127.0.0.1:${new URL(server.url).port}`;
  creds.officer = await credential('officer', '/CN=alice/OU=officer', 'operator');
  creds.auditor = await credential('auditor', '/CN=bob/OU=auditor', 'operator');
  creds.alias = await credential('alias', '/CN=carol/OU=admin', 'operator');
  creds.revoked = await credential('revoked', '/CN=dave/OU=administrator', 'operator');
  creds.noRole = await credential('norole', '/CN=eve/OU=root', 'operator');
  creds.client = await credential('client', '/CN=mallory/OU=administrator', 'client');
  // Same subject and a key of its own, self-signed: Trellis never issued it.
  const key = path.join(pki.dir, 'forged.key');
  const cert = path.join(pki.dir, 'forged.pem');
  await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/CN=alice/OU=administrator', '-days', '2', '-addext', 'extendedKeyUsage=clientAuth', '-out', cert);
  creds.forged = { cert: fs.readFileSync(cert, 'utf8'), key: fs.readFileSync(key, 'utf8'), serial: '' };
  await pki.instance.store.certificates.revoke('issuing-1', creds.revoked.serial, { reason: 1, revokedAt: new Date(), invalidityDate: null, revokedBy: 'test' });
}, 120_000);
afterAll(async () => {
  await server?.close();
  await pki?.close();
});

describe('an operator certificate is a credential', () => {
  test('OpenSSL accepts it as a TLS client certificate chaining to the root', async () => {
    const file = path.join(pki.dir, 'officer-check.pem');
    fs.writeFileSync(file, creds.officer!.cert);
    await expect(openssl('verify', '-CAfile', pki.rootPemPath, '-untrusted', pki.issuingPemPath, '-purpose', 'sslclient', file)).resolves.toMatch(/: OK$/m);
  });

  test('whoami: cert:<serial>, the OU as role (an alias made canonical), via certificate', async () => {
    expect(await request('/api/v1/whoami', { cred: creds.officer })).toEqual({ status: 200, body: { id: `cert:${creds.officer!.serial}`, role: 'officer', via: 'certificate' } });
    expect((await request('/api/v1/whoami', { cred: creds.alias })).body).toMatchObject({ role: 'administrator', via: 'certificate' });
  });

  test('the role decides, as for tokens: an auditor reads the audit log, an officer may not', async () => {
    expect((await request('/api/v1/audit/verify', { cred: creds.auditor })).status).toBe(200);
    const refused = await request('/api/v1/audit/verify', { cred: creds.officer });
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toMatch(/needs auditor or administrator/);
    // An officer may change state with its certificate (no cookie rule applies): a device registered.
    const made = await request('/api/v1/devices', { cred: creds.officer, method: 'POST', body: JSON.stringify({ id: 'mtls-1' }) });
    expect(made.status).toBe(201);
    const events = (await pki.instance.store.audit.range(1, 100_000)).filter((e) => e.type === 'device.registered');
    expect(events.at(-1)!.actor).toBe(`cert:${creds.officer!.serial}`);
  });

  test('a bearer token on the same connection takes precedence over the certificate', async () => {
    const auditor = await createToken(pki.instance.store.tokens, 'auditor', 'tok');
    expect((await request('/api/v1/whoami', { cred: creds.officer, headers: { authorization: `Bearer ${auditor.secret}` } })).body).toMatchObject({ role: 'auditor', via: 'token' });
  });
});

describe('refused certificates (401, saying why)', () => {
  test.each([
    ['revoked', /is revoked/],
    ['client', /is a client certificate, not an operator one/],
    ['forged', /not a certificate this instance issued/],
    ['noRole', /OU must be exactly one role/],
  ])('%s', async (name, why) => {
    const res = await request('/api/v1/whoami', { cred: creds[name] });
    expect(res.status).toBe(401);
    expect(res.body.type).toBe('urn:trellis:problem:unauthorized');
    expect(res.body.detail).toMatch(why);
  });

  test('no certificate and no token: 401', async () => {
    expect((await request('/api/v1/whoami')).status).toBe(401);
  });
});

describe('the operator profile is issued by trellis issue only', () => {
  test('the API refuses it even for an administrator; no ACME directory offers it', async () => {
    const admin = await createToken(pki.instance.store.tokens, 'administrator', 'admin');
    const csr = await makeCsr(pki.dir, 'op-api', '/CN=frank/OU=administrator');
    const res = await request('/api/v1/certificates', { method: 'POST', headers: { authorization: `Bearer ${admin.secret}` }, body: JSON.stringify({ profile: 'operator', csr: csr.csrPem }) });
    expect(res.status).toBe(403);
    expect(res.body.detail).toMatch(/cannot be enrolled through api/);
    expect((await request('/acme/client/directory')).status).toBe(200);
    expect((await request('/acme/operator/directory')).status).toBe(404);
  });
});
