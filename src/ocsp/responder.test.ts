import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fixedClock, systemClock } from '../clock/clock.js';
import type { ParsedCertificate } from '../pki/certificate.js';
import { int, octetString, oid, seq } from '../pki/der.js';
import { opensslRun, tempDir } from '../../test/helpers/openssl.js';
import { hashOids, issuerHashes, type CertIdHash } from './request.js';
import { OcspResponder, type ResponderOptions } from './responder.js';
import { errorResponse, readResponseSummary } from './response.js';
import { certIdOf, makeResponderPki, memCertificates, memResponses, request, type ResponderPki } from './testing/responder-pki.js';

// ---- fixture: an issuing CA and its delegated responder, made by openssl (testing/responder-pki.ts) ---

const tmp = tempDir('trellis-ocsp-responder-');
let pki: ResponderPki;

beforeAll(async () => {
  pki = await makeResponderPki(tmp);
});
afterAll(() => tmp.cleanup());

// ---- requests -----------------------------------------------------------------------------------

const certIdFor = (serialHex: string, hash: CertIdHash = 'sha1', ca: ParsedCertificate = pki.ca) => certIdOf(ca, serialHex, hash);

function setup(over: Partial<ResponderOptions> = {}) {
  const clock = fixedClock(systemClock.now());
  const certificates = memCertificates();
  const responses = memResponses();
  const logs: Record<string, unknown>[] = [];
  const responder = new OcspResponder({ certificates, responses, clock, validitySeconds: 86_400, pollSeconds: 1, log: (e) => logs.push(e), ...over });
  responder.setCa(pki.responder);
  return { clock, certificates, responses, responder, logs };
}

/** `openssl ocsp -respin` on a response: verifies the signature against the CA and prints each serial's status. */
async function opensslCheck(der: Buffer, serials: string[], extra: string[] = []): Promise<string> {
  const f = tmp.file(`resp-${Math.random().toString(36).slice(2)}.der`);
  fs.writeFileSync(f, der);
  const r = await opensslRun(['ocsp', '-respin', f, '-issuer', pki.caPem, '-CAfile', pki.caPem, '-no_nonce', ...extra, ...serials.flatMap((s) => ['-serial', `0x${s}`])]);
  return r.stdout + r.stderr;
}

// ---- tests --------------------------------------------------------------------------------------

describe('OcspResponder: answers checked by openssl', () => {
  test('good, revoked with reason, unknown (never issued and still pending)', async () => {
    const { certificates, responder } = setup();
    certificates.set('1001');
    certificates.set('1002');
    certificates.revoke('1002', new Date(systemClock.now().getTime() - 60_000), 1);
    certificates.set('1003', { status: 'pending' });
    const out = await opensslCheck(await responder.respond(request([certIdFor('1001'), certIdFor('1002'), certIdFor('1003'), certIdFor('1004')])), ['1001', '1002', '1003', '1004']);
    expect(out).toMatch(/Response verify OK/);
    expect(out).toMatch(/0x1001: good/);
    expect(out).toMatch(/0x1002: revoked[\s\S]*Reason: keyCompromise/);
    expect(out).toMatch(/0x1003: unknown/);
    expect(out).toMatch(/0x1004: unknown/);
  });

  test('SHA-256 CertIDs are answered in kind', async () => {
    const { certificates, responder } = setup();
    certificates.set('2001');
    const out = await opensslCheck(await responder.respond(request([certIdFor('2001', 'sha256')])), ['2001'], ['-sha256']);
    expect(out).toMatch(/Response verify OK/);
    expect(out).toMatch(/0x2001: good/);
  });

  test('the nonce is echoed and verified by openssl; a nonce request is signed every time', async () => {
    const { certificates, responder } = setup();
    certificates.set('3001');
    const nonce = Buffer.alloc(16, 0x42);
    const reqFile = tmp.file('nonce-req.der');
    fs.writeFileSync(reqFile, request([certIdFor('3001')], nonce));
    const der = await responder.respond(request([certIdFor('3001')], nonce));
    const respFile = tmp.file('nonce-resp.der');
    fs.writeFileSync(respFile, der);
    const r = await opensslRun(['ocsp', '-reqin', reqFile, '-respin', respFile, '-CAfile', pki.caPem, '-resp_text']);
    expect(r.stdout + r.stderr).toMatch(/Response verify OK/);
    expect(r.stdout).toMatch(/OCSP Nonce:\s*\n\s*0410(42){16}/i);
    await responder.respond(request([certIdFor('3001')], nonce));
    expect(responder.stats().signed).toBe(2);
    expect(responder.stats().lruEntries).toBe(0);
  });

  test('nextUpdate never passes the responder certificate notAfter; an expired responder answers tryLater', async () => {
    const { clock, certificates, responder } = setup({ validitySeconds: 30 * 86_400 });
    certificates.set('4001');
    const s = readResponseSummary(await responder.respond(request([certIdFor('4001')])));
    expect(s.nextUpdate!.getTime()).toBeLessThanOrEqual(pki.respNotAfter.getTime());
    clock.advance(pki.respNotAfter.getTime() - clock.now().getTime() + 1000);
    expect(await responder.respond(request([certIdFor('4001'), certIdFor('4002')]))).toEqual(errorResponse('tryLater'));
  });
});

