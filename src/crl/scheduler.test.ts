/**
 * CrlScheduler on a real SQLite store with the real generator: when CRLs
 * are made (coalesced changes, polling, half-life), backoff after failures,
 * and the lease shared on the database. The clock is fixed and moved by hand.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CertificateRepository } from '../ca/ports.js';
import { crlShardOf } from '../ca/serial.js';
import type { CrlSigner } from './build.js';
import { CrlGenerator, type CrlIssuer } from './generator.js';
import { HeldCrls } from './held.js';
import { CrlScheduler } from './scheduler.js';
import { crlTestStore, repeatingPages, testUrls, type CrlTestStore } from './testing/store.js';

const start = new Date('2026-05-01T00:00:00Z');
const inAYear = new Date('2027-05-01T00:00:00Z');
const shards = 3;
const everyScope = ['full', 'full-delta', 'shard-0', 'shard-1', 'shard-2'];
let t: CrlTestStore;

beforeAll(async () => {
  t = await crlTestStore(start);
});
afterAll(() => t?.close());

/** One process: its HeldCrls, generator and scheduler for `issuer`; `made()` lists the scopes it published, in order. */
function processFor(issuer: CrlIssuer, o: { lease?: { holder: number; seconds: number }; certificates?: CertificateRepository } = {}) {
  const logs: Record<string, unknown>[] = [];
  const log = (e: Record<string, unknown>) => logs.push(e);
  const held = new HeldCrls(t.store.crls);
  const generator = new CrlGenerator({ crls: t.store.crls, certificates: o.certificates ?? t.store.certificates, audit: t.audit, clock: t.clock, urls: testUrls, validitySeconds: 86_400, log }, held);
  const scheduler = new CrlScheduler({ crls: t.store.crls, certificates: t.store.certificates, audit: t.audit, clock: t.clock, delaySeconds: 60, log, ...(o.lease ? { lease: o.lease } : {}) }, new Map([[issuer.id, issuer]]), held, generator);
  const made = () => logs.filter((l) => l.msg === 'CRL published').map((l) => l.scope as string);
  return { scheduler, held, logs, made };
}

async function ca(id: string, signer: CrlSigner = t.signer()): Promise<CrlIssuer> {
  await t.addCa(id);
  return { id, shards, signer };
}

/** A revoked certificate of `caId` in shard `n`. */
async function revokedIn(caId: string, n: number): Promise<string> {
  for (;;) {
    const s = await t.issue(caId, shards, inAYear);
    if (crlShardOf(s, shards) !== n) continue;
    await t.revoke(caId, s, 1);
    return s;
  }
}

const failuresOf = async (caId: string) => (await t.events('crl.generation_failed')).filter((e) => e.ca === caId);

