/**
 * RFC 8555 §6 request authentication against a running server: every
 * malformed or misdirected JWS is refused with its ACME error type as
 * application/problem+json and a fresh Replay-Nonce, and nothing changes.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { b64u, generateAcmeKey, type AcmeClient, type AcmeResponse } from '../helpers/acme-client.js';
import { startAcmeServer, type AcmeTestServer } from '../helpers/acme-server.js';

let t: AcmeTestServer;
let client: AcmeClient;
beforeAll(async () => {
  t = await startAcmeServer();
  client = await t.client();
});
afterAll(() => t?.close());

function expectProblem(res: AcmeResponse, type: string, status?: number) {
  expect(res.contentType).toMatch(/^application\/problem\+json/);
  expect(res.problem?.type, res.text).toBe(`urn:ietf:params:acme:error:${type}`);
  if (status) expect(res.status).toBe(status);
  // RFC 8555 §6.5: error answers carry a fresh nonce too.
  expect(res.nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
}

const newOrderBody = { identifiers: [{ type: 'ip', value: '127.0.0.1' }] };

describe('refused, with the right ACME error type', () => {
  test('rejects: alg none (badSignatureAlgorithm, with the supported list)', async () => {
    const res = await client.post(client.directory.newOrder, newOrderBody, { alg: 'none', signature: '' });
    expectProblem(res, 'badSignatureAlgorithm', 400);
    expect(res.problem?.algorithms).toEqual(['ES256', 'ES384', 'RS256', 'EdDSA']);
  });

  test('rejects: a MAC algorithm (HS256) on a request', async () => {
    const res = await client.post(client.directory.newOrder, newOrderBody, { alg: 'HS256' });
    expectProblem(res, 'badSignatureAlgorithm', 400);
  });

  test('rejects: signed by a key that is not the account key (kid of this account)', async () => {
    const res = await client.post(client.directory.newOrder, newOrderBody, { key: generateAcmeKey('ES256'), auth: 'kid' });
    expectProblem(res, 'malformed', 400);
    expect(res.problem?.detail).toMatch(/does not verify/);
  });

  test('rejects: a tampered signature', async () => {
    expectProblem(await client.post(client.directory.newOrder, newOrderBody, { tamperSignature: true }), 'malformed', 400);
  });

  test('rejects: a url header that is not the URL requested (unauthorized)', async () => {
    const res = await client.post(client.directory.newOrder, newOrderBody, { url: client.directory.newAccount });
    expectProblem(res, 'unauthorized', 401);
  });

  test('rejects: no url header', async () => {
    expectProblem(await client.post(client.directory.newOrder, newOrderBody, { url: null }), 'malformed', 400);
  });

  test('rejects: no nonce (badNonce)', async () => {
    expectProblem(await client.post(client.directory.newOrder, newOrderBody, { nonce: null }), 'badNonce', 400);
  });

  test('rejects: a nonce this server never issued', async () => {
    expectProblem(await client.post(client.directory.newOrder, newOrderBody, { nonce: b64u(crypto.randomBytes(32)) }), 'badNonce', 400);
  });

  test('rejects: a replayed nonce; the fresh Replay-Nonce of the refusal works', async () => {
    const nonce = await client.newNonce();
    const first = await client.post(client.directory.newOrder, newOrderBody, { nonce });
    expect(first.status).toBe(201);
    const replay = await client.post(client.directory.newOrder, newOrderBody, { nonce });
    expectProblem(replay, 'badNonce', 400);
    const retry = await client.post(client.directory.newOrder, newOrderBody, { nonce: replay.nonce! });
    expect(retry.status).toBe(201);
  });

  test('a nonce is used once even by 12 concurrent requests', async () => {
    const nonce = await client.newNonce();
    const results = await Promise.all(Array.from({ length: 12 }, () => client.post(client.directory.newOrder, newOrderBody, { nonce })));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 201)) expectProblem(r, 'badNonce', 400);
  });

  test('rejects: both jwk and kid', async () => {
    expectProblem(await client.post(client.directory.newOrder, newOrderBody, { auth: 'both' }), 'malformed', 400);
  });

  test('rejects: jwk where an account (kid) must sign', async () => {
    expectProblem(await client.post(client.directory.newOrder, newOrderBody, { auth: 'jwk' }), 'malformed', 400);
  });

  test('rejects: kid on newAccount', async () => {
    expectProblem(await client.post(client.directory.newAccount, {}, { auth: 'kid' }), 'malformed', 400);
  });

  test('rejects: a kid that names no account (accountDoesNotExist)', async () => {
    const kid = client.accountUrl!.replace(/[^/]+$/, 'AAAAAAAAAAAAAAAA');
    expectProblem(await client.post(client.directory.newOrder, newOrderBody, { kid }), 'accountDoesNotExist', 400);
  });

  test('rejects: an unprotected header member', async () => {
    expectProblem(await client.post(client.directory.newOrder, newOrderBody, { unprotected: { alg: 'ES256' } }), 'malformed', 400);
  });

  test('rejects: an extra top-level member, and a crit header', async () => {
    const noncePlain = await client.newNonce();
    const extra = await client.post(client.directory.newOrder, undefined, { body: JSON.stringify({ protected: 'e30', payload: '', signature: '', nonce: noncePlain }) });
    expectProblem(extra, 'malformed', 400);
    expectProblem(await client.post(client.directory.newOrder, newOrderBody, { extra: { crit: ['b64'], b64: false } }), 'malformed', 400);
  });

  test('rejects: the wrong media type (415) and a body over the limit (413)', async () => {
    expectProblem(await client.post(client.directory.newOrder, newOrderBody, { contentType: 'application/json' }), 'malformed', 415);
    expectProblem(await client.post(client.directory.newOrder, undefined, { body: JSON.stringify({ protected: 'x'.repeat(70_000), payload: '', signature: '' }) }), 'malformed', 413);
  });

  test('rejects: a body that is not JSON, and base64url with padding', async () => {
    expectProblem(await client.post(client.directory.newOrder, undefined, { body: '{"protected": ' }), 'malformed', 400);
    const res = await client.post(client.directory.newOrder, newOrderBody, { protectedRaw: `${b64u(JSON.stringify({ alg: 'ES256', url: client.directory.newOrder, kid: client.accountUrl, nonce: await client.newNonce() }))}==` });
    expectProblem(res, 'malformed', 400);
  });

  test('rejects: a payload that is not JSON', async () => {
    expectProblem(await client.post(client.directory.newOrder, undefined, { payloadRaw: '{identifiers' }), 'malformed', 400);
  });
});

describe('accepted', () => {
  test('every supported algorithm: ES256, ES384, RS256, EdDSA accounts order', async () => {
    for (const alg of ['ES384', 'RS256', 'EdDSA'] as const) {
      const c = await t.client({ key: generateAcmeKey(alg) });
      const res = await c.newOrder({ identifiers: ['127.0.0.1'] });
      expect(res.status, `${alg}: ${res.text}`).toBe(201);
    }
  });

  test('newNonce: HEAD 200 and GET 204, no-store, each with a fresh nonce', async () => {
    const head = await client.newNonceResponse('HEAD');
    const get = await client.newNonceResponse('GET');
    expect([head.status, get.status]).toEqual([200, 204]);
    expect(head.headers['cache-control']).toBe('no-store');
    expect(head.nonce).not.toBe(get.nonce);
  });

  test('the directory lists every resource and the profiles', async () => {
    const d = client.directory;
    for (const k of ['newNonce', 'newAccount', 'newOrder', 'revokeCert', 'keyChange', 'renewalInfo']) expect(d[k], k).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/acme\/server\//);
    expect(d.meta?.externalAccountRequired).toBe(false);
    expect(Object.keys(d.meta?.profiles as object)).toEqual(['client', 'device', 'server']);
  });
});