describe('OcspResponder: error statuses, never a throw', () => {
  test('unauthorized for an issuer we do not serve, and for CertIDs of two issuers', async () => {
    const { responder } = setup();
    expect(await responder.respond(request([certIdFor('01', 'sha1', pki.other)]))).toEqual(errorResponse('unauthorized'));
    expect(await responder.respond(request([certIdFor('01'), certIdFor('01', 'sha1', pki.other)]))).toEqual(errorResponse('unauthorized'));
  });

  test('malformedRequest for garbage, an empty body and too many CertIDs', async () => {
    const { responder } = setup();
    for (const body of [Buffer.from('junk'), Buffer.alloc(0), request(Array.from({ length: 11 }, () => certIdFor('01')))]) expect(await responder.respond(body)).toEqual(errorResponse('malformedRequest'));
  });

  test('internalError (logged) when the store fails', async () => {
    const { certificates, responder, logs } = setup();
    certificates.statusOf = async () => {
      throw new Error('disk on fire');
    };
    expect(await responder.respond(request([certIdFor('01')]))).toEqual(errorResponse('internalError'));
    expect(JSON.stringify(logs)).toMatch(/disk on fire/);
    expect(responder.stats().errors).toBe(1);
  });

  test('a response that fails its lint is never signed: internalError, logged (the CA audits it)', async () => {
    const { certificates, responder, logs } = setup();
    let signed = 0;
    // A signer whose ResponderID does not name its certificate's key; it lints as the CA does, then signs.
    responder.setCa({ ...pki.responder, signer: { ...pki.responder.signer, keyHash: Buffer.alloc(20, 1), sign: async (tbs, x) => pki.responder.signer.sign(tbs, x).then((sig) => (signed++, sig)) } });
    certificates.set('0a01');
    expect(await responder.respond(request([certIdFor('0a01')]))).toEqual(errorResponse('internalError'));
    expect(await responder.respond(request([certIdFor('0a01')], Buffer.alloc(16, 7)))).toEqual(errorResponse('internalError'));
    expect(signed).toBe(0);
    expect(JSON.stringify(logs)).toMatch(/OCSP response lint failed: e_ocsp_responder_id_invalid/);
    expect(responder.stats()).toMatchObject({ signed: 0, errors: 2, lruEntries: 0 });
  });

  test('a store row that breaks its invariant (revoked without a time) is refused by the lint, not signed as revoked at the epoch', async () => {
    const { certificates, responder } = setup();
    certificates.set('0b01', { status: 'revoked', revokedAt: null, revocationReason: 1 });
    expect(await responder.respond(request([certIdFor('0b01')]))).toEqual(errorResponse('internalError'));
    expect(responder.stats().signed).toBe(0);
  });

  test('setCa refuses a responder certificate without id-kp-OCSPSigning or from another CA', () => {
    const { responder } = setup();
    expect(() => responder.setCa({ ...pki.responder, signer: { ...pki.responder.signer, certDer: pki.noEkuDer } })).toThrow(/OCSPSigning/);
    expect(() => responder.setCa({ ...pki.responder, subjectDer: pki.other.subjectDer })).toThrow(/not issued/);
  });
});

