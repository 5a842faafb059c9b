/**
 * The device registry on a real SQLite store with the shipped profiles:
 * register, import (all or nothing, every bad line named), transitions,
 * retirement revoking the device's certificates, manufacturer CAs (made with
 * OpenSSL). Secrets are returned once and never reach the audit log.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AuditLog, chainHash } from '../../audit/audit-log.js';
import { fixedClock, systemClock } from '../../clock/clock.js';
import { isPkiError, PkiError } from '../../errors/pki-error.js';
import { defaultProfilesDir, loadProfiles } from '../../profiles/load.js';
import { openStore, type Store } from '../../store/open.js';
import { makeFactoryCa } from '../../../test/helpers/device.js';
import { openssl } from '../../../test/helpers/openssl.js';
import { RevocationAuthority } from '../revoke.js';
import { DeviceRegistry, parseAttribute } from './registry.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-registry-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const clock = systemClock;
const actor = { by: 'test', via: 'cli' as const };
let store: Store;
let registry: DeviceRegistry;
let deps: ConstructorParameters<typeof DeviceRegistry>[0];

beforeAll(async () => {
  store = await openStore(`file:${path.join(dir, 'db.sqlite')}`);
  const audit = new AuditLog(store.audit, clock);
  const profiles = await loadProfiles(defaultProfilesDir());
  deps = { devices: store.devices, manufacturerCas: store.manufacturerCas, profiles, audit, clock, revocation: new RevocationAuthority({ certificates: store.certificates, audit, clock }) };
  registry = new DeviceRegistry(deps);
});
afterAll(() => store?.close());

async function errorOf(p: Promise<unknown>): Promise<PkiError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof PkiError)) throw new Error(`expected a PkiError, got ${String(e)}`);
  return e;
}

async function auditText(): Promise<string> {
  return JSON.stringify(await store.audit.range(1, 100_000));
}

describe('register', () => {
  test('a device with a one-time secret (base64url of 32 bytes), stored only as its SHA-256', async () => {
    const { device, secret } = await registry.register({ id: 'gw-01', attributes: { site: 'Lyon' }, reprovision: 'reset' }, actor);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(device).toMatchObject({ id: 'gw-01', status: 'registered', profile: 'device', reprovision: 'reset', attributes: { site: 'Lyon' }, hasSecret: true });
    expect(device).not.toHaveProperty('secretHash');
    expect((await store.devices.find('gw-01'))!.secretHash).toBe(createHash('sha256').update(secret).digest('hex'));
    const log = await auditText();
    expect(log).toContain('device.registered');
    expect(log).not.toContain(secret);
  });

  test('policy defaults to never; attributes optional', async () => {
    expect((await registry.register({ id: 'gw-02' }, actor)).device).toMatchObject({ reprovision: 'never', attributes: {} });
  });

  test.each([
    ['an id outside the profile pattern', { id: 'bad id!' }, 'malformed', /does not match the pattern/],
    ['an unknown profile', { id: 'x1', profile: 'nope' }, 'badProfile', /unknown profile "nope"/],
    ['a profile without deviceId', { id: 'x1', profile: 'server' }, 'badProfile', /has no deviceId section/],
    ['a bad policy', { id: 'x1', reprovision: 'always' }, 'malformed', /reprovision policy "always" is not one of never, reset, migrate/],
    ['an id already registered', { id: 'gw-01' }, 'conflict', /"gw-01" is already registered/],
  ] as const)('refuses %s', async (_n, input, type, message) => {
    const err = await errorOf(registry.register(input, actor));
    expect(err.type).toBe(type);
    expect(err.message).toMatch(message);
  });

  test('attributes are k=v', () => {
    expect(parseAttribute('model=X=1')).toEqual(['model', 'X=1']);
    expect(() => parseAttribute('novalue')).toThrow(/is not k=v/);
    expect(() => parseAttribute('id=3')).toThrow(/not id, profile or reprovision/);
  });
});

describe('import', () => {
  test('every bad line is named with its reason; nothing is stored', async () => {
    const before = await store.devices.count();
    const csv = ['id,profile,reprovision,model', 'ok-1,,,A', 'bad id,,,A', 'ok-2,,,B', 'ok-1,,,C', 'gw-01,,,D', 'ok-3,nope,,E', 'ok-4,,sometimes,F', ',,,G', 'ok-5,server,,H'].join('\n');
    const err = await errorOf(registry.importCsv(csv, { makeSecrets: false, ...actor }));
    expect(err.type).toBe('malformed');
    expect(err.extra?.problems).toEqual([
      { line: 3, reason: expect.stringMatching(/^device id "bad id" does not match the pattern/) },
      { line: 5, reason: 'device id "ok-1" already on line 2' },
      { line: 6, reason: 'device id "gw-01" is already registered' },
      { line: 7, reason: 'unknown profile "nope"' },
      { line: 8, reason: 'reprovision policy "sometimes" is not one of never, reset, migrate' },
      { line: 9, reason: 'no device id' },
      { line: 10, reason: expect.stringMatching(/profile "server" has no deviceId section/) },
    ]);
    expect(err.message).toMatch(/^nothing imported: 7 bad lines: line 3: device id "bad id"/);
    expect(await store.devices.count()).toBe(before);
  });

  test('a good list goes in whole, without secrets unless asked', async () => {
    const r = await registry.importCsv('id,model\nimp-1,A\nimp-2,"B, rev 2"\n', { makeSecrets: false, ...actor });
    expect(r).toEqual({ count: 2, secrets: [] });
    expect(await store.devices.find('imp-2')).toMatchObject({ attributes: { model: 'B, rev 2' }, secretHash: null, status: 'registered' });
  });

  test('with secrets: one per device, in file order, hashes stored, none in the audit log', async () => {
    const progress: number[] = [];
    const r = await registry.importCsv('id,reprovision\nsec-1,migrate\nsec-2,\n', { makeSecrets: true, ...actor, onProgress: (done) => progress.push(done) });
    expect(r.secrets.map((s) => s.id)).toEqual(['sec-1', 'sec-2']);
    expect((await store.devices.find('sec-1'))).toMatchObject({ reprovision: 'migrate', secretHash: createHash('sha256').update(r.secrets[0]!.secret).digest('hex') });
    expect(progress.at(-1)).toBe(2);
    const log = await auditText();
    for (const s of r.secrets) expect(log).not.toContain(s.secret);
  });

  test('an empty list is refused', async () => {
    expect((await errorOf(registry.importCsv('id\n', { makeSecrets: false, ...actor }))).extra?.problems).toEqual([{ line: 1, reason: 'the file lists no devices' }]);
  });
});

describe('transitions', () => {
  test('disable, enable (back to registered), retire; retired is final; wrong states are conflicts', async () => {
    await registry.register({ id: 'tr-1' }, actor);
    expect((await registry.disable('tr-1', actor)).status).toBe('disabled');
    expect((await errorOf(registry.disable('tr-1', actor))).message).toBe('device "tr-1" is disabled: disable applies only to a device that is registered or active');
    expect((await registry.enable('tr-1', actor)).status).toBe('registered');
    expect((await errorOf(registry.enable('tr-1', actor))).type).toBe('conflict');
    expect((await registry.retire('tr-1', actor)).status).toBe('retired');
    for (const op of ['disable', 'enable', 'retire'] as const) expect((await errorOf(registry[op]('tr-1', actor))).type).toBe('conflict');
    expect((await errorOf(registry.disable('nobody', actor))).type).toBe('notFound');
    expect(await auditText()).toMatch(/device\.disabled.*device\.enabled.*device\.retired/);
  });

  test('retire revokes the valid certificates as cessationOfOperation; enable after disable of an enrolled device is active', async () => {
    await registry.register({ id: 'tr-2' }, actor);
    const ca = { id: 'ca-reg', name: 'reg ca', role: 'issuing' as const, parentId: null, certDer: Buffer.from('x'), subject: 'CN=x', skiHex: randomBytes(20).toString('hex'), keyRef: '{}', notBefore: clock.now(), notAfter: new Date(clock.now().getTime() + 1e9) };
    await store.cas.insert(ca);
    const serials = ['7a01', '7a02', '7a03'];
    await store.certificates.insertIntents(serials.map((serialHex) => ({ issuerId: ca.id, serialHex, profile: 'device', subject: 'serialNumber=tr-2', sans: '[]', notBefore: clock.now(), notAfter: new Date(clock.now().getTime() + 1e8), lintDer: randomBytes(10), crlShard: 0, requestedVia: 'api' as const, requestedBy: null, keyId: null, deviceId: 'tr-2' })));
    await store.certificates.completeMany({ issued: serials.map((serialHex) => ({ issuerId: ca.id, serialHex, der: randomBytes(50), issuedAt: clock.now() })), failed: [] }, { drafts: [], chain: chainHash });
    await store.certificates.revoke(ca.id, '7a03', { reason: 1, revokedAt: clock.now(), invalidityDate: null, revokedBy: 'test' });
    await store.devices.setStatus('tr-2', ['registered'], 'active', clock.now());
    await registry.disable('tr-2', actor);
    expect((await registry.enable('tr-2', actor)).status).toBe('active');
    const retired = await registry.retire('tr-2', actor);
    expect(retired.revoked).toEqual([
      { issuerId: ca.id, serialHex: '7a01' },
      { issuerId: ca.id, serialHex: '7a02' },
    ]);
    for (const s of ['7a01', '7a02']) expect(await store.certificates.findBySerial(ca.id, s)).toMatchObject({ status: 'revoked', revocationReason: 5 });
    expect(await store.certificates.findBySerial(ca.id, '7a03')).toMatchObject({ revocationReason: 1 });
  });
});

describe('disable and enable reach gateways through certificate status', () => {
  test('disable holds the valid certificates, enable lifts only those holds, retire of a disabled device revokes the held ones', async () => {
    await registry.register({ id: 'tr-3' }, actor);
    const ca = { id: 'ca-hold', name: 'hold ca', role: 'issuing' as const, parentId: null, certDer: Buffer.from('x'), subject: 'CN=x', skiHex: randomBytes(20).toString('hex'), keyRef: '{}', notBefore: clock.now(), notAfter: new Date(clock.now().getTime() + 1e9) };
    await store.cas.insert(ca);
    const serials = ['7b01', '7b02', '7b03'];
    await store.certificates.insertIntents(serials.map((serialHex) => ({ issuerId: ca.id, serialHex, profile: 'device', subject: 'serialNumber=tr-3', sans: '[]', notBefore: clock.now(), notAfter: new Date(clock.now().getTime() + 1e8), lintDer: randomBytes(10), crlShard: 0, requestedVia: 'api' as const, requestedBy: null, keyId: null, deviceId: 'tr-3' })));
    await store.certificates.completeMany({ issued: serials.map((serialHex) => ({ issuerId: ca.id, serialHex, der: randomBytes(50), issuedAt: clock.now() })), failed: [] }, { drafts: [], chain: chainHash });
    await store.devices.setStatus('tr-3', ['registered'], 'active', clock.now());
    // An operator's own hold on one of them, before the device is disabled.
    await deps.revocation.revoke({ serialHex: '7b03', issuerId: ca.id, reason: 'certificateHold', by: 'operator', via: 'cli' });
    const disabled = await registry.disable('tr-3', actor);
    expect(disabled.held).toEqual([{ issuerId: ca.id, serialHex: '7b01' }, { issuerId: ca.id, serialHex: '7b02' }]);
    for (const s of serials) expect(await store.certificates.findBySerial(ca.id, s)).toMatchObject({ status: 'revoked', revocationReason: 6 });
    const enabled = await registry.enable('tr-3', actor);
    expect(enabled.released).toEqual(disabled.held);
    for (const s of ['7b01', '7b02']) expect(await store.certificates.findBySerial(ca.id, s)).toMatchObject({ status: 'valid' });
    expect(await store.certificates.findBySerial(ca.id, '7b03')).toMatchObject({ status: 'revoked', revocationReason: 6 });
    await registry.disable('tr-3', actor);
    const retired = await registry.retire('tr-3', actor);
    expect(retired.revoked.map((c) => c.serialHex).sort()).toEqual(serials);
    for (const s of serials) expect(await store.certificates.findBySerial(ca.id, s)).toMatchObject({ status: 'revoked', revocationReason: 5 });
  });
});

describe('manufacturer CAs', () => {
  test('a CA valid now is trusted and audited; a leaf, an expired CA and a repeat are refused', async () => {
    const factory = await makeFactoryCa(dir, 'acme-factory');
    const r = await registry.trustManufacturer('acme-factory', factory.certPem, actor);
    expect(r).toMatchObject({ name: 'acme-factory', subject: expect.stringContaining('acme-factory IDevID CA') });
    expect((await store.manufacturerCas.list()).map((m) => m.name)).toEqual(['acme-factory']);
    expect(await auditText()).toContain('device.manufacturer_trusted');
    expect((await errorOf(registry.trustManufacturer('again', factory.certPem, actor))).type).toBe('conflict');
    const leafKey = path.join(dir, 'leaf.key');
    const leafPath = path.join(dir, 'leaf.pem');
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', leafKey, '-subj', '/CN=leaf', '-days', '30', '-addext', 'basicConstraints=critical,CA:FALSE', '-out', leafPath);
    expect((await errorOf(registry.trustManufacturer('leaf', fs.readFileSync(leafPath), actor))).message).toMatch(/not a CA certificate/);
    // The same CA seen from after its notAfter, and from before its notBefore.
    const notAfter = new RegExp(`expired at ${r.notAfter.toISOString()}`);
    const late = new DeviceRegistry({ ...deps, clock: fixedClock(new Date(r.notAfter.getTime() + 1000)) });
    expect((await errorOf(late.trustManufacturer('late', factory.certPem, actor))).message).toMatch(notAfter);
    const early = new DeviceRegistry({ ...deps, clock: fixedClock(new Date(Date.now() - 86_400_000)) });
    expect((await errorOf(early.trustManufacturer('early', factory.certPem, actor))).message).toMatch(/is not valid before/);
    expect(isPkiError(await errorOf(registry.trustManufacturer('bad name!', factory.certPem, actor)), 'malformed')).toBe(true);
  });
});
