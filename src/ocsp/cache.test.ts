import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fixedClock, systemClock } from '../clock/clock.js';
import { opensslRun, tempDir } from '../../test/helpers/openssl.js';
import { CachingSource, PackedResponses, type CacheNext } from './cache.js';
import { RequestFilter } from './filter.js';
import { Invalidations } from './invalidations.js';
import { LiveSource } from './live.js';
import { parseOcspRequest } from './request.js';
import { readResponseSummary } from './response.js';
import { presignedOf, type OcspResult, type ServedCa } from './source.js';
import { certIdOf, makeResponderPki, memCertificates, memResponses, request, type ResponderPki } from './testing/responder-pki.js';
import { PendingWrites } from './writes.js';

const tmp = tempDir('trellis-ocsp-cache-');
let pki: ResponderPki;
let ca: ServedCa;

beforeAll(async () => {
  pki = await makeResponderPki(tmp);
  const filter = new RequestFilter({ answer: () => Promise.reject(new Error('not used')) });
  filter.setCa(pki.responder);
  ca = filter.ca('issuing-1')!;
});
afterAll(() => tmp.cleanup());

/** The cache over the real live source, counting what reaches it. */
function setup(over: { responses?: ReturnType<typeof memResponses> | null; certificates?: ReturnType<typeof memCertificates>; cacheEntries?: number; maxStalenessMs?: number } = {}) {
  const clock = fixedClock(systemClock.now());
  const certificates = over.certificates ?? memCertificates();
  const responses = over.responses === null ? undefined : (over.responses ?? memResponses());
  const live = new LiveSource({ certificates, clock, validitySeconds: 86_400, unknownValiditySeconds: 300 });
  const reached = { answer: 0, single: 0 };
  const counting: CacheNext = {
    answer: (req, c) => (reached.answer++, live.answer(req, c)),
    single: (c, id, record, nowMs) => (reached.single++, live.single(c, id, record, nowMs)),
  };
  const changes = new Invalidations();
  const writes = new PendingWrites({ responses }, changes);
  const cache = new CachingSource({ certificates, responses, clock, cacheEntries: over.cacheEntries ?? 100, maxStalenessMs: over.maxStalenessMs ?? 5000 }, counting, changes, writes);
  const ask = (serialHex: string, nonce?: Buffer): Promise<OcspResult> => cache.answer(parseOcspRequest(request([certIdOf(pki.ca, serialHex)], nonce)), ca);
  return { clock, certificates, responses, cache, writes, reached, ask };
}

const statusOf = (r: OcspResult) => readResponseSummary(r.der).status.status;

