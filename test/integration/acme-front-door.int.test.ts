/**
 * What ACME takes from the request line and headers, and what it must not.
 * Every URL comes from the base URL, whatever Host says (a directory is
 * cacheable: a URL from Host would point other clients at the attacker's
 * host). X-Forwarded-For names the client only when the peer is a listed
 * proxy; the address it yields keys the per-address rate limits and goes to
 * the access log. Bodies that do not decode answer 4xx, and every answer
 * carries its request id.
 */
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { assertOk, AcmeClient } from '../helpers/acme-client.js';
import { startAcmeServer, type AcmeTestServer } from '../helpers/acme-server.js';

const limits = (newAccountsPerAddressPerHour: number) => ({
  rateLimits: { newOrdersPerAccountPerHour: 3000, newOrdersPerAddressPerHour: 10000, failedValidationsPerAccountPerHour: 60, failedValidationsPerAddressPerHour: 300, newAccountsPerAddressPerHour },
});
/** The access line of request `id`: written when the answer is handed to the socket, so possibly just after the client read it. */
async function accessLine(lines: Record<string, unknown>[], id: unknown): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 200; i++) {
    const line = lines.find((l) => l.msg === 'request' && l.reqId === id);
    if (line) return line;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}

describe('no trusted proxy: Host and X-Forwarded-For change nothing', () => {
  let t: AcmeTestServer;
  const lines: Record<string, unknown>[] = [];
  beforeAll(async () => {
    // One new account per address and hour, so the address the server used is visible.
    t = await startAcmeServer({ acme: limits(1), log: (e) => lines.push(e) });
  });
  afterAll(async () => {
    await t?.close();
  });

  test('Host: evil.example: the directory (cacheable) and the new account\'s Location and Link name the base URL', async () => {
    const c = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
    const evil = { headers: { host: 'evil.example' } };
    const dir = await c.get(t.directoryUrl(), evil.headers);
    expect(dir.status).toBe(200);
    expect(dir.headers['cache-control']).toMatch(/public/);
    const urls = [dir.json.newNonce, dir.json.newAccount, dir.json.newOrder, dir.json.revokeCert, dir.json.keyChange, dir.json.renewalInfo, ...Object.values<string>(dir.json.meta.profiles)];
    for (const u of urls) expect(u.startsWith(`${t.baseUrl}/acme/`), u).toBe(true);
    expect(JSON.stringify(dir.json)).not.toContain('evil.example');

    const acct = await c.newAccount({ termsOfServiceAgreed: true }, evil);
    expect(acct.status).toBe(201);
    expect(acct.headers.location).toMatch(new RegExp(`^${t.baseUrl}/acme/acct/`));
    expect(acct.links.map((l) => l.url).every((u) => u.startsWith(`${t.baseUrl}/acme/`))).toBe(true);
    expect(acct.json?.orders?.startsWith(`${t.baseUrl}/acme/acct/`)).toBe(true);

    const nonce = await c.request('HEAD', dir.json.newNonce, { headers: evil.headers });
    expect(nonce.links.map((l) => l.url)).toEqual([`${t.baseUrl}/acme/server/directory`]);
  });

  test('rejects: a JWS signed for the URL Host names (RFC 8555 §6.4: unauthorized)', async () => {
    const c = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
    const res = await c.newAccount({ termsOfServiceAgreed: true }, { headers: { host: 'evil.example' }, url: 'http://evil.example/acme/server/new-account' });
    expect(res.status).toBe(401);
    expect(res.problem?.type).toBe('urn:ietf:params:acme:error:unauthorized');
  });

  test('X-Forwarded-For from a peer that is not a trusted proxy is ignored: rate limit and access log use the peer', async () => {
    // The first test's account used this peer's one new account of the hour.
    const c = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
    const res = await c.newAccount({ termsOfServiceAgreed: true }, { headers: { 'x-forwarded-for': '203.0.113.50' } });
    expect(res.status).toBe(429);
    expect(res.problem?.type).toBe('urn:ietf:params:acme:error:rateLimited');
    expect((await accessLine(lines, res.headers['x-request-id']))?.address).toBe('127.0.0.1');
  });

  test('rejects: a body that does not decode under its Content-Encoding (400 malformed), an unknown encoding (415); never 500', async () => {
    const c = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
    const corrupt = await c.request('POST', c.directory.newAccount, { body: Buffer.from('this is not gzip at all'), headers: { 'content-type': 'application/jose+json', 'content-encoding': 'gzip' } });
    expect(corrupt.status).toBe(400);
    expect(corrupt.problem?.type).toBe('urn:ietf:params:acme:error:malformed');
    expect(corrupt.problem?.detail).toMatch(/Content-Encoding/);
    expect(corrupt.nonce).toBeTruthy();
    const truncated = await c.request('POST', c.directory.newAccount, { body: zlib.gzipSync('{"protected":""}').subarray(0, 12), headers: { 'content-type': 'application/jose+json', 'content-encoding': 'gzip' } });
    expect(truncated.status).toBe(400);
    const unknown = await c.request('POST', c.directory.newAccount, { body: Buffer.from('{}'), headers: { 'content-type': 'application/jose+json', 'content-encoding': 'x-trellis' } });
    expect(unknown.status).toBe(415);
    expect(unknown.problem?.detail).toMatch(/x-trellis/);
  });

  test('every answer carries its request id, which the access log line names', async () => {
    const c = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
    const res = await c.get(t.directoryUrl());
    const id = res.headers['x-request-id'] as string;
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(await accessLine(lines, id)).toMatchObject({ path: '/acme/directory', status: 200, address: '127.0.0.1' });
  });
});

