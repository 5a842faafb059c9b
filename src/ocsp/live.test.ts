import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fixedClock, systemClock } from '../clock/clock.js';
import type { OcspExpectations } from '../lint/ocsp.js';
import { opensslRun, tempDir } from '../../test/helpers/openssl.js';
import { refusal } from '../../test/helpers/errors.js';
import { RequestFilter } from './filter.js';
import { LiveSource, ResponderUnavailable } from './live.js';
import { parseOcspRequest } from './request.js';
import { readResponseSummary } from './response.js';
import type { ServedCa } from './source.js';
import { certIdOf, makeResponderPki, memCertificates, request, type ResponderPki } from './testing/responder-pki.js';

const tmp = tempDir('trellis-ocsp-live-');
let pki: ResponderPki;

beforeAll(async () => {
  pki = await makeResponderPki(tmp);
});
afterAll(() => tmp.cleanup());

/** The live source for the fixture CA, whose signer records the expectations it is handed. */
function setup(validitySeconds = 86_400) {
  const clock = fixedClock(systemClock.now());
  const certificates = memCertificates();
  const expectations: OcspExpectations[] = [];
  const filter = new RequestFilter({ answer: () => Promise.reject(new Error('not used')) });
  filter.setCa({ ...pki.responder, signer: { ...pki.responder.signer, sign: (tbs, x) => (expectations.push(x), pki.responder.signer.sign(tbs, x)) } });
  const ca: ServedCa = filter.ca('issuing-1')!;
  const live = new LiveSource({ certificates, clock, validitySeconds, unknownValiditySeconds: 300 });
  return { clock, certificates, ca, live, expectations };
}

async function opensslCheck(der: Buffer, args: string[]): Promise<string> {
  const f = tmp.file(`resp-${Math.random().toString(36).slice(2)}.der`);
  fs.writeFileSync(f, der);
  const r = await opensslRun(['ocsp', '-respin', f, '-CAfile', pki.caPem, ...args]);
  return r.stdout + r.stderr;
}

describe('LiveSource', () => {
  test('single: signs the status the caller read, from this second for validitySeconds; the signer gets what the lint expects', async () => {
    const { clock, certificates, ca, live, expectations } = setup();
    certificates.set('2001');
    const nowMs = clock.now().getTime();
    const record = await certificates.statusOf('issuing-1', '2001');
    const e = await live.single(ca, { der: certIdOf(pki.ca, '2001'), serialHex: '2001', hash: 'sha1' }, record, nowMs);
    expect(e.thisUpdate.getTime()).toBe(Math.floor(nowMs / 1000) * 1000);
    expect(e.nextUpdate.getTime() - e.thisUpdate.getTime()).toBe(86_400_000);
    expect(e.staleAt).toBe(e.thisUpdate.getTime() + 43_200_000);
    expect(e.der.buffer.byteLength).toBe(e.der.length); // its own memory, not a slab slice
    expect(expectations).toEqual([{ ...ca.lint, now: new Date(nowMs), singles: [{ serialHex: '2001', record }], maxValiditySeconds: 86_400 }]);
    expect(live.signed).toBe(1);
    const out = await opensslCheck(e.der, ['-issuer', pki.caPem, '-no_nonce', '-serial', '0x2001']);
    expect(out).toMatch(/Response verify OK/);
    expect(out).toMatch(/0x2001: good/);
  });

  test('unknown (no record) for the short unknown validity; nextUpdate never passes the responder certificate', async () => {
    const { clock, ca, live } = setup(30 * 86_400);
    const nowMs = clock.now().getTime();
    const unknown = await live.single(ca, { der: certIdOf(pki.ca, '2101'), serialHex: '2101', hash: 'sha1' }, null, nowMs);
    expect(readResponseSummary(unknown.der).status.status).toBe('unknown');
    expect(unknown.nextUpdate.getTime() - unknown.thisUpdate.getTime()).toBe(300_000);
    const good = await live.single(ca, { der: certIdOf(pki.ca, '2102'), serialHex: '2102', hash: 'sha1' }, { status: 'valid', revokedAt: null, revocationReason: null, notAfter: new Date(nowMs + 86_400_000) }, nowMs);
    expect(good.nextUpdate.getTime()).toBeLessThanOrEqual(pki.respNotAfter.getTime());
  });

  test('an expired responder certificate: ResponderUnavailable, nothing signed', async () => {
    const { ca, live } = setup();
    const err = await live.single(ca, { der: certIdOf(pki.ca, '2201'), serialHex: '2201', hash: 'sha1' }, null, pki.respNotAfter.getTime()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResponderUnavailable);
    expect(live.signed).toBe(0);
  });

  test('answer: every CertID’s status in one response, the nonce echoed (checked by openssl), never cacheable', async () => {
    const { certificates, ca, live, expectations } = setup();
    certificates.set('2301');
    certificates.set('2302');
    certificates.revoke('2302', new Date(systemClock.now().getTime() - 60_000), 1);
    const nonce = Buffer.alloc(16, 0x42);
    const body = request([certIdOf(pki.ca, '2301'), certIdOf(pki.ca, '2302'), certIdOf(pki.ca, '2303')], nonce);
    const r = await live.answer(parseOcspRequest(body), ca);
    expect(r.cache).toBeNull();
    expect(expectations[0]!.singles.map((s) => [s.serialHex, s.record?.status ?? null])).toEqual([['2301', 'valid'], ['2302', 'revoked'], ['2303', null]]);
    const reqFile = tmp.file('live-req.der');
    fs.writeFileSync(reqFile, body);
    const out = await opensslCheck(r.der, ['-reqin', reqFile, '-resp_text']);
    expect(out).toMatch(/Response verify OK/);
    expect(out).toMatch(/OCSP Nonce:\s*\n\s*0410(42){16}/i);
    expect(out).toMatch(/Cert Status: good[\s\S]*Cert Status: revoked[\s\S]*Revocation Reason: keyCompromise[\s\S]*Cert Status: unknown/);
  });

  test('a lint refusal from the signer (a record that breaks its invariant) rejects with lintFailed, nothing counted as signed', async () => {
    const { clock, ca, live } = setup();
    const broken = { status: 'revoked' as const, revokedAt: null, revocationReason: 1, notAfter: new Date(clock.now().getTime() + 86_400_000) };
    const err = await refusal(live.single(ca, { der: certIdOf(pki.ca, '2401'), serialHex: '2401', hash: 'sha1' }, broken, clock.now().getTime()));
    expect(err.type).toBe('lintFailed');
    expect(err.message).toMatch(/e_ocsp_status_mismatch/);
    expect(live.signed).toBe(0);
  });
});
