/**
 * The OCSP HTTP front under hostile requests (issue 12): mutated POST bodies
 * and GET paths reach the real responder (openssl-made CA and delegated
 * responder, store in memory) through ocspHandler on 127.0.0.1. Every answer
 * is an OCSPResponse that is successful or malformedRequest/unauthorized,
 * never internalError (OCSP's 500), and the handler logs no failure.
 */
import http from 'node:http';
import type net from 'node:net';
import * as asn1js from 'asn1js';
import fc from 'fast-check';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fixedClock, systemClock } from '../clock/clock.js';
import { tempDir } from '../../test/helpers/openssl.js';
import { fuzzParams, mutatedFrom } from '../pki/testing/mutate.js';
import { ocspHandler } from './http.js';
import { OcspResponder } from './responder.js';
import { responseStatus } from './response.js';
import { certIdOf, makeResponderPki, memCertificates, memResponses, request } from './testing/responder-pki.js';

const runs = fuzzParams(0x0c5c, 150);
const tmp = tempDir('trellis-ocsp-http-fuzz-');
const logs: Record<string, unknown>[] = [];
let server: http.Server;
let base: string;
let seeds: Buffer[] = [];

beforeAll(async () => {
  const pki = await makeResponderPki(tmp);
  const clock = fixedClock(systemClock.now());
  const certificates = memCertificates();
  certificates.set('1001');
  certificates.set('1002');
  certificates.revoke('1002', new Date(clock.now().getTime() - 60_000), 1);
  const log = (e: Record<string, unknown>) => void logs.push(e);
  const responder = new OcspResponder({ certificates, responses: memResponses(), clock, validitySeconds: 86_400, pollSeconds: 1, log });
  responder.setCa(pki.responder);
  const handler = ocspHandler(responder, { now: () => clock.now(), log });
  server = http.createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  seeds = [
    request([certIdOf(pki.ca, '1001')]),
    request([certIdOf(pki.ca, '1002', 'sha256'), certIdOf(pki.ca, '1003')], Buffer.alloc(16, 7)),
    request([certIdOf(pki.other, '1001')]),
  ];
}, 60_000);
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  tmp.cleanup();
});

/** The responseStatus of an OCSPResponse as pkijs reads it. */
function statusOf(der: Buffer): number {
  const asn = asn1js.fromBER(Uint8Array.from(der).buffer);
  return new pkijs.OCSPResponse({ schema: asn.result }).responseStatus.valueBlock.valueDec;
}

async function expectClientAnswer(res: Response): Promise<void> {
  expect(res.status).toBeLessThan(500);
  if (res.status !== 200) return;
  const status = statusOf(Buffer.from(await res.arrayBuffer()));
  expect([responseStatus.successful, responseStatus.malformedRequest, responseStatus.unauthorized]).toContain(status);
  expect(logs.filter((e) => e.level === 'error')).toEqual([]);
}

describe('OCSP over HTTP under hostile requests', () => {
  test('the seed requests are answered: successful for the CA, unauthorized for another CA', async () => {
    const statuses: number[] = [];
    for (const der of seeds) {
      const res = await fetch(`${base}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: der });
      statuses.push(statusOf(Buffer.from(await res.arrayBuffer())));
    }
    expect(statuses).toEqual([responseStatus.successful, responseStatus.successful, responseStatus.unauthorized]);
  });

  test('mutated POST bodies: successful, malformedRequest or unauthorized, never internalError', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedFrom(seeds), async (der) => {
        await expectClientAnswer(await fetch(`${base}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: der }));
      }),
      runs,
    );
  });

  test('mutated GET requests (base64 in the path, damaged or not): never internalError', async () => {
    const path = fc.oneof(
      mutatedFrom(seeds).map((der) => encodeURIComponent(der.toString('base64'))),
      fc.string({ unit: fc.constantFrom(...'AQ09+/=%_-.~z'.split('')), maxLength: 60 }),
    );
    await fc.assert(fc.asyncProperty(path, async (p) => expectClientAnswer(await fetch(`${base}/ocsp/${p}`))), runs);
  });
});