describe('OcspResponder: pre-signed responses', () => {
  test('a repeated nonce-less request is answered from memory, byte for byte, with caching facts', async () => {
    const { certificates, responder } = setup();
    certificates.set('5001');
    const a = await responder.answer(request([certIdFor('5001')]));
    const b = await responder.answer(request([certIdFor('5001')]));
    expect(b.der.equals(a.der)).toBe(true);
    expect(b.cache?.etag).toBe(a.cache?.etag);
    expect(b.cache!.nextUpdate.getTime() - b.cache!.thisUpdate.getTime()).toBe(86_400_000);
    expect(responder.stats()).toMatchObject({ signed: 1, lruHits: 1 });
  });

  test('answerCached: what answer gives, once it is held in memory; undefined before, after an invalidation, and for a nonce or garbage', async () => {
    const { certificates, responder } = setup();
    certificates.set('5011');
    const body = request([certIdFor('5011')]);
    expect(responder.answerCached(body)).toBeUndefined();
    const a = await responder.answer(body);
    const b = responder.answerCached(body)!;
    expect(b.der.equals(a.der)).toBe(true);
    expect(b.cache).toEqual(a.cache);
    expect(responder.stats()).toMatchObject({ signed: 1, lruHits: 1 });
    expect(responder.answerCached(request([certIdFor('5011')], Buffer.alloc(16, 9)))).toBeUndefined();
    expect(responder.answerCached(Buffer.from('junk'))).toBeUndefined();
    expect(responder.answerCached(request([certIdFor('5011', 'sha1', pki.other)]))).toBeUndefined();
    responder.invalidate(pki.responder.id, '5011');
    expect(responder.answerCached(body)).toBeUndefined();
  });

  test('unknown answers are held briefly in memory and never stored', async () => {
    const { responses, responder } = setup();
    const r = await responder.answer(request([certIdFor('5101')]));
    await responder.flush();
    expect(r.cache!.nextUpdate.getTime() - r.cache!.thisUpdate.getTime()).toBe(300_000);
    expect(responses.rows.size).toBe(0);
  });

  test('a CertID without NULL hash parameters is answered live (echoed exactly), never from the cache', async () => {
    const { certificates, responder } = setup();
    certificates.set('5201');
    const h = issuerHashes('sha1', pki.ca.subjectDer, pki.ca.subjectPublicKey);
    const odd = seq(seq(oid(hashOids.sha1)), octetString(h.issuerNameHash), octetString(h.issuerKeyHash), int(0x5201));
    const r1 = await responder.answer(request([odd]));
    await responder.answer(request([odd]));
    expect(r1.cache).toBeNull();
    expect(readResponseSummary(r1.der).certIdDer.equals(odd)).toBe(true);
    expect(responder.stats().signed).toBe(2);
  });

  test('invalidate replaces a cached good answer at once (RevocationListener)', async () => {
    const { certificates, responder } = setup();
    certificates.set('6001');
    await responder.respond(request([certIdFor('6001')]));
    certificates.revoke('6001', systemClock.now(), 1);
    expect(readResponseSummary(await responder.respond(request([certIdFor('6001')]))).status.status).toBe('good'); // not told yet
    responder.statusChanged('issuing-1', '6001');
    const out = await opensslCheck(await responder.respond(request([certIdFor('6001')])), ['6001']);
    expect(out).toMatch(/0x6001: revoked/);
  });

  test('a load that started before an invalidation is answered but not cached', async () => {
    const { certificates, responder } = setup();
    certificates.set('6101');
    const release = certificates.hold();
    const pending = responder.answer(request([certIdFor('6101')]));
    await new Promise((r) => setImmediate(r));
    certificates.revoke('6101', systemClock.now(), 4);
    responder.invalidate('issuing-1', '6101');
    // A request arriving now must not join the stale load.
    const second = responder.answer(request([certIdFor('6101')]));
    release();
    expect(readResponseSummary((await pending).der).status.status).toBe('good');
    expect(readResponseSummary((await second).der).status).toMatchObject({ status: 'revoked', reason: 4 });
    await responder.flush();
    expect(readResponseSummary((await responder.answer(request([certIdFor('6101')]))).der).status.status).toBe('revoked');
  });

  test('cached answers own their memory (no slice of an 8 KiB pool slab is pinned)', async () => {
    const { certificates, responder } = setup();
    certificates.set('7101');
    const r = await responder.answer(request([certIdFor('7101')]));
    expect(r.der.buffer.byteLength).toBe(r.der.length);
  });

  test('the LRU is bounded', async () => {
    const { certificates, responder } = setup({ cacheEntries: 3 });
    for (let i = 0; i < 6; i++) {
      certificates.set(`70${i}0`);
      await responder.respond(request([certIdFor(`70${i}0`)]));
    }
    expect(responder.stats().lruEntries).toBe(3);
  });

  test('a second node answers from the database without signing; a stale row is never served', async () => {
    const a = setup();
    a.certificates.set('8001');
    a.certificates.set('8002');
    const first = await a.responder.respond(request([certIdFor('8001')]));
    await a.responder.respond(request([certIdFor('8002')]));
    await a.responder.flush();
    expect(a.responses.rows.size).toBe(2);
    const b = new OcspResponder({ certificates: a.certificates, responses: a.responses, clock: a.clock, validitySeconds: 86_400, pollSeconds: 1 });
    b.setCa(pki.responder);
    expect((await b.respond(request([certIdFor('8001')]))).equals(first)).toBe(true);
    expect(b.stats()).toMatchObject({ dbHits: 1, signed: 0 });
    // Revoked on a third node: b has not polled, but the stored good row no longer matches the store.
    a.certificates.revoke('8002', systemClock.now(), 1);
    expect(readResponseSummary(await b.respond(request([certIdFor('8002')]))).status.status).toBe('revoked');
    // SHA-256 CertIDs stay in memory only.
    await b.respond(request([certIdFor('8001', 'sha256')]));
    await b.flush();
    expect(b.stats().signed).toBe(2);
  });

  test('served until half-life, then signed again', async () => {
    const { clock, certificates, responder } = setup();
    certificates.set('9001');
    await responder.respond(request([certIdFor('9001')]));
    clock.advance(11 * 3600_000);
    await responder.respond(request([certIdFor('9001')]));
    expect(responder.stats().signed).toBe(1);
    clock.advance(2 * 3600_000);
    await responder.respond(request([certIdFor('9001')]));
    expect(responder.stats().signed).toBe(2);
  });
});