describe('CrlScheduler', () => {
  test('the first pass publishes every scope; a pass with nothing changed and nothing at half-life publishes nothing', async () => {
    const p = processFor(await ca('sch-first'));
    await p.scheduler.tick();
    expect(p.made().sort()).toEqual(everyScope);
    t.clock.advance(1000);
    await p.scheduler.tick();
    expect(p.made()).toHaveLength(everyScope.length);
  });

  test('changes told before a pass are coalesced: one CRL per shard touched, and the delta', async () => {
    const issuer = await ca('sch-told');
    const p = processFor(issuer);
    await p.scheduler.tick();
    t.clock.advance(1000);
    for (let i = 0; i < 6; i++) {
      const n = i % 2;
      const s = await revokedIn(issuer.id, n);
      p.scheduler.statusChanged(issuer.id, s, n);
    }
    await Promise.all([p.scheduler.tick(), p.scheduler.tick()]);
    expect(p.made().slice(everyScope.length).sort()).toEqual(['full-delta', 'shard-0', 'shard-1']);
    expect(p.held.get(issuer.id, 'shard-0')!.entries).toBe(3);
    expect(p.held.get(issuer.id, 'full-delta')!.entries).toBe(6);
  });

  test('a change nobody told this process about (another node, the CLI) is found by polling the database', async () => {
    const issuer = await ca('sch-polled');
    const p = processFor(issuer);
    await p.scheduler.tick();
    t.clock.advance(2000);
    await revokedIn(issuer.id, 2);
    await p.scheduler.tick();
    expect(p.made().slice(everyScope.length).sort()).toEqual(['full-delta', 'shard-2']);
    expect(p.held.get(issuer.id, 'shard-2')!.entries).toBe(1);
  });

  test('every scope is regenerated at half its validity, not before; a shard then is read whole from the store', async () => {
    const p = processFor(await ca('sch-half'));
    await p.scheduler.tick();
    t.clock.advance(43_199_000);
    await p.scheduler.tick();
    expect(p.made()).toHaveLength(everyScope.length);
    t.clock.advance(1000);
    await p.scheduler.tick();
    expect(p.made().slice(everyScope.length).sort()).toEqual(everyScope);
    expect(p.logs.filter((l) => l.msg === 'CRL published' && String(l.scope).startsWith('shard-')).map((l) => l.from)).toEqual(Array(2 * shards).fill('store'));
  });

  test('a failed generation: logged, audited as crl.generation_failed, the last good CRL kept, not retried within its backoff, then published', async () => {
    let broken = false;
    const good = t.signer();
    const issuer = await ca('sch-broken', { ...good, sign: async (tbs, expect) => (broken ? Promise.reject(new Error('HSM unreachable')) : good.sign(tbs, expect)) });
    const p = processFor(issuer);
    await p.scheduler.tick();
    const kept = p.held.get(issuer.id, 'shard-1')!;
    broken = true;
    t.clock.advance(1000);
    p.scheduler.statusChanged(issuer.id, await revokedIn(issuer.id, 1), 1);
    await expect(p.scheduler.tick()).resolves.toBeUndefined();
    expect(p.held.get(issuer.id, 'shard-1')).toBe(kept);
    expect((await failuresOf(issuer.id)).map((e) => [e.scope, e.failures, e.error])).toEqual([['shard-1', 1, 'HSM unreachable'], ['full-delta', 1, 'HSM unreachable']]);
    expect(p.logs.filter((l) => l.level === 'error').map((l) => l.scope)).toEqual(['shard-1', 'full-delta']);
    t.clock.advance(500); // within the backoff (2 s after one failure)
    await p.scheduler.tick();
    expect(await failuresOf(issuer.id)).toHaveLength(2);
    broken = false;
    t.clock.advance(5000);
    await p.scheduler.tick();
    expect(p.held.get(issuer.id, 'shard-1')!.crlNumber).toBeGreaterThan(kept.crlNumber);
    expect(p.held.get(issuer.id, 'shard-1')!.entries).toBe(1);
  });

  test("the CA's lint refusal counts as a failed generation (logged, backs off) and is not audited a second time", async () => {
    let fault = false;
    const faulty = repeatingPages(t.store.certificates, () => fault);
    const issuer = await ca('sch-lint');
    await revokedIn(issuer.id, 0);
    const p = processFor(issuer, { certificates: faulty });
    await p.scheduler.tick();
    fault = true;
    t.clock.advance(43_200_000); // half-life: every scope is read whole from the store
    await p.scheduler.tick();
    const errors = () => p.logs.filter((l) => l.level === 'error');
    expect(errors().map((l) => [l.scope, l.failures])).toEqual([['shard-0', 1], ['full', 1]]);
    expect(String(errors()[0]!.error)).toMatch(/^CRL lint failed \(CRL number \d+\): e_crl_serial_duplicate/);
    expect(await failuresOf(issuer.id)).toEqual([]);
    t.clock.advance(500); // within the backoff: not tried again
    await p.scheduler.tick();
    expect(errors()).toHaveLength(2);
    fault = false;
    t.clock.advance(5000);
    await p.scheduler.tick();
    expect(p.made().slice(everyScope.length).sort()).toEqual(['full', 'full-delta', 'full-delta', 'shard-0', 'shard-1', 'shard-2']);
  });
});

