import { describe, expect, test } from 'vitest';
import { fixedClock, systemClock } from '../clock/clock.js';
import { Invalidations } from './invalidations.js';
import { StatusPoller } from './poll.js';
import { memCertificates } from './testing/responder-pki.js';

/** The poller over a stand-in cache that records what it is told. */
function setup(over: { capacity?: number; pageSize?: number } = {}) {
  const clock = fixedClock(systemClock.now());
  const certificates = memCertificates();
  const changes = new Invalidations();
  const told = { invalidated: [] as string[], cleared: 0, okAt: [] as number[] };
  const cache = {
    capacity: over.capacity ?? 100,
    invalidate: (issuerId: string, serialHex: string) => void told.invalidated.push(`${issuerId}:${serialHex}`),
    clear: () => void told.cleared++,
    pollSucceeded: (ms: number) => void told.okAt.push(ms),
  };
  const logs: Record<string, unknown>[] = [];
  const poller = new StatusPoller({ certificates, clock, pageSize: over.pageSize, log: (e) => logs.push(e) }, cache, changes);
  return { clock, certificates, changes, told, poller, logs };
}

describe('StatusPoller', () => {
  test('a change made elsewhere is invalidated once, though polls overlap; each success is reported with its start', async () => {
    const { clock, certificates, told, poller } = setup();
    certificates.set('01');
    clock.advance(500);
    certificates.revoke('01', clock.now(), 1);
    clock.advance(500);
    const first = clock.now().getTime();
    await poller.poll();
    clock.advance(1000);
    await poller.poll(); // the same change again in the overlap window
    expect(told.invalidated).toEqual(['issuing-1:01']);
    expect(told.okAt).toEqual([first, first + 1000]);
  });

  test('several pages, with a run of equal times across the boundary: every change is invalidated, nothing cleared', async () => {
    const { clock, certificates, told, poller } = setup({ pageSize: 4, capacity: 100 });
    clock.advance(500);
    const t = clock.now().getTime();
    // Three changes per millisecond: the 4th and 5th share a time.
    for (let i = 0; i < 10; i++) {
      certificates.set(`a${i}`);
      certificates.revoke(`a${i}`, new Date(t - 400 + Math.floor(i / 3)), 1);
    }
    clock.advance(500);
    await poller.poll();
    expect(told.invalidated.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `issuing-1:a${i}`).sort());
    expect(told.cleared).toBe(0);
  });

  test('more changes in one poll than the cache holds: cleared instead of read on, and logged', async () => {
    const { clock, certificates, told, poller, logs } = setup({ pageSize: 2, capacity: 4 });
    clock.advance(500);
    for (let i = 0; i < 8; i++) {
      certificates.set(`b${i}`);
      certificates.revoke(`b${i}`, new Date(clock.now().getTime() - i), 1);
    }
    clock.advance(500);
    await poller.poll();
    expect(told.cleared).toBe(1);
    expect(told.invalidated.length).toBeLessThan(8);
    expect(logs.some((l) => /clearing the cache/.test(String(l.msg)))).toBe(true);
  });

  test('a poll that fails reports no success and catches up next time', async () => {
    const { clock, certificates, told, poller } = setup();
    certificates.set('c1');
    certificates.failPolls(true);
    clock.advance(500);
    certificates.revoke('c1', clock.now(), 1);
    await expect(poller.poll()).rejects.toThrow(/unreachable/);
    expect(told.okAt).toEqual([]);
    clock.advance(10_000);
    certificates.failPolls(false);
    await poller.poll();
    expect(told.invalidated).toEqual(['issuing-1:c1']);
    expect(told.okAt).toHaveLength(1);
  });

  test('changes older than two load timeouts are forgotten after a poll', async () => {
    const { clock, changes, poller } = setup();
    const mark = changes.mark();
    changes.note('issuing-1:d1', clock.now().getTime());
    clock.advance(120_001);
    await poller.poll();
    expect(changes.changedSince('issuing-1:d1', mark)).toBe(false);
  });
});
