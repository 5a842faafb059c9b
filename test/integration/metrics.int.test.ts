/**
 * /metrics, /healthz and /readyz of an in-process `serve`: an API issuance,
 * a revocation and OCSP questions move the counters; `promtool check metrics`
 * (Debian prometheus) accepts the exposition; readiness fails with its reason
 * when the issuing CA's key is suspended and when the database query fails.
 */
import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { createToken } from '../../src/tokens/tokens.js';
import { interopAvailable } from '../helpers/interop.js';
import { makeCsr, opensslRun } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

const promtoolPath = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'promtool')).find((p) => fs.existsSync(p));
const havePromtool = interopAvailable(promtoolPath !== undefined, 'promtool', 'apt-get install prometheus');

let pki: TestPki;
let server: Serving;
let issuerToken: string;
let adminToken: string;

beforeAll(async () => {
  pki = await testPki();
  issuerToken = (await createToken(pki.instance.store.tokens, 'issuer', 'metrics-issuer')).secret;
  adminToken = (await createToken(pki.instance.store.tokens, 'admin', 'metrics-admin')).secret;
  server = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger, accessLog: false });
});
afterAll(async () => {
  await server?.close();
  await pki?.close();
});

/** The value of one sample of the exposition (labels in any order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

const metricsText = async () => {
  const res = await fetch(`${server.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
};

function promtool(input: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(promtoolPath!, ['check', 'metrics'], { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
    });
    child.stdin?.end(input);
  });
}

describe('GET /metrics', () => {
  test('counts an API issuance and revocation, and OCSP answers by status; promtool accepts it', async () => {
    const before = await metricsText();
    const { csrPem } = await makeCsr(pki.dir, 'm-leaf', '/CN=metrics.example.test', { sans: 'DNS:metrics.example.test' });
    const issued = await fetch(`${server.url}/api/v1/certificates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${issuerToken}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ profile: 'server', csr: csrPem }),
    });
    expect(issued.status).toBe(201);
    const { serialHex, chain } = (await issued.json()) as { serialHex: string; chain: string };
    const leafPath = path.join(pki.dir, 'm-leaf-chain.pem');
    fs.writeFileSync(leafPath, chain);
    const ocsp = (...args: string[]) => opensslRun(['ocsp', '-issuer', pki.issuingPemPath, '-CAfile', pki.rootPemPath, '-url', `${server.url}/ocsp`, '-no_nonce', ...args]);
    expect((await ocsp('-cert', leafPath)).stdout).toMatch(/: good/);
    const revoked = await fetch(`${server.url}/api/v1/certificates/${serialHex}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: '{"reason":"keyCompromise"}' });
    expect(revoked.status).toBe(200);
    expect((await ocsp('-cert', leafPath)).stdout).toMatch(/: revoked/);
    expect((await ocsp('-serial', '0x4abcdef0123456789abcdef012345678')).stdout).toMatch(/: unknown/);
    // Not an OCSP request at all: malformedRequest.
    const junk = await fetch(`${server.url}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: 'not der' });
    expect(junk.status).toBe(200);

    const after = await metricsText();
    const moved = (name: string, labels: Record<string, string>) => (sample(after, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
    const leaf = { ca: 'issuing-1', profile: 'server' };
    expect(moved('trellis_certificates_issued_total', leaf)).toBe(1);
    expect(moved('trellis_certificates_revoked_total', leaf)).toBe(1);
    expect(moved('trellis_ocsp_responses_total', { status: 'good' })).toBe(1);
    expect(moved('trellis_ocsp_responses_total', { status: 'revoked' })).toBe(1);
    expect(moved('trellis_ocsp_responses_total', { status: 'unknown' })).toBe(1);
    expect(moved('trellis_ocsp_responses_total', { status: 'malformedRequest' })).toBe(1);
    // Two signed answers (good, then revoked after the revocation dropped the cached one); the unknown one is signed too.
    expect(moved('trellis_ocsp_responses_signed_total', {})).toBeGreaterThanOrEqual(2);
    expect(moved('trellis_http_request_duration_seconds_count', { route: 'api', status_class: '2xx' })).toBe(2);
    expect(moved('trellis_http_request_duration_seconds_count', { route: 'ocsp', status_class: '2xx' })).toBe(4);
    expect(sample(after, 'trellis_ca_key_state', { ca: 'issuing-1', state: 'active' })).toBe(1);
    expect(sample(after, 'trellis_ca_key_state', { ca: 'issuing-1', state: 'suspended' })).toBe(0);
    const crlAge = sample(after, 'trellis_crl_age_seconds', { ca: 'issuing-1' });
    expect(crlAge).toBeGreaterThanOrEqual(0);
    expect(sample(after, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    // Nothing secret: the tokens used above appear nowhere.
    expect(after).not.toContain(issuerToken);
    expect(after).not.toContain(adminToken);

    if (havePromtool) {
      const r = await promtool(after);
      expect(r.output).toBe('');
      expect(r.code).toBe(0);
    }
  });

  test('answers without a credential; other methods get 405', async () => {
    expect((await fetch(`${server.url}/metrics`, { method: 'POST', body: 'x' })).status).toBe(405);
  });
});

describe('GET /healthz and /readyz', () => {
  test('healthz: 200 {"status":"ok"}; readyz: 200 {"status":"ready"} while everything is in order', async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  test('readyz: 503 naming the keys check while the issuing CA key is suspended, 200 again once active', async () => {
    const at = () => ({ at: new Date(), actor: 'test' });
    expect(await pki.instance.store.cas.transitionKey('issuing-1', 'active', 'suspended', at())).toBe(true);
    try {
      const res = await fetch(`${server.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'not ready', failed: [{ check: 'keys', reason: 'no issuing CA held here has an active key (held: issuing-1)' }] });
      const text = await metricsText();
      expect(sample(text, 'trellis_ca_key_state', { ca: 'issuing-1', state: 'suspended' })).toBe(1);
      expect(sample(text, 'trellis_ca_key_state', { ca: 'issuing-1', state: 'active' })).toBe(0);
    } finally {
      expect(await pki.instance.store.cas.transitionKey('issuing-1', 'suspended', 'active', at())).toBe(true);
    }
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect(sample(await metricsText(), 'trellis_ca_key_state', { ca: 'issuing-1', state: 'active' })).toBe(1);
  });

  test('readyz: 503 naming the database when its query fails; healthz and metrics still 200', async () => {
    // The CA table taken away under the running server (and put back): the readiness query fails.
    const db = new Database(path.join(pki.dataDir, 'trellis.db'));
    db.pragma('busy_timeout = 5000');
    db.exec('ALTER TABLE "CertificateAuthority" RENAME TO "CertificateAuthorityAway"');
    try {
      const res = await fetch(`${server.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({
        status: 'not ready',
        failed: [
          { check: 'database', reason: 'the database query failed' },
          { check: 'keys', reason: 'key states unknown: the database did not answer' },
        ],
      });
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      // Metrics still answer, with the key states last read.
      expect(sample(await metricsText(), 'trellis_ca_key_state', { ca: 'issuing-1', state: 'active' })).toBe(1);
    } finally {
      db.exec('ALTER TABLE "CertificateAuthorityAway" RENAME TO "CertificateAuthority"');
      db.close();
    }
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });
});