describe('OcspResponder: other nodes, polling and refresh', () => {
  test('poll picks up a revocation made elsewhere, once', async () => {
    const { clock, certificates, responder } = setup();
    certificates.set('a001');
    await responder.respond(request([certIdFor('a001')]));
    clock.advance(500);
    certificates.revoke('a001', clock.now(), 1);
    clock.advance(500);
    await responder.poll();
    expect(readResponseSummary(await responder.respond(request([certIdFor('a001')]))).status.status).toBe('revoked');
    clock.advance(1000);
    await responder.poll(); // the same change again in the overlap window: no second invalidation
    expect(responder.stats()).toMatchObject({ invalidations: 1, lruHits: 0 });
    await responder.respond(request([certIdFor('a001')]));
    expect(responder.stats().lruHits).toBe(1);
  });

  test('more changes in one poll than a page: every one is invalidated (ties across the page boundary too), and nothing else is forgotten', async () => {
    const { clock, certificates, responder, logs } = setup();
    for (const s of ['d001', 'd002', 'd003']) {
      certificates.set(s);
      await responder.respond(request([certIdFor(s)]));
    }
    const changed = Array.from({ length: 10_050 }, (_, i) => `e${i.toString(16).padStart(5, '0')}`);
    for (const s of changed.slice(9_990, 10_010)) {
      certificates.set(s);
      await responder.respond(request([certIdFor(s)]));
    }
    clock.advance(500);
    const t = clock.now().getTime();
    // A bulk revocation: 20 certificates per millisecond, so a run of equal times straddles the 10,000th change.
    changed.forEach((s, i) => {
      if (!certificates.rows.has(`issuing-1:${s}`)) certificates.set(s);
      certificates.revoke(s, new Date(t - 400 + Math.floor(i / 20)), 1);
    });
    clock.advance(500);
    await responder.poll();
    expect(logs.some((l) => /clearing the cache/.test(String(l.msg)))).toBe(false);
    expect(responder.stats().invalidations).toBe(10_050);
    for (const s of changed.slice(9_990, 10_010)) expect(readResponseSummary(await responder.respond(request([certIdFor(s)]))).status.status).toBe('revoked');
    const hits = responder.stats().lruHits;
    for (const s of ['d001', 'd002', 'd003']) await responder.respond(request([certIdFor(s)]));
    expect(responder.stats().lruHits).toBe(hits + 3);
  });

  test('more changes in one poll than the cache holds: the cache is cleared instead of read on', async () => {
    const { clock, certificates, responder, logs } = setup({ cacheEntries: 4, pollPageSize: 2 });
    certificates.set('f001');
    await responder.respond(request([certIdFor('f001')]));
    clock.advance(500);
    for (let i = 0; i < 8; i++) {
      certificates.set(`f1${i}`);
      certificates.revoke(`f1${i}`, new Date(clock.now().getTime() - i), 1);
    }
    clock.advance(500);
    await responder.poll();
    expect(logs.some((l) => /clearing the cache/.test(String(l.msg)))).toBe(true);
    const before = certificates.calls.statusOf;
    await responder.respond(request([certIdFor('f001')]));
    expect(certificates.calls.statusOf).toBe(before + 1);
  });

  test('when polling fails for longer than maxStalenessSeconds, memory is bypassed', async () => {
    const { clock, certificates, responder } = setup({ maxStalenessSeconds: 5 });
    certificates.set('b001');
    responder.start();
    try {
      await responder.respond(request([certIdFor('b001')]));
      await responder.respond(request([certIdFor('b001')]));
      expect(responder.stats().lruHits).toBe(1);
      certificates.failPolls(true);
      await expect(responder.poll()).rejects.toThrow();
      clock.advance(6000);
      const before = certificates.calls.statusOf;
      await responder.respond(request([certIdFor('b001')]));
      expect(certificates.calls.statusOf).toBe(before + 1);
      certificates.failPolls(false);
      await responder.poll();
      // The catch-up poll covered the gap, so what memory held before is good again.
      await responder.respond(request([certIdFor('b001')]));
      expect(responder.stats().lruHits).toBe(2);
    } finally {
      responder.stop();
    }
  });

  test('refresh re-signs rows nearing half-life with the current status and drops expired certificates', async () => {
    const { clock, certificates, responses, responder } = setup({ refreshSeconds: 60 });
    certificates.set('c001');
    certificates.set('c002');
    certificates.set('c003', { notAfter: new Date(clock.now().getTime() + 3600_000) });
    for (const s of ['c001', 'c002', 'c003']) await responder.respond(request([certIdFor(s)]));
    await responder.flush();
    expect(await responder.refresh()).toBe(0);
    clock.advance(12 * 3600_000 - 60_000);
    certificates.revoke('c002', clock.now(), 5);
    expect(await responder.refresh()).toBe(3);
    expect(responses.rows.has('issuing-1:c003')).toBe(false);
    const r1 = responses.rows.get('issuing-1:c001')!;
    expect(r1.thisUpdate.getTime()).toBe(Math.floor(clock.now().getTime() / 1000) * 1000);
    // The clock is 12 h ahead of openssl's: allow that much skew.
    const out = await opensslCheck(responses.rows.get('issuing-1:c002')!.der, ['c002'], ['-validity_period', '86400']);
    expect(out).toMatch(/Response verify OK/);
    expect(out).toMatch(/0xC002: revoked[\s\S]*Reason: cessationOfOperation/i);
  });
});
