/**
 * Client mistakes answer a precise 4xx over the admin API, ACME and the CLI,
 * never a 500: DNS names that are IPv4 addresses in disguise and the
 * unspecified address (refused in every profile), a validity shorter than
 * the profile allows, a body that does not decode under its Content-Encoding.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createToken } from '../../src/tokens/tokens.js';
import { startAcmeServer, type AcmeTestServer } from '../helpers/acme-server.js';
import { makeCsr } from '../helpers/openssl.js';
import { testPassphrase } from '../helpers/test-pki.js';

let t: AcmeTestServer;
let token: string;
let goodCsr: string;
beforeAll(async () => {
  t = await startAcmeServer();
  token = (await createToken(t.server.instance.store.tokens, 'issuer', 'mistakes')).secret;
  goodCsr = (await makeCsr(t.pki.dir, 'good', '/CN=good.example.test', { sans: 'DNS:good.example.test' })).csrPem;
});
afterAll(async () => {
  await t?.close();
});

const issue = (body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${t.server.url}/api/v1/certificates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
const rows = () => t.server.instance.store.certificates.count();

describe('names that are addresses in disguise', () => {
  const bad: [string, string][] = [
    ['127.1', 'DNS:127.1'],
    ['2130706433', 'DNS:2130706433'],
    ['0x7f.1', 'DNS:0x7f.1'],
    ['1.2.3.4.5', 'DNS:1.2.3.4.5'],
    ['0.0.0.0', 'IP:0.0.0.0'],
    ['::', 'IP:::'],
  ];
  test.each(bad)('API: a CSR naming %s is refused (400 badCSR), nothing stored', async (name, san) => {
    const { csrPem } = await makeCsr(t.pki.dir, `bad-${name.replace(/[^a-z0-9]/gi, '_')}`, '/CN=ok.example.test', { sans: `DNS:ok.example.test,${san}` });
    const before = await rows();
    const res = await issue({ profile: 'server', csr: csrPem });
    const problem = (await res.json()) as { type: string; detail: string };
    expect(res.status, JSON.stringify(problem)).toBe(400);
    expect(problem.type).toBe('urn:trellis:problem:badCSR');
    expect(problem.detail).toContain(name === '::' || name === '0.0.0.0' ? 'unspecified' : `"${name}"`);
    expect(await rows()).toBe(before);
  });

  test.each([...bad.slice(0, 4).map(([v]) => ['dns', v]), ['ip', '0.0.0.0'], ['ip', '::']])('ACME newOrder for %s %s: rejectedIdentifier', async (type, value) => {
    const c = await t.client();
    const res = await c.newOrder({ identifiers: [{ type: type as 'dns' | 'ip', value }] });
    expect(res.status).toBe(400);
    expect(res.problem?.type).toBe('urn:ietf:params:acme:error:rejectedIdentifier');
    expect(res.problem?.subproblems?.[0]?.identifier).toEqual({ type, value });
  });

  test('still issued: a name with digits that is a name', async () => {
    const { csrPem } = await makeCsr(t.pki.dir, 'a1', '/CN=a1.example', { sans: 'DNS:a1.example' });
    expect((await issue({ profile: 'server', csr: csrPem })).status).toBe(201);
  });
});

describe('validity shorter than the profile allows', () => {
  test('API: validitySeconds 1 answers 400 naming the minimum (server: backdate 5 min + 2 s), not 500 lintFailed', async () => {
    const before = await rows();
    const res = await issue({ profile: 'server', csr: goodCsr, validitySeconds: 1 });
    const problem = (await res.json()) as { type: string; detail: string };
    expect(res.status, JSON.stringify(problem)).toBe(400);
    expect(problem.type).toBe('urn:trellis:problem:malformed');
    expect(problem.detail).toMatch(/at least 302 seconds/);
    expect(await rows()).toBe(before);
  });

  test('API: the minimum is issued, and the certificate is valid when handed out', async () => {
    const res = await issue({ profile: 'server', csr: goodCsr, validitySeconds: 302 });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { notAfter: string };
    expect(new Date(body.notAfter).getTime()).toBeGreaterThanOrEqual(Date.now() - 1000);
  });

  test('CLI: trellis issue --validity 1s exits 1 naming the minimum', async () => {
    const csrPath = path.join(t.pki.dir, 'cli-short.csr');
    fs.writeFileSync(csrPath, goodCsr);
    const bin = path.join(import.meta.dirname, '../../bin/trellis.js');
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, [bin, 'issue', '--profile', 'server', '--csr', csrPath, '--validity', '1s', '--data', t.pki.dataDir], { env: { ...process.env, TRELLIS_PASSPHRASE: testPassphrase }, encoding: 'utf8' }, (err, _stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/at least 302 seconds/);
  });
});

describe('bodies that do not decode', () => {
  test('API: corrupt gzip (400 malformed), truncated gzip (400), an unknown Content-Encoding (415); never 500', async () => {
    const corrupt = await issue(Buffer.from('plainly not gzip'), { 'content-encoding': 'gzip' });
    expect(corrupt.status).toBe(400);
    expect(((await corrupt.json()) as { detail: string }).detail).toMatch(/Content-Encoding/);
    const truncated = await issue(zlib.gzipSync(JSON.stringify({ profile: 'server', csr: goodCsr })).subarray(0, 40), { 'content-encoding': 'gzip' });
    expect(truncated.status).toBe(400);
    const deflate = await issue(Buffer.from('nor deflate'), { 'content-encoding': 'deflate' });
    expect(deflate.status).toBe(400);
    const unknown = await issue(Buffer.from('{}'), { 'content-encoding': 'x-trellis' });
    expect(unknown.status).toBe(415);
    expect(((await unknown.json()) as { type: string }).type).toBe('urn:trellis:problem:unsupportedMediaType');
  });

  test('API: a well-formed gzip body is read', async () => {
    const res = await issue(zlib.gzipSync(JSON.stringify({ profile: 'server', csr: goodCsr })), { 'content-encoding': 'gzip' });
    expect(res.status).toBe(201);
  });
});
