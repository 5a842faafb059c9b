/** /metrics after an ACME issuance (in-test client, real validation over loopback): the order's states, the issuance, the acme route class. */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { AcmeClient, assertOk } from '../helpers/acme-client.js';
import { startAcmeServer, type AcmeTestServer } from '../helpers/acme-server.js';

let t: AcmeTestServer;
beforeAll(async () => {
  t = await startAcmeServer({ zone: { 'm.acme.test': { a: ['127.0.0.1'] } } });
});
afterAll(() => t?.close());

const value = (text: string, sample: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
};

test('an order through pending, processing and valid; the certificate counted under its profile', async () => {
  const client = await AcmeClient.create({ directoryUrl: t.directoryUrl() });
  assertOk(await client.newAccount({ termsOfServiceAgreed: true }), 'newAccount', [201]);
  const { order } = await client.obtainCertificate({ identifiers: ['m.acme.test'], challengeType: 'http-01', respond: (_a, ch, keyAuth) => t.http01.set(ch.token, keyAuth) });
  expect(order.status).toBe('valid');
  client.close();
  const res = await fetch(`${t.server.url}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  expect(value(text, 'trellis_acme_orders_total{state="pending"}')).toBe(1);
  expect(value(text, 'trellis_acme_orders_total{state="processing"}')).toBe(1);
  expect(value(text, 'trellis_acme_orders_total{state="valid"}')).toBe(1);
  expect(value(text, 'trellis_acme_orders_total{state="invalid"}')).toBeUndefined();
  const profile = t.server.instance.config.acme.defaultProfile;
  expect(value(text, `trellis_certificates_issued_total{ca="issuing-1",profile="${profile}"}`)).toBe(1);
  expect(value(text, 'trellis_http_request_duration_seconds_count{route="acme",status_class="2xx"}')).toBeGreaterThanOrEqual(6);
});