describe('CrlScheduler: the lease on the database', () => {
  test('only the holder publishes, the other serves what it stored; after the holder stops, the other takes the lease at its next pass and catches up', async () => {
    const issuer = await ca('sch-lease');
    const a = processFor(issuer, { lease: { holder: 101, seconds: 30 } });
    const b = processFor(issuer, { lease: { holder: 202, seconds: 30 } });
    await a.scheduler.tick();
    await b.scheduler.tick();
    expect(a.made().sort()).toEqual(everyScope);
    expect(b.made()).toEqual([]);
    expect([a.scheduler.isPublisher(issuer.id), b.scheduler.isPublisher(issuer.id)]).toEqual([true, false]);
    for (const scope of everyScope) expect(b.held.get(issuer.id, scope)!.crlNumber).toBe(a.held.get(issuer.id, scope)!.crlNumber);

    t.clock.advance(1000);
    await revokedIn(issuer.id, 1); // nobody told
    await a.scheduler.stop(); // releases the lease before its next pass
    t.clock.advance(1000);
    await b.scheduler.tick();
    expect(b.scheduler.isPublisher(issuer.id)).toBe(true);
    expect(b.logs.some((l) => l.msg === 'CRL publisher lease taken')).toBe(true);
    // Only what the database holds that a CRL lacks: the shard of the change, and the delta.
    expect(b.made().sort()).toEqual(['full-delta', 'shard-1']);
    expect(b.held.get(issuer.id, 'shard-1')!.entries).toBe(1);
  });

  test('taking the lease: a change older than a shard CRL (less the overlap) regenerates nothing; when the changes cannot be read, every shard is regenerated', async () => {
    const issuer = await ca('sch-lease-catchup');
    await revokedIn(issuer.id, 0);
    t.clock.advance(600_000); // past the 5 min overlap
    const a = processFor(issuer, { lease: { holder: 111, seconds: 30 } });
    await a.scheduler.tick();
    await a.scheduler.stop();
    t.clock.advance(1000);
    const b = processFor(issuer, { lease: { holder: 222, seconds: 30 } });
    await b.scheduler.tick();
    expect(b.scheduler.isPublisher(issuer.id)).toBe(true);
    expect(b.made()).toEqual(['full-delta']);
    await b.scheduler.stop();

    // The catch-up's read reaches 5 min before the oldest shard CRL; the pass's own poll, 70 s back: only the first fails.
    const unreadable: CertificateRepository = {
      ...t.store.certificates,
      statusChangedSince: (since, limit) => (since.getTime() < t.clock.now().getTime() - 200_000 ? Promise.reject(new Error('database unreachable')) : t.store.certificates.statusChangedSince(since, limit)),
    };
    const c = processFor(issuer, { lease: { holder: 333, seconds: 30 } });
    const scheduler = new CrlScheduler({ crls: t.store.crls, certificates: unreadable, audit: t.audit, clock: t.clock, delaySeconds: 60, log: (e) => c.logs.push(e), lease: { holder: 333, seconds: 30 } }, new Map([[issuer.id, issuer]]), c.held, new CrlGenerator({ crls: t.store.crls, certificates: t.store.certificates, audit: t.audit, clock: t.clock, urls: testUrls, validitySeconds: 86_400, log: (e) => c.logs.push(e) }, c.held));
    t.clock.advance(1000);
    await scheduler.tick();
    expect(c.logs.some((l) => l.msg === 'CRL lease taken; changes not read, every shard is regenerated')).toBe(true);
    expect(c.made().sort()).toEqual(['full-delta', 'shard-0', 'shard-1', 'shard-2']);
    await scheduler.stop();
  });

  test('without the lease, a scope with no CRL is left to the holder for delaySeconds, then made here', async () => {
    const issuer = await ca('sch-lease-missing');
    // Another process holds the lease and has published nothing yet (a new database, its first pass still running).
    const holdFor = (ms: number) => t.store.crls.acquireLease(issuer.id, 555, t.clock.now(), new Date(t.clock.now().getTime() + ms));
    const b = processFor(issuer, { lease: { holder: 666, seconds: 30 } });
    await holdFor(30_000);
    await b.scheduler.tick();
    expect(b.made()).toEqual([]);
    t.clock.advance(59_000);
    await holdFor(30_000);
    await b.scheduler.tick();
    expect(b.made()).toEqual([]);
    t.clock.advance(1000);
    await holdFor(30_000);
    await b.scheduler.tick();
    expect(b.scheduler.isPublisher(issuer.id)).toBe(false);
    expect(b.made().sort()).toEqual(everyScope);
  });

  test('a holder that stays alive keeps the lease: the other process publishes nothing while the holder renews it', async () => {
    const issuer = await ca('sch-lease-kept');
    const a = processFor(issuer, { lease: { holder: 303, seconds: 30 } });
    const b = processFor(issuer, { lease: { holder: 404, seconds: 30 } });
    await a.scheduler.tick();
    for (let i = 0; i < 3; i++) {
      t.clock.advance(20_000); // within the lease each time, renewed by a's pass
      await a.scheduler.tick();
      await b.scheduler.tick();
    }
    expect(b.made()).toEqual([]);
    expect(b.scheduler.isPublisher(issuer.id)).toBe(false);
  });
});
