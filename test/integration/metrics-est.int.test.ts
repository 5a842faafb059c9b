/** /metrics after EST enrollments on `serve --tls`: one issued with the enrollment secret, refusals counted by their error type. */
import https from 'node:https';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { secretHashOf } from '../../src/ra/devices/enroll.js';
import { deviceCsr, estClient } from '../helpers/device.js';
import { testPassphrase, testPki, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let server: Serving;
let client: ReturnType<typeof estClient>;

beforeAll(async () => {
  pki = await testPki({ baseUrl: 'https://localhost:8443' });
  await pki.instance.store.devices.insert(
    { id: 'm-dev-1', status: 'registered', profile: 'device', issuerId: null, reprovision: 'never', attributes: {}, secretHash: secretHashOf('metrics-secret-1'), eabKeyId: null },
    new Date(),
  );
  server = await serve({ dataDir: pki.dataDir, host: '127.0.0.1', port: 0, tls: true, passphrase: testPassphrase, log: silentLogger, accessLog: false });
  client = estClient({ baseUrl: `https://127.0.0.1:${new URL(server.url).port}`, servername: 'localhost', ca: pki.rootPem });
}, 120_000);
afterAll(async () => {
  await server?.close();
  await pki?.close();
});

/** GET /metrics over HTTPS, trusting the test root. */
const metricsOverTls = () =>
  new Promise<string>((resolve, reject) => {
    https
      .get(`https://127.0.0.1:${new URL(server.url).port}/metrics`, { ca: pki.rootPem, servername: 'localhost', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`GET /metrics: ${res.statusCode}`))));
      })
      .on('error', reject);
  });

const value = (text: string, sample: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
};

test('issued, unauthorized (a wrong secret) and badCSR (a body that is no CSR) each counted; the 401 challenge is not', async () => {
  const user = { id: 'm-dev-1', secret: 'metrics-secret-1' };
  expect((await client.simpleenroll((await deviceCsr(pki.dir, 'm-dev-1')).csrB64)).status).toBe(401);
  expect((await client.simpleenroll((await deviceCsr(pki.dir, 'm-dev-1')).csrB64, { user: { ...user, secret: 'wrong-secret' } })).status).toBe(401);
  expect((await client.simpleenroll('bm90IGEgQ1NS', { user })).status).toBe(400);
  const ok = await client.simpleenroll((await deviceCsr(pki.dir, 'm-dev-1')).csrB64, { user });
  expect(ok.status, ok.text).toBe(200);
  const text = await metricsOverTls();
  expect(value(text, 'trellis_est_enrollments_total{result="issued"}')).toBe(1);
  expect(value(text, 'trellis_est_enrollments_total{result="unauthorized"}')).toBe(1);
  expect(value(text, 'trellis_est_enrollments_total{result="badCSR"}')).toBe(1);
  expect(value(text, 'trellis_certificates_issued_total{ca="issuing-1",profile="device"}')).toBe(1);
  expect(value(text, 'trellis_http_request_duration_seconds_count{route="est",status_class="4xx"}')).toBe(3);
  expect(value(text, 'trellis_http_request_duration_seconds_count{route="est",status_class="2xx"}')).toBe(1);
});