describe('behind a trusted proxy', () => {
  let t: AcmeTestServer;
  const lines: Record<string, unknown>[] = [];
  beforeAll(async () => {
    t = await startAcmeServer({ acme: limits(1), trustedProxies: ['127.0.0.0/8'], log: (e) => lines.push(e) });
  });
  afterAll(async () => {
    await t?.close();
  });

  test('X-Forwarded-For from a trusted peer names the client: per-address limits count it, the access log shows it', async () => {
    const from = (address: string) => ({ headers: { 'x-forwarded-for': address } });
    const a = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
    const first = assertOk(await a.newAccount({ termsOfServiceAgreed: true }, from('203.0.113.1')), 'newAccount', [201]);
    expect(first.status).toBe('valid');
    // The same forwarded address again: its one account of the hour is used.
    const b = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
    const again = await b.newAccount({ termsOfServiceAgreed: true }, from('203.0.113.1'));
    expect(again.status).toBe(429);
    // Another forwarded address has its own budget (the peer is 127.0.0.1 for all three).
    expect((await b.newAccount({ termsOfServiceAgreed: true }, from('203.0.113.2'))).status).toBe(201);
    // A client-supplied entry left of the proxy's own does not count.
    const c = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
    const spoof = await c.newAccount({ termsOfServiceAgreed: true }, from('198.51.100.77, 203.0.113.1'));
    expect(spoof.status).toBe(429);
    expect((await accessLine(lines, spoof.headers['x-request-id']))?.address).toBe('203.0.113.1');
  });

  test('forwarded headers never build URLs', async () => {
    const c = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
    const dir = await c.get(t.directoryUrl(), { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' });
    expect(dir.json.newOrder).toBe(`${t.baseUrl}/acme/server/new-order`);
  });
});

test('serve refuses a --trusted-proxy that is not a CIDR block, naming it, before it starts', async () => {
  const { execFile } = await import('node:child_process');
  const bin = new URL('../../bin/trellis.js', import.meta.url).pathname;
  const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(process.execPath, [bin, 'serve', '--data', '/nonexistent/trellis-data', '--trusted-proxy', '10.0.0.1/8'], { env: { ...process.env, TRELLIS_PASSPHRASE: 'unused here' }, encoding: 'utf8' }, (err, _stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
    ),
  );
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/--trusted-proxy\): "10\.0\.0\.1\/8" is not a CIDR block.*did you mean 10\.0\.0\.0\/8/);
});
