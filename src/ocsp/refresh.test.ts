import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fixedClock, systemClock } from '../clock/clock.js';
import { tempDir } from '../../test/helpers/openssl.js';
import { CachingSource } from './cache.js';
import { RequestFilter } from './filter.js';
import { Invalidations } from './invalidations.js';
import { LiveSource } from './live.js';
import { Refresher } from './refresh.js';
import { readResponseSummary } from './response.js';
import { certIdOf, makeResponderPki, memCertificates, memResponses, request, type ResponderPki } from './testing/responder-pki.js';
import { PendingWrites } from './writes.js';

const tmp = tempDir('trellis-ocsp-refresh-');
let pki: ResponderPki;

beforeAll(async () => {
  pki = await makeResponderPki(tmp);
});
afterAll(() => tmp.cleanup());

/** The refresher with the real layers it uses: the filter's CAs, the live source, the cache it updates. */
function setup() {
  const clock = fixedClock(systemClock.now());
  const certificates = memCertificates();
  const responses = memResponses();
  const changes = new Invalidations();
  const live = new LiveSource({ certificates, clock, validitySeconds: 86_400, unknownValiditySeconds: 300 });
  const writes = new PendingWrites({ responses }, changes);
  const cache = new CachingSource({ certificates, responses, clock, cacheEntries: 100, maxStalenessMs: 5000 }, live, changes, writes);
  const filter = new RequestFilter(cache);
  filter.setCa(pki.responder);
  const refresher = new Refresher({ certificates, responses, clock, validitySeconds: 86_400, refreshSeconds: 60, refreshBatch: 500 }, (id) => filter.ca(id), live, cache, changes);
  const ask = (serialHex: string) => filter.answer(request([certIdOf(pki.ca, serialHex)]));
  return { clock, certificates, responses, changes, live, cache, writes, filter, refresher, ask };
}

describe('Refresher', () => {
  test('rows nearing half-life are re-signed with the current status; the copy in memory is replaced; expired and unknown rows are deleted', async () => {
    const { clock, certificates, responses, cache, writes, refresher, ask } = setup();
    certificates.set('3001');
    certificates.set('3002');
    certificates.set('3003', { notAfter: new Date(clock.now().getTime() + 3600_000) });
    for (const s of ['3001', '3002', '3003']) await ask(s);
    await writes.flush();
    expect(await refresher.refresh()).toBe(0);
    clock.advance(12 * 3600_000 - 60_000);
    certificates.revoke('3002', clock.now(), 5);
    certificates.rows.delete('issuing-1:3001');
    expect(await refresher.refresh()).toBe(3);
    expect([...responses.rows.keys()]).toEqual(['issuing-1:3002']);
    const r = responses.rows.get('issuing-1:3002')!;
    expect(readResponseSummary(r.der).status).toMatchObject({ status: 'revoked', reason: 5 });
    expect(r.thisUpdate.getTime()).toBe(Math.floor(clock.now().getTime() / 1000) * 1000);
    expect(refresher.refreshed).toBe(1);
    // The cache now answers with the refreshed response, without signing.
    expect((await ask('3002')).der.equals(r.der)).toBe(true);
    expect(cache.counters.lruHits).toBeGreaterThan(0);
  });

  test('rows of a CA this node does not serve are left alone', async () => {
    const { clock, responses, refresher } = setup();
    await responses.putMany([{ issuerId: 'issuing-9', serialHex: '01', der: Buffer.from('theirs'), thisUpdate: clock.now(), nextUpdate: new Date(clock.now().getTime() + 60_000) }]);
    expect(await refresher.refresh()).toBe(1);
    expect(responses.rows.get('issuing-9:01')!.der.toString()).toBe('theirs');
  });

  test('a row whose certificate changes status while it is re-signed is not written', async () => {
    const { clock, certificates, responses, cache, writes, refresher, ask } = setup();
    certificates.set('3101');
    await ask('3101');
    await writes.flush();
    const before = responses.rows.get('issuing-1:3101')!.der;
    clock.advance(12 * 3600_000 - 60_000);
    const release = certificates.hold();
    const running = refresher.refresh();
    await new Promise((r) => setImmediate(r));
    cache.invalidate('issuing-1', '3101');
    release();
    expect(await running).toBe(1);
    expect(responses.rows.get('issuing-1:3101')!.der.equals(before)).toBe(true);
    expect(refresher.refreshed).toBe(0);
  });

  test('refreshAll drains what is due a batch at a time until a batch is not full; a second run at once does nothing', async () => {
    const { clock, certificates, responses, writes, ask, live, cache, changes, filter } = setup();
    const batched = new Refresher({ certificates, responses, clock, validitySeconds: 86_400, refreshSeconds: 60, refreshBatch: 2 }, (id) => filter.ca(id), live, cache, changes);
    const serials = ['3201', '3202', '3203', '3204', '3205'];
    for (const s of serials) {
      certificates.set(s);
      await ask(s);
    }
    await writes.flush();
    clock.advance(12 * 3600_000 - 60_000);
    let calls = 0;
    const expiring = responses.expiring.bind(responses);
    responses.expiring = async (before, limit) => (calls++, expiring(before, limit));
    await Promise.all([batched.refreshAll(), batched.refreshAll()]);
    expect(calls).toBe(3); // 2 + 2 + 1
    expect(batched.refreshed).toBe(5);
  });
});
