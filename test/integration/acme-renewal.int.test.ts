/**
 * RFC 9773 renewal information, `replaces`, the operator's `trellis acme
 * renew-early`, rate limits, and slow validations answered with Retry-After.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ariCertId, assertOk, buildCsr, keyAuthorization, type AcmeClient, type AcmeResponse } from '../helpers/acme-client.js';
import { startAcmeServer, type AcmeTestServer } from '../helpers/acme-server.js';

const run = promisify(execFile);
const bin = path.join(import.meta.dirname, '../../bin/trellis.js');
const acmeType = (res: AcmeResponse) => res.problem?.type.replace('urn:ietf:params:acme:error:', '');

let t: AcmeTestServer;
beforeAll(async () => {
  t = await startAcmeServer({ acme: { rateLimits: { newOrdersPerAccountPerHour: 8, newOrdersPerAddressPerHour: 10000, failedValidationsPerAccountPerHour: 2, failedValidationsPerAddressPerHour: 300, newAccountsPerAddressPerHour: 300 } } });
});
afterAll(() => t?.close());

async function certificateFor(c: AcmeClient, names: string[], replaces?: string) {
  const { certificate } = await c.obtainCertificate({
    identifiers: names,
    challengeType: 'http-01',
    respond: (_a, ch, keyAuth) => t.http01.set(ch.token, keyAuth),
    ...(replaces ? { order: { replaces } } : {}),
  });
  return certificate;
}

describe('renewalInfo', () => {
  test('the window lies in the last third of the validity; renew-early pulls it to now; a revoked certificate is due at once', async () => {
    const c = await t.client();
    const cert = await certificateFor(c, ['127.0.0.1']);
    const info = assertOk(await c.renewalInfo(cert.leafDer));
    expect(Number((await c.renewalInfo(cert.leafDer)).headers['retry-after'])).toBeGreaterThan(0);
    const start = Date.parse(info.suggestedWindow.start);
    const end = Date.parse(info.suggestedWindow.end);
    const days = (ms: number) => ms / 86400_000;
    expect(days(start - Date.now())).toBeGreaterThan(55);
    expect(days(end - Date.now())).toBeLessThan(80);
    expect(end).toBeGreaterThan(start);

    const serial = new X509Certificate(cert.leafDer).serialNumber;
    const { stdout } = await run(process.execPath, [bin, 'acme', 'renew-early', '--serial', serial, '--within', '2h', '--json', '--data', t.pki.dataDir]);
    expect(JSON.parse(stdout).certificates).toBe(1);
    const pulled = assertOk(await c.renewalInfo(cert.leafDer));
    expect(Math.abs(Date.parse(pulled.suggestedWindow.start) - Date.now())).toBeLessThan(60_000);
    expect(Date.parse(pulled.suggestedWindow.end) - Date.parse(pulled.suggestedWindow.start)).toBe(2 * 3600_000);

    expect((await c.revokeCert(cert.leafDer, { reason: 4 })).status).toBe(200);
    const revoked = assertOk(await c.renewalInfo(cert.leafDer));
    expect(Date.parse(revoked.suggestedWindow.end)).toBeLessThan(Date.now());
  });

  test('rejects: a malformed certificate id (malformed), an unknown one (404)', async () => {
    const c = await t.client();
    expect(acmeType(await c.renewalInfo('not-an-ari-id'))).toBe('malformed');
    const unknown = await c.renewalInfo('AAAA.AQ');
    expect(unknown.status).toBe(404);
  });

  test('replaces: an order may replace a certificate of its account once (alreadyReplaced after), never another account\'s', async () => {
    const c = await t.client();
    const old = await certificateFor(c, ['127.0.0.1']);
    const id = ariCertId(old.leafDer);
    const stranger = await t.client();
    expect(acmeType(await stranger.newOrder({ identifiers: ['127.0.0.1'], replaces: id }))).toBe('unauthorized');
    const renewed = await c.newOrder({ identifiers: ['127.0.0.1'], replaces: id });
    expect(renewed.status, renewed.text).toBe(201);
    expect(renewed.json!.replaces).toBe(id);
    const again = await c.newOrder({ identifiers: ['127.0.0.1'], replaces: id });
    expect(again.status).toBe(409);
    expect(acmeType(again)).toBe('alreadyReplaced');
  });
});

describe('rate limits', () => {
  test('new orders per account: rateLimited with Retry-After once the hourly budget is spent', async () => {
    const c = await t.client();
    const statuses: number[] = [];
    for (let i = 0; i < 9; i++) statuses.push((await c.newOrder({ identifiers: [`n${i}.rate.test`] })).status);
    expect(statuses.slice(0, 8)).toEqual(Array(8).fill(201));
    const limited = await c.newOrder({ identifiers: ['last.rate.test'] });
    expect(limited.status).toBe(429);
    expect(acmeType(limited)).toBe('rateLimited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another account is not affected.
    expect((await (await t.client()).newOrder({ identifiers: ['other.rate.test'] })).status).toBe(201);
  });

  test('failed validations per account', async () => {
    const c = await t.client();
    const types: (string | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      const order = assertOk(await c.newOrder({ identifiers: [`fail${i}.rate.test`] }), 'newOrder', [201]);
      const [authz] = await c.getAuthorizations(order);
      const res = await c.respondToChallenge(authz!.challenges[0]!.url);
      types.push(res.status === 200 ? res.json!.status : acmeType(res));
    }
    expect(types).toEqual(['invalid', 'invalid', 'rateLimited']);
  });
});

test('a slow validation answers processing with Retry-After: 1, and completes in the background', async () => {
  const c = await t.client();
  const order = assertOk(await c.newOrder({ identifiers: ['127.0.0.1'] }), 'newOrder', [201]);
  const [authz] = await c.getAuthorizations(order);
  const ch = authz!.challenges.find((x) => x.type === 'http-01')!;
  t.http01.set(ch.token, { body: keyAuthorization(ch.token, c.key), delayMs: 2600 });
  const res = await c.respondToChallenge(ch.url);
  expect(res.json!.status).toBe('processing');
  expect(res.headers['retry-after']).toBe('1');
  const done = assertOk(await c.pollAuthorization(order.authorizations[0]!, { timeoutMs: 15_000 }));
  expect(done.status).toBe('valid');
  const fin = assertOk(await c.finalize(order.finalize, buildCsr({ identifiers: ['127.0.0.1'] }).csrDer));
  expect(fin.status).toBe('valid');
});