describe('CachingSource over the live source', () => {
  test('a hit does not reach the live source: the same bytes, with caching facts', async () => {
    const { certificates, cache, reached, ask } = setup();
    certificates.set('1001');
    const a = await ask('1001');
    const b = await ask('1001');
    expect(reached).toEqual({ answer: 0, single: 1 });
    expect(b.der.equals(a.der)).toBe(true);
    expect(b.cache).toEqual(a.cache);
    expect(cache.counters.lruHits).toBe(1);
    // openssl reads the cached answer as good, signed by the delegated responder.
    const f = tmp.file('hit.der');
    fs.writeFileSync(f, b.der);
    const out = await opensslRun(['ocsp', '-respin', f, '-issuer', pki.caPem, '-CAfile', pki.caPem, '-no_nonce', '-serial', '0x1001']);
    expect(out.stdout + out.stderr).toMatch(/Response verify OK/);
    expect(out.stdout).toMatch(/0x1001: good/);
  });

  test('a status change reaches it: after invalidate the next request is signed with the new status', async () => {
    const { certificates, cache, reached, ask } = setup();
    certificates.set('1101');
    await ask('1101');
    certificates.revoke('1101', systemClock.now(), 1);
    expect(statusOf(await ask('1101'))).toBe('good'); // not told yet: a hit
    cache.invalidate('issuing-1', '1101');
    expect(statusOf(await ask('1101'))).toBe('revoked');
    expect(reached.single).toBe(2);
  });

  test('nonce and multi-certificate requests pass through to the live source every time, never cached', async () => {
    const { certificates, cache, reached, ask } = setup();
    certificates.set('1201');
    const r = await ask('1201', Buffer.alloc(16, 1));
    await ask('1201', Buffer.alloc(16, 2));
    await cache.answer(parseOcspRequest(request([certIdOf(pki.ca, '1201'), certIdOf(pki.ca, '1202')])), ca);
    expect(r.cache).toBeNull();
    expect(reached).toEqual({ answer: 3, single: 0 });
    expect(cache.size).toBe(0);
  });

  test('half-life: served until then, signed again after', async () => {
    const { clock, certificates, reached, ask } = setup();
    certificates.set('1301');
    await ask('1301');
    clock.advance(12 * 3600_000 - 1000);
    await ask('1301');
    expect(reached.single).toBe(1);
    clock.advance(1000);
    await ask('1301');
    expect(reached.single).toBe(2);
  });

  test('a stored row is served without signing while its status is the store’s; one that no longer is gets signed anew', async () => {
    const first = setup();
    first.certificates.set('1401');
    first.certificates.set('1402');
    await first.ask('1401');
    await first.ask('1402');
    await first.writes.flush();
    expect(first.responses!.rows.size).toBe(2);
    // Another node over the same database and store.
    const second = setup({ responses: first.responses!, certificates: first.certificates });
    expect((await second.ask('1401')).der.equals(first.responses!.rows.get('issuing-1:1401')!.der)).toBe(true);
    expect(second.cache.counters.dbHits).toBe(1);
    expect(second.reached.single).toBe(0);
    first.certificates.revoke('1402', systemClock.now(), 1);
    expect(statusOf(await second.ask('1402'))).toBe('revoked');
    expect(second.reached.single).toBe(1);
  });

  test('unknown answers are held in memory, never queued for the database', async () => {
    const { writes, ask } = setup();
    const r = await ask('1501');
    expect(r.cache!.nextUpdate.getTime() - r.cache!.thisUpdate.getTime()).toBe(300_000);
    expect(writes.size).toBe(0);
  });

  test('while watched, a poll older than maxStalenessMs bypasses memory until a poll succeeds', async () => {
    const { clock, certificates, cache, reached, ask } = setup({ responses: null, maxStalenessMs: 5000 });
    certificates.set('1601');
    cache.watch(clock.now().getTime());
    await ask('1601');
    clock.advance(6000);
    await ask('1601');
    expect(reached.single).toBe(2);
    cache.pollSucceeded(clock.now().getTime());
    await ask('1601');
    expect(reached.single).toBe(2);
    cache.unwatch();
    clock.advance(60_000);
    await ask('1601');
    expect(reached.single).toBe(2);
  });

  test('clear forgets what memory holds and what waits to be written', async () => {
    const { certificates, cache, writes, reached, ask } = setup();
    certificates.set('1701');
    await ask('1701');
    expect(writes.size).toBe(1);
    cache.clear();
    expect(writes.size).toBe(0);
    await ask('1701');
    expect(reached.single).toBe(2);
  });

  test('the LRU keeps the most recently used entries', async () => {
    const { certificates, cache, reached, ask } = setup({ responses: null, cacheEntries: 2 });
    for (const s of ['1801', '1802', '1803']) certificates.set(s);
    await ask('1801');
    await ask('1802');
    await ask('1801'); // 1802 is now the oldest
    await ask('1803');
    expect(cache.size).toBe(2);
    await ask('1801');
    expect(reached.single).toBe(3);
    await ask('1802');
    expect(reached.single).toBe(4);
  });

  test('an answer from memory keeps its bytes after its entry is evicted and the memory reused', async () => {
    const { certificates, cache, ask } = setup({ responses: null, cacheEntries: 1 });
    for (const s of ['1901', '1902']) certificates.set(s);
    await ask('1901');
    const hit = await ask('1901');
    const bytes = Buffer.from(hit.der);
    await ask('1902'); // evicts 1901; its slot now holds 1902's response
    expect(cache.size).toBe(1);
    expect(hit.der.equals(bytes)).toBe(true);
    const f = tmp.file('evicted-hit.der');
    fs.writeFileSync(f, hit.der);
    const out = await opensslRun(['ocsp', '-respin', f, '-issuer', pki.caPem, '-CAfile', pki.caPem, '-no_nonce', '-serial', '0x1901']);
    expect(out.stdout + out.stderr).toMatch(/Response verify OK/);
    expect(out.stdout).toMatch(/0x1901: good/);
  });
});

describe('PackedResponses', () => {
  const t0 = new Date('2026-12-01T00:00:00Z');
  const t1 = new Date('2026-12-02T00:00:00Z');
  const der = (n: number, fill: number) => Buffer.alloc(n, fill);

  test('reads back what was put: the DER, both dates, the half-life and the ETag', () => {
    const p = new PackedResponses();
    const e = presignedOf(der(480, 7), t0, t1, 'sha1');
    const slot = p.put(e)!;
    expect(p.staleAt(slot)).toBe(e.staleAt);
    expect(p.read(slot)).toEqual({ der: e.der, cache: { thisUpdate: t0, nextUpdate: t1, etag: e.etag } });
  });

  test('a freed slot is reused, and bytes read before stay as they were (read copies)', () => {
    const p = new PackedResponses();
    const a = p.put(presignedOf(der(480, 1), t0, t1, 'sha1'))!;
    const served = p.read(a).der;
    p.free(a);
    const b = p.put(presignedOf(der(480, 2), t0, t1, 'sha1'))!;
    expect(b).toBe(a);
    expect(served.equals(der(480, 1))).toBe(true);
    expect(p.read(b).der.equals(der(480, 2))).toBe(true);
  });

  test('responses of other sizes take other slots; neighbours are not overwritten', () => {
    const p = new PackedResponses();
    const sizes = [1, 100, 470, 480, 481, 1500, 4000, 8072];
    const slots = sizes.map((n, i) => p.put(presignedOf(der(n, i + 1), t0, t1, 'sha256'))!);
    // 2,000 more of one size fill several slabs of its class.
    const many = Array.from({ length: 2000 }, (_, i) => p.put(presignedOf(der(480, i % 251), t0, t1, 'sha1'))!);
    sizes.forEach((n, i) => expect(p.read(slots[i]!).der.equals(der(n, i + 1))).toBe(true));
    many.forEach((s, i) => expect(p.read(s).der.equals(der(480, i % 251))).toBe(true));
  });

  test('rejects: a response over 8 KiB with its header and ETag is not held', () => {
    const p = new PackedResponses();
    // 27 bytes of header, a 29-character ETag: 8,072 bytes of DER fill the largest slot (8 KiB - 64).
    expect(p.put(presignedOf(der(8072, 1), t0, t1, 'sha1'))).toBeDefined();
    expect(p.put(presignedOf(der(8073, 1), t0, t1, 'sha1'))).toBeUndefined();
  });
});
