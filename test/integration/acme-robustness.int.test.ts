/**
 * Bad input never reaches a 500: every ACME endpoint, fed junk bodies and
 * validly signed junk payloads, answers a 4xx problem document with a fresh
 * nonce, and the server keeps serving.
 */
import http from 'node:http';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { assertOk, type AcmeClient } from '../helpers/acme-client.js';
import { startAcmeServer, type AcmeTestServer } from '../helpers/acme-server.js';

let t: AcmeTestServer;
let c: AcmeClient;
let endpoints: string[];
beforeAll(async () => {
  // The public base URL is https (a TLS-terminating proxy in front); the clients talk plain HTTP to the node.
  t = await startAcmeServer({ baseUrl: 'https://acme.example.test' });
  c = await t.client();
  const orderRes = await c.newOrder({ identifiers: ['127.0.0.1'] });
  const order = assertOk(orderRes, 'newOrder', [201]);
  const authz = assertOk(await c.getAuthorization(order.authorizations[0]!));
  const d = c.directory;
  endpoints = [d.newAccount, d.newOrder, d.revokeCert, d.keyChange, c.accountUrl!, `${c.accountUrl}/orders`, orderRes.location!, order.finalize, order.authorizations[0]!, authz.challenges[0]!.url, `${t.baseUrl}/acme/cert/issuing-1/00`];
});
afterAll(() => t?.close());

const junkBodies = ['', 'null', '[]', '{}', '"x"', '1e999', '{"protected":1,"payload":2,"signature":3}', '{"protected":"","payload":"","signature":""}', '{'.repeat(5000), JSON.stringify({ protected: 'eyJhbGciOiJFUzI1NiJ9', payload: '', signature: 'AA' })];
const junkPayloads: unknown[] = [null, [], 'x', 42, { identifiers: 'x' }, { identifiers: [null] }, { identifiers: [{ type: 'dns', value: 7 }] }, { csr: 'A' }, { csr: '!!' }, { certificate: '' }, { certificate: 'AAAA', reason: 'x' }, { contact: 'mailto:a@b.c' }, { status: 'valid' }, { protected: 'e30', payload: '', signature: '' }, { onlyReturnExisting: 'yes' }, { externalAccountBinding: 'x' }, { identifiers: Array.from({ length: 2000 }, (_, i) => ({ type: 'dns', value: `n${i}.test` })) }];

test('junk bodies on every endpoint: 4xx problem documents with a nonce, never a 500', async () => {
  for (const url of endpoints) {
    for (const body of junkBodies) {
      const res = await c.post(url, undefined, { body });
      expect(res.status, `${url} ${body.slice(0, 40)}: ${res.text}`).toBeGreaterThanOrEqual(400);
      expect(res.status, `${url} ${body.slice(0, 40)}: ${res.text}`).toBeLessThan(500);
      expect(res.contentType).toMatch(/^application\/problem\+json/);
      expect(res.nonce).toBeTruthy();
    }
  }
});

test('validly signed junk payloads on every endpoint: never a 500', async () => {
  for (const url of endpoints) {
    for (const payload of junkPayloads) {
      const auth = url === c.directory.newAccount ? { auth: 'jwk' as const } : {};
      const res = await c.post(url, payload, auth);
      expect(res.status, `${url} ${JSON.stringify(payload).slice(0, 60)}: ${res.text}`).toBeLessThan(500);
    }
  }
  // Still serving.
  expect((await c.newOrder({ identifiers: ['127.0.0.1'] })).status).toBe(201);
});

test('behind a TLS-terminating proxy: every request gets the base URL\'s https URLs, whatever its Host', async () => {
  const get = (host: string) =>
    new Promise<Record<string, string>>((resolve, reject) => {
      http.get(`${t.server.url}/acme/directory`, { headers: { host } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(JSON.parse(body)));
      }).on('error', reject);
    });
  expect((await get('acme.example.test')).newOrder).toBe('https://acme.example.test/acme/server/new-order');
  expect((await get('127.0.0.1:1234')).newOrder).toBe('https://acme.example.test/acme/server/new-order');
});
