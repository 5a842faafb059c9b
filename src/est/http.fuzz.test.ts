/**
 * EST simpleenroll under hostile bodies (issue 12): over real TLS, with the
 * real enrollment (test PKI, SQLite store, CA), a registered device posts
 * damaged CSRs (base64 of mutated DER, or text that is barely base64). Every
 * answer is a 4xx or an enrollment, never a 5xx, and a refused request
 * leaves no certificate behind and the device still registered.
 */
import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { deviceCsr } from '../../test/helpers/device.js';
import { openssl, tempDir } from '../../test/helpers/openssl.js';
import { testPki, type TestPki } from '../../test/helpers/test-pki.js';
import { derFromPemOrDer } from '../pki/pem.js';
import { fuzzParams, mutatedFrom } from '../pki/testing/mutate.js';
import { DeviceEnrollment, secretHashOf } from '../ra/devices/enroll.js';
import { RevocationAuthority } from '../ra/revoke.js';
import { estHandler } from './http.js';

const runs = fuzzParams(0xe57, 80);
const deviceId = 'fuzz-device-1';
const secret = 'fuzz-secret-1';
let pki: TestPki;
let tmp: ReturnType<typeof tempDir>;
let server: https.Server;
let port: number;
let caPem: string;
let csrDer: Buffer;
const errors: Record<string, unknown>[] = [];

beforeAll(async () => {
  pki = await testPki();
  tmp = tempDir('trellis-est-fuzz-');
  await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmp.file('tls.key'), '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-days', '1', '-out', tmp.file('tls.pem'));
  caPem = fs.readFileSync(tmp.file('tls.pem'), 'utf8');
  const s = pki.instance.store;
  const enrollment = new DeviceEnrollment({
    ra: pki.ra, devices: s.devices, manufacturers: s.manufacturerCas, certificates: s.certificates,
    revocation: new RevocationAuthority({ certificates: s.certificates, audit: pki.instance.audit, clock: pki.instance.clock }),
    audit: pki.instance.audit, clock: pki.instance.clock, issuingCas: () => pki.instance.cas.filter((c) => c.role === 'issuing'),
  });
  await s.devices.insert({ id: deviceId, status: 'registered', profile: 'device', issuerId: null, reprovision: 'never', attributes: {}, secretHash: secretHashOf(secret), eabKeyId: null }, new Date());
  const handler = estHandler({ enrollment, profiles: pki.instance.profiles, caChain: () => [], log: (e) => void (e.level === 'error' && errors.push(e)) });
  server = https.createServer({ cert: caPem, key: fs.readFileSync(tmp.file('tls.key')) }, (req, res) => {
    if (!handler(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
  csrDer = derFromPemOrDer((await deviceCsr(tmp.dir, deviceId)).csrPem, ['CERTIFICATE REQUEST'], 'CSR');
}, 120_000);
afterAll(async () => {
  await new Promise<void>((r) => server?.close(() => r()));
  await pki?.close();
  tmp?.cleanup();
});

function simpleenroll(body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: '/.well-known/est/simpleenroll', method: 'POST', ca: caPem, servername: 'localhost', agent: false,
        headers: { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from(`${deviceId}:${secret}`).toString('base64')}` } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Every certificate row (pending, failed or issued) the device asked for over EST. */
const rowsOfDevice = () => pki.instance.store.certificates.findRequestedBy('est', `device:${deviceId}`, new Date(0), 100);

describe('EST simpleenroll under hostile bodies', () => {
  test('damaged CSRs and near-base64 text: a 4xx, never a 5xx; the device stays registered with no certificate', async () => {
    const body = fc.oneof(
      mutatedFrom([csrDer]).map((der) => der.toString('base64')),
      fc.string({ unit: fc.constantFrom(...'MIIB+/=\r\n AQ-_'.split('')), maxLength: 80 }),
    );
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const status = await simpleenroll(b);
        expect(status).toBeGreaterThanOrEqual(400);
        expect(status).toBeLessThan(500);
        expect(errors).toEqual([]);
        expect(await pki.instance.store.devices.find(deviceId)).toMatchObject({ status: 'registered' });
        expect(await rowsOfDevice()).toEqual([]);
      }),
      runs,
    );
  });

  test('the undamaged CSR enrolls (the property above could have succeeded)', async () => {
    expect(await simpleenroll(csrDer.toString('base64'))).toBe(200);
    expect(await pki.instance.store.devices.find(deviceId)).toMatchObject({ status: 'active' });
    expect(await rowsOfDevice()).toHaveLength(1);
  });
});
