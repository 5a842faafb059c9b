import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fixedClock, systemClock } from '../clock/clock.js';
import { errorResponse, responseStatus, type ErrorStatusName } from '../ocsp/response.js';
import { certIdOf, makeResponderPki, memCertificates, request, type ResponderPki } from '../ocsp/testing/responder-pki.js';
import { opensslRun, tempDir } from '../../test/helpers/openssl.js';
import { ServeMetrics } from './serve-metrics.js';
import { CountedOcspResponder } from './counted.js';
import { ocspAnswerStatusOf } from './ocsp-status.js';

const tmp = tempDir('trellis-metrics-ocsp-');
let pki: ResponderPki;

beforeAll(async () => {
  pki = await makeResponderPki(tmp);
});
afterAll(() => tmp.cleanup());

/** A real responder for the fixture CA over in-memory status rows: 2001 valid, 2002 revoked (keyCompromise), 2003 never issued. */
function responder() {
  const certificates = memCertificates();
  certificates.set('2001');
  certificates.set('2002');
  certificates.revoke('2002', new Date(systemClock.now().getTime() - 60_000), 1);
  const metrics = new ServeMetrics({ now: () => systemClock.now(), ocsp: () => r.stats(), crls: () => [], keyStates: async () => [] }, { defaultMetrics: false });
  const r: CountedOcspResponder = new CountedOcspResponder({ certificates, clock: fixedClock(systemClock.now()), validitySeconds: 3600, pollSeconds: 60 }, metrics);
  r.setCa(pki.responder);
  return { r, metrics };
}

/** What openssl reads in the response, for the serials asked. */
async function opensslSays(der: Buffer, serials: string[]): Promise<string> {
  const f = tmp.file(`resp-${Math.random().toString(36).slice(2)}.der`);
  fs.writeFileSync(f, der);
  const r = await opensslRun(['ocsp', '-respin', f, '-CAfile', pki.caPem, '-issuer', pki.caPem, '-no_nonce', ...serials.flatMap((s) => ['-serial', `0x${s}`])]);
  return r.stdout + r.stderr;
}

describe('ocspAnswerStatusOf', () => {
  test.each([
    ['2001', 'good'],
    ['2002', 'revoked'],
    ['2003', 'unknown'],
  ] as const)('serial %s: %s, as openssl reads it', async (serialHex, status) => {
    const { r } = responder();
    const der = await r.respond(request([certIdOf(pki.ca, serialHex)]));
    expect(ocspAnswerStatusOf(der)).toBe(status);
    expect(await opensslSays(der, [serialHex])).toMatch(new RegExp(`0x${serialHex}: ${status}`));
  });

  test('several certificates: revoked if any is, else unknown if any is, else good', async () => {
    const { r } = responder();
    const ask = (...serials: string[]) => r.respond(request(serials.map((s) => certIdOf(pki.ca, s))));
    expect(ocspAnswerStatusOf(await ask('2001', '2002', '2003'))).toBe('revoked');
    expect(ocspAnswerStatusOf(await ask('2001', '2003'))).toBe('unknown');
    expect(ocspAnswerStatusOf(await ask('2001', '2001'))).toBe('good');
  });

  test.each(Object.keys(responseStatus).filter((s) => s !== 'successful') as ErrorStatusName[])('error response %s', (s) => {
    expect(ocspAnswerStatusOf(errorResponse(s))).toBe(s);
  });

  test('the responder refuses: malformedRequest for bytes that are no request, unauthorized for a CA it does not serve', async () => {
    const { r } = responder();
    expect(ocspAnswerStatusOf(await r.respond(Buffer.from('not an OCSP request')))).toBe('malformedRequest');
    expect(ocspAnswerStatusOf(await r.respond(request([certIdOf(pki.other, '2001')])))).toBe('unauthorized');
  });

  test("with the cache's ETag, a copy of an answer is known by its ETag without being read again", async () => {
    const { r } = responder();
    const good = await r.respond(request([certIdOf(pki.ca, '2001')]));
    const revoked = await r.respond(request([certIdOf(pki.ca, '2002')]));
    expect(ocspAnswerStatusOf(Buffer.from(good), '"etag-of-good"')).toBe('good');
    // The same ETag names the same bytes: what was read for it stands (these bytes are not looked at).
    expect(ocspAnswerStatusOf(Buffer.from('not read'), '"etag-of-good"')).toBe('good');
    expect(ocspAnswerStatusOf(Buffer.from(revoked), '"etag-of-revoked"')).toBe('revoked');
  });

  test('unreadable: bytes that are no OCSPResponse, a truncated one, an unknown responseStatus', async () => {
    const { r } = responder();
    const good = await r.respond(request([certIdOf(pki.ca, '2001')]));
    expect(ocspAnswerStatusOf(Buffer.from('junk'))).toBe('unreadable');
    expect(ocspAnswerStatusOf(Buffer.from(good.subarray(0, good.length - 10)))).toBe('unreadable');
    expect(ocspAnswerStatusOf(Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x04]))).toBe('unreadable');
  });
});

describe('CountedOcspResponder', () => {
  test('counts each answer by status, cache hits included', async () => {
    const { r, metrics } = responder();
    const good = request([certIdOf(pki.ca, '2001')]);
    await r.respond(good);
    await r.respond(good); // from the LRU this time
    expect(r.answerCached(good)).toBeDefined(); // and again, without a promise
    expect(r.answerCached(request([certIdOf(pki.ca, '2003')]))).toBeUndefined(); // not held: not answered, not counted
    await r.respond(request([certIdOf(pki.ca, '2002')]));
    await r.respond(Buffer.from('junk'));
    const text = await metrics.text();
    expect(text).toMatch(/^trellis_ocsp_responses_total\{status="good"\} 3$/m);
    expect(text).toMatch(/^trellis_ocsp_responses_total\{status="revoked"\} 1$/m);
    expect(text).toMatch(/^trellis_ocsp_responses_total\{status="malformedRequest"\} 1$/m);
    expect(text).toMatch(/^trellis_ocsp_cache_hits_total\{cache="memory"\} 2$/m);
    expect(text).toMatch(/^trellis_ocsp_responses_signed_total 2$/m);
    expect(text).toMatch(/^trellis_ocsp_cache_entries 2$/m);
  });
});
