/**
 * The device registry's storage contract on every flavour (SQLite always,
 * PostgreSQL with TRELLIS_TEST_DATABASE_URL): inserts, the all-or-nothing
 * bulk insert (timed at 100,000 devices, no assertion on the time), cursor
 * listing, compare-and-set status and secret, and manufacturer CAs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chainHash } from '../audit/audit-log.js';
import { isPkiError } from '../errors/pki-error.js';
import type { NewDevice } from '../ra/devices/ports.js';
import type { Db } from './client.js';
import { openStoreInternals, type Store } from './open.js';
import { contractFlavours, type FreshDatabase } from './testing/flavours.js';

const t0 = new Date('2026-03-04T05:06:07.890Z');
const later = (s: number) => new Date(t0.getTime() + s * 1000);

const device = (id: string, over: Partial<NewDevice> = {}): NewDevice => ({
  id,
  status: 'registered',
  profile: 'device',
  issuerId: null,
  reprovision: 'never',
  attributes: {},
  secretHash: null,
  eabKeyId: null,
  ...over,
});

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe.each(contractFlavours('device registry contract'))('device registry: $name', (flavour) => {
  let fresh: FreshDatabase;
  let store: Store;
  let db: Db;
  beforeAll(async () => {
    fresh = await flavour.fresh();
    ({ store, db } = await openStoreInternals(fresh.url));
  });
  afterAll(async () => {
    await store?.close();
    await fresh?.drop();
  });

  test('insert, find (attributes and dates round-trip), conflict on an existing id', async () => {
    const hash = createHash('sha256').update('secret').digest('hex');
    await store.devices.insert(device('a-1', { attributes: { site: 'Lyon', 'model no': 'X=2, "q"' }, secretHash: hash, reprovision: 'reset' }), t0);
    expect(await store.devices.find('a-1')).toEqual({
      id: 'a-1',
      status: 'registered',
      profile: 'device',
      issuerId: null,
      reprovision: 'reset',
      attributes: { site: 'Lyon', 'model no': 'X=2, "q"' },
      secretHash: hash,
      eabKeyId: null,
      createdAt: t0,
      updatedAt: t0,
    });
    expect(await store.devices.find('nope')).toBeNull();
    const err = await errorOf(store.devices.insert(device('a-1'), t0));
    expect(isPkiError(err, 'conflict')).toBe(true);
    expect((err as Error).message).toContain('"a-1"');
  });

  test('insertMany: all or none; existing and repeated ids are conflicts naming them', async () => {
    await store.devices.insertMany([], t0);
    const before = await store.devices.count();
    const dup = await errorOf(store.devices.insertMany([device('b-1'), device('b-2'), device('b-1')], t0));
    expect(isPkiError(dup, 'conflict')).toBe(true);
    expect((dup as Error).message).toContain('"b-1"');
    const existing = await errorOf(store.devices.insertMany([device('b-1'), device('a-1'), device('b-2')], t0));
    expect(isPkiError(existing, 'conflict')).toBe(true);
    expect((existing as Error).message).toBe('devices already registered: "a-1"');
    expect(await store.devices.count()).toBe(before);
    expect(await store.devices.find('b-1')).toBeNull();
    await store.devices.insertMany([device('b-1', { attributes: { k: 'v' } }), device('b-2')], later(1));
    expect(await store.devices.find('b-1')).toMatchObject({ attributes: { k: 'v' }, createdAt: later(1) });
    expect(await store.devices.count()).toBe(before + 2);
  });

  test('insertMany: 100,000 devices in one call (time printed)', { timeout: 300_000 }, async () => {
    const n = 100_000;
    const devices = Array.from({ length: n }, (_, i) => device(`bulk-${String(i).padStart(6, '0')}`, { attributes: { lot: String(i % 97) }, secretHash: randomBytes(32).toString('hex') }));
    const start = performance.now();
    await store.devices.insertMany(devices, later(2));
    const ms = performance.now() - start;
    console.log(`[${flavour.name}] insertMany of ${n} devices: ${(ms / 1000).toFixed(2)} s (${Math.round(n / (ms / 1000))} devices/s)`);
    expect(await store.devices.count()).toBeGreaterThanOrEqual(n);
    expect(await store.devices.find('bulk-099999')).toMatchObject({ attributes: { lot: String(99_999 % 97) } });
    // A second list that overlaps by one id at the very end stores nothing.
    const again = [...Array.from({ length: 2000 }, (_, i) => device(`late-${i}`)), device('bulk-099999')];
    const err = await errorOf(store.devices.insertMany(again, later(3)));
    expect((err as Error).message).toBe('devices already registered: "bulk-099999"');
    expect(await store.devices.find('late-0')).toBeNull();
  });

  test('list: id order, cursor, limit, status filter; count by status', async () => {
    await store.devices.insertMany(['c-3', 'c-1', 'c-2'].map((id) => device(id)), t0);
    const page1 = await store.devices.list({ after: 'c', limit: 2 });
    expect(page1.map((d) => d.id)).toEqual(['c-1', 'c-2']);
    const page2 = await store.devices.list({ after: page1.at(-1)!.id, limit: 2 });
    expect(page2[0]!.id).toBe('c-3');
    expect(await store.devices.setStatus('c-2', ['registered', 'active'], 'disabled', later(5))).toBe(true);
    expect((await store.devices.list({ limit: 10, status: 'disabled' })).map((d) => d.id)).toEqual(['c-2']);
    expect(await store.devices.count('disabled')).toBe(1);
  });

  test('setStatus is compare-and-set; updatedAt follows', async () => {
    await store.devices.insert(device('d-1'), t0);
    expect(await store.devices.setStatus('d-1', ['disabled'], 'registered', later(1))).toBe(false);
    expect(await store.devices.setStatus('d-1', ['registered', 'active', 'disabled'], 'retired', later(2))).toBe(true);
    expect(await store.devices.find('d-1')).toMatchObject({ status: 'retired', updatedAt: later(2), createdAt: t0 });
    expect(await store.devices.setStatus('nope', ['registered'], 'disabled', later(2))).toBe(false);
  });

  test('beginEnrollment uses the secret once, with the right hash only; two racing, one wins; a failed enrollment gives it back', async () => {
    const hash = createHash('sha256').update('s1').digest('hex');
    await store.devices.insert(device('e-1', { secretHash: hash }), t0);
    const lease = (s: number, secretHash?: string) => ({ until: later(s + 60), at: later(s), ...(secretHash ? { secretHash } : {}) });
    expect(await store.devices.beginEnrollment('e-1', lease(1, 'f'.repeat(64)))).toBe('badSecret');
    expect(await store.devices.beginEnrollment('nope', lease(1, hash))).toBe('notFound');
    const results = await Promise.all([store.devices.beginEnrollment('e-1', lease(1, hash)), store.devices.beginEnrollment('e-1', lease(1, hash))]);
    const won = results.filter((r) => typeof r === 'object');
    expect(won).toHaveLength(1);
    expect(won[0]).toMatchObject({ id: 'e-1', status: 'registered', secretHash: null, updatedAt: later(1) });
    expect(results.filter((r) => r === 'badSecret')).toHaveLength(1);
    // Failed: the secret comes back and the lease is released; the device stays registered.
    await store.devices.endEnrollment('e-1', lease(1), { issued: false, restoreSecret: hash, at: later(2) });
    expect(await store.devices.find('e-1')).toMatchObject({ status: 'registered', secretHash: hash });
    // Issued: the secret stays spent and the device becomes active.
    expect(await store.devices.beginEnrollment('e-1', lease(3, hash))).toMatchObject({ secretHash: null });
    await store.devices.endEnrollment('e-1', lease(3), { issued: true, restoreSecret: hash, at: later(4) });
    expect(await store.devices.find('e-1')).toMatchObject({ status: 'active', secretHash: null, updatedAt: later(4) });
    expect(await store.devices.beginEnrollment('e-1', lease(5, hash))).toBe('badSecret');
  });

  test('beginEnrollment is a lease: a second one is busy until the first ends or its lease passes', async () => {
    await store.devices.insert(device('e-2', { status: 'active' }), t0);
    const first = { until: later(60), at: later(1) };
    expect(await store.devices.beginEnrollment('e-2', first)).toMatchObject({ id: 'e-2', status: 'active' });
    expect(await store.devices.beginEnrollment('e-2', { until: later(70), at: later(10) })).toBe('busy');
    // Past the first lease's end a crashed holder's lease is taken over...
    const second = { until: later(121), at: later(61) };
    expect(await store.devices.beginEnrollment('e-2', second)).toMatchObject({ id: 'e-2' });
    // ...and the first holder ending late does not release the second's lease.
    await store.devices.endEnrollment('e-2', first, { issued: true, at: later(62) });
    expect(await store.devices.beginEnrollment('e-2', { until: later(123), at: later(63) })).toBe('busy');
    await store.devices.endEnrollment('e-2', second, { issued: true, at: later(64) });
    expect(await store.devices.beginEnrollment('e-2', { until: later(125), at: later(65) })).toMatchObject({ id: 'e-2' });
  });

  test('setEnrollment and setEabKey; an unknown device is notFound', async () => {
    await store.devices.insert(device('f-1'), t0);
    await store.devices.setEnrollment('f-1', 'device-b', 'issuing-2', later(1));
    await store.devices.setEabKey('f-1', 'eab-1', later(2));
    expect(await store.devices.find('f-1')).toMatchObject({ profile: 'device-b', issuerId: 'issuing-2', eabKeyId: 'eab-1', updatedAt: later(2) });
    expect(isPkiError(await errorOf(store.devices.setEnrollment('zz', 'p', null, t0)), 'notFound')).toBe(true);
    expect(isPkiError(await errorOf(store.devices.setEabKey('zz', 'k', t0)), 'notFound')).toBe(true);
  });

  test('validCertificatesOf: the valid certificates issued to the device', async () => {
    const ca = { id: `ca-${flavour.name}`, name: 'dev ca', role: 'issuing' as const, parentId: null, certDer: Buffer.from('x'), subject: 'CN=x', skiHex: randomBytes(20).toString('hex'), keyRef: '{}', notBefore: t0, notAfter: later(1e6) };
    await store.cas.insert(ca);
    const serials = ['0a01', '0a02', '0a03'];
    const intents = serials.map((serialHex) => ({ issuerId: ca.id, serialHex, profile: 'device', subject: 'CN=g-1', sans: '[]', notBefore: t0, notAfter: later(1e5), lintDer: randomBytes(10), crlShard: 0, requestedVia: 'api' as const, requestedBy: null, keyId: null }));
    await store.certificates.insertIntents(intents);
    await store.certificates.completeMany({ issued: serials.map((serialHex) => ({ issuerId: ca.id, serialHex, der: randomBytes(50), issuedAt: later(1) })), failed: [] }, { drafts: [], chain: chainHash });
    // Certificate.deviceId is set by enrollment (another part of issue 10); set it directly here.
    await db.certificate.updateMany({ where: { serialHex: { in: serials } }, data: { deviceId: 'g-1' } });
    await store.certificates.revoke(ca.id, '0a02', { reason: 4, revokedAt: later(2), invalidityDate: null, revokedBy: 'test' });
    expect(await store.devices.validCertificatesOf('g-1')).toEqual([
      { issuerId: ca.id, serialHex: '0a01' },
      { issuerId: ca.id, serialHex: '0a03' },
    ]);
    expect(await store.devices.validCertificatesOf('nobody')).toEqual([]);
    expect(await store.devices.everIssued('g-1')).toBe(true);
    expect(await store.devices.everIssued('nobody')).toBe(false);
    expect((await store.devices.existing(['g-x', 'bulk-000001', 'a-1'])).sort()).toEqual(['a-1', 'bulk-000001']);
  });

  test('manufacturer CAs: insert, list, conflict on name or certificate', async () => {
    const der = randomBytes(300);
    const sha256 = createHash('sha256').update(der).digest('hex');
    await store.manufacturerCas.insert({ name: 'acme-factory', certDer: der, subject: 'CN=Factory CA', sha256, notAfter: later(1e6) }, t0);
    expect(await store.manufacturerCas.list()).toEqual([{ name: 'acme-factory', certDer: der, subject: 'CN=Factory CA', sha256, notAfter: later(1e6), createdAt: t0 }]);
    expect(isPkiError(await errorOf(store.manufacturerCas.insert({ name: 'acme-factory', certDer: randomBytes(3), subject: 'CN=y', sha256: 'ab', notAfter: t0 }, t0)), 'conflict')).toBe(true);
    expect(isPkiError(await errorOf(store.manufacturerCas.insert({ name: 'other', certDer: der, subject: 'CN=y', sha256, notAfter: t0 }, t0)), 'conflict')).toBe(true);
  });
});
