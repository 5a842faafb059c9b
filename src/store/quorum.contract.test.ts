/**
 * The quorum's storage contract on every flavour (SQLite always, PostgreSQL
 * with TRELLIS_TEST_DATABASE_URL): custodians (names never reused, remove
 * once), requests with their approvals, one approval per custodian, and the
 * compare-and-set that uses a request once.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { openStore, type Store } from './open.js';
import { contractFlavours, type FreshDatabase } from './testing/flavours.js';

const t0 = new Date('2026-03-04T05:06:07.890Z');
const later = (s: number) => new Date(t0.getTime() + s * 1000);
const errorOf = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e);

describe.each(contractFlavours('quorum contract'))('quorum store: $name', (flavour) => {
  let fresh: FreshDatabase;
  let store: Store;
  beforeAll(async () => {
    fresh = await flavour.fresh();
    store = await openStore(fresh.url);
  });
  afterAll(async () => {
    await store?.close();
    await fresh?.drop();
  });

  test('custodians: insert, find, list oldest first, conflict on a name, remove once, unknown name', async () => {
    await store.custodians.insert({ name: 'bob', credential: '{"b":1}', createdAt: later(1) });
    await store.custodians.insert({ name: 'alice', credential: '{"a":1}', createdAt: t0 });
    expect(await store.custodians.find('alice')).toEqual({ name: 'alice', credential: '{"a":1}', createdAt: t0, removedAt: null });
    expect(await store.custodians.find('carol')).toBeNull();
    expect((await store.custodians.list()).map((c) => c.name)).toEqual(['alice', 'bob']);
    const dup = await errorOf(store.custodians.insert({ name: 'alice', credential: '{}', createdAt: later(2) }));
    expect(isPkiError(dup, 'conflict')).toBe(true);
    expect(await store.custodians.remove('bob', later(3))).toBe(true);
    expect(await store.custodians.remove('bob', later(4))).toBe(false);
    expect((await store.custodians.find('bob'))?.removedAt).toEqual(later(3));
    expect(isPkiError(await errorOf(store.custodians.remove('nobody', later(5))), 'notFound')).toBe(true);
  });

  test('requests: insert, find with approvals in order, one approval per custodian, unknown request', async () => {
    await store.quorum.insertRequest({ id: 'qr_1', operation: '{"op":"key.destroy","params":{}}', hash: 'ab'.repeat(32), createdAt: t0, expiresAt: later(3600) });
    expect(isPkiError(await errorOf(store.quorum.insertRequest({ id: 'qr_1', operation: '{}', hash: 'cd'.repeat(32), createdAt: t0, expiresAt: later(60) })), 'conflict')).toBe(true);
    await store.quorum.insertApproval('qr_1', { custodian: 'bob', approvedAt: later(20), signature: 'c2ln' });
    await store.quorum.insertApproval('qr_1', { custodian: 'alice', approvedAt: later(10), signature: null });
    const twice = await errorOf(store.quorum.insertApproval('qr_1', { custodian: 'alice', approvedAt: later(30), signature: null }));
    expect(isPkiError(twice, 'conflict')).toBe(true);
    expect(isPkiError(await errorOf(store.quorum.insertApproval('qr_none', { custodian: 'alice', approvedAt: later(30), signature: null })), 'notFound')).toBe(true);
    expect(await store.quorum.find('qr_1')).toEqual({
      id: 'qr_1',
      operation: '{"op":"key.destroy","params":{}}',
      hash: 'ab'.repeat(32),
      createdAt: t0,
      expiresAt: later(3600),
      usedAt: null,
      approvals: [
        { custodian: 'alice', approvedAt: later(10), signature: null },
        { custodian: 'bob', approvedAt: later(20), signature: 'c2ln' },
      ],
    });
    expect(await store.quorum.find('qr_none')).toBeNull();
  });

  test('markUsed: once, never after expiry, and one winner among concurrent calls', async () => {
    await store.quorum.insertRequest({ id: 'qr_2', operation: '{}', hash: '01'.repeat(32), createdAt: t0, expiresAt: later(60) });
    expect(await store.quorum.markUsed('qr_2', later(60))).toBe(false);
    await store.quorum.insertRequest({ id: 'qr_3', operation: '{}', hash: '02'.repeat(32), createdAt: t0, expiresAt: later(60) });
    const results = await Promise.all(Array.from({ length: 8 }, () => store.quorum.markUsed('qr_3', later(30))));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await store.quorum.find('qr_3'))?.usedAt).toEqual(later(30));
    expect(await store.quorum.markUsed('qr_3', later(31))).toBe(false);
    expect(await store.quorum.markUsed('qr_none', later(31))).toBe(false);
  });
});
