import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RevocationAuthority } from '../revoke.js';
import { PkiError } from '../../errors/pki-error.js';
import { pemBlocks } from '../../pki/pem.js';
import { testPki, type TestPki } from '../../../test/helpers/test-pki.js';
import { deviceCsr, makeFactoryCa, makeIdevid, type Factory } from '../../../test/helpers/device.js';
import { tempDir } from '../../../test/helpers/openssl.js';
import { DeviceEnrollment, secretHashOf, type DeviceAuth } from './enroll.js';
import type { DeviceRecord, DeviceStatus } from './ports.js';

const der = (pem: string) => pemBlocks(pem)[0]!.der;

let pki: TestPki;
let tmp: ReturnType<typeof tempDir>;
let factory: Factory;
let stranger: Factory;
let enrollment: DeviceEnrollment;
/** A second enrollment front on the same store, as another process or node would have. */
let otherProcess: DeviceEnrollment;
/** One whose CA fails to sign. */
let failingCa: DeviceEnrollment;

function register(id: string, o: { secret?: string; status?: DeviceStatus; reprovision?: DeviceRecord['reprovision'] } = {}) {
  return pki.instance.store.devices.insert({ id, status: o.status ?? 'registered', profile: 'device', issuerId: null, reprovision: o.reprovision ?? 'never', attributes: {}, secretHash: o.secret ? secretHashOf(o.secret) : null, eabKeyId: null }, new Date());
}

async function enroll(auth: DeviceAuth, csrId: string, profile?: string) {
  const csr = await deviceCsr(tmp.dir, csrId);
  return enrollment.enroll({ auth, csr: csr.csrPem, via: 'est', ...(profile ? { profile } : {}) });
}

async function refusal(p: Promise<unknown>): Promise<{ type: string; message: string }> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(PkiError);
  return { type: (err as PkiError).type, message: (err as PkiError).message };
}

beforeAll(async () => {
  pki = await testPki();
  tmp = tempDir();
  factory = await makeFactoryCa(tmp.dir, 'acme-factory');
  stranger = await makeFactoryCa(tmp.dir, 'unknown-factory');
  await pki.instance.store.manufacturerCas.insert({ name: 'acme-factory', certDer: der(factory.certPem), subject: 'O=acme-factory', sha256: createHash('sha256').update(der(factory.certPem)).digest('hex'), notAfter: new Date(Date.now() + 1e10) }, new Date());
  const revocation = new RevocationAuthority({ certificates: pki.instance.store.certificates, audit: pki.instance.audit, clock: pki.instance.clock });
  const deps = {
    ra: pki.ra,
    devices: pki.instance.store.devices,
    manufacturers: pki.instance.store.manufacturerCas,
    certificates: pki.instance.store.certificates,
    revocation,
    audit: pki.instance.audit,
    clock: pki.instance.clock,
    issuingCas: () => pki.instance.cas.filter((c) => c.role === 'issuing'),
  };
  enrollment = new DeviceEnrollment(deps);
  otherProcess = new DeviceEnrollment(deps);
  failingCa = new DeviceEnrollment({
    ...deps,
    ra: { checkRequest: (r) => pki.ra.checkRequest(r), issue: () => Promise.reject(new Error('the signing key is unavailable')) },
  });
}, 60_000);
afterAll(async () => {
  await pki?.close();
  tmp?.cleanup();
});

describe('enrollment secret', () => {
  test('enrolls once: the certificate names the device, the device becomes active, the secret is used up', async () => {
    await register('sec-1', { secret: 's3cret-1' });
    const r = await enroll({ method: 'secret', deviceId: 'sec-1', secret: 's3cret-1' }, 'sec-1');
    expect(r.deviceId).toBe('sec-1');
    const rec = await pki.instance.store.certificates.findBySerial(r.issued.issuerId, r.issued.serialHex);
    expect(rec).toMatchObject({ deviceId: 'sec-1', status: 'valid', requestedVia: 'est', requestedBy: 'device:sec-1' });
    expect(await pki.instance.store.devices.find('sec-1')).toMatchObject({ status: 'active', secretHash: null });
    // Reused secret.
    expect(await refusal(enroll({ method: 'secret', deviceId: 'sec-1', secret: 's3cret-1' }, 'sec-1'))).toMatchObject({ type: 'unauthorized' });
  });

  test('two concurrent enrollments with one secret: exactly one is issued', async () => {
    await register('sec-race', { secret: 'race-secret', reprovision: 'reset' });
    const auth = { method: 'secret', deviceId: 'sec-race', secret: 'race-secret' } as const;
    const [a, b] = await Promise.allSettled([enroll(auth, 'sec-race'), enroll(auth, 'sec-race')]);
    expect([a.status, b.status].sort()).toEqual(['fulfilled', 'rejected']);
    const lost = (a.status === 'rejected' ? a : b) as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({ type: 'unauthorized' });
    expect(await pki.instance.store.certificates.validForDevice('sec-race', new Date())).toHaveLength(1);
  });

  test('wrong secret and unknown device are the same 401; neither consumes the secret', async () => {
    await register('sec-2', { secret: 'right-horse' });
    const wrong = await refusal(enroll({ method: 'secret', deviceId: 'sec-2', secret: 'wrong-horse' }, 'sec-2'));
    const unknown = await refusal(enroll({ method: 'secret', deviceId: 'nobody', secret: 'right-horse' }, 'nobody'));
    expect(wrong).toEqual({ type: 'unauthorized', message: 'device id or enrollment secret is wrong' });
    expect(unknown).toEqual(wrong);
    expect((await pki.instance.store.devices.find('sec-2'))!.secretHash).toBe(secretHashOf('right-horse'));
  });

  test('a CSR for another device is refused and keeps the secret', async () => {
    await register('sec-3', { secret: 'three' });
    expect(await refusal(enroll({ method: 'secret', deviceId: 'sec-3', secret: 'three' }, 'sec-4'))).toEqual({ type: 'forbidden', message: 'the CSR names device "sec-4" but the credential is for device "sec-3"' });
    expect((await pki.instance.store.devices.find('sec-3'))!.secretHash).not.toBeNull();
  });

  test('a CA that fails to sign spends neither the secret nor the registration', async () => {
    await register('sec-fail', { secret: 'fail-once' });
    const csr = await deviceCsr(tmp.dir, 'sec-fail');
    const auth = { method: 'secret', deviceId: 'sec-fail', secret: 'fail-once' } as const;
    await expect(failingCa.enroll({ auth, csr: csr.csrPem, via: 'est' })).rejects.toThrow('the signing key is unavailable');
    expect(await pki.instance.store.devices.find('sec-fail')).toMatchObject({ status: 'registered', secretHash: secretHashOf('fail-once') });
    expect((await enroll(auth, 'sec-fail')).deviceId).toBe('sec-fail');
  });

  test('disabled and retired devices are refused', async () => {
    await register('sec-dis', { secret: 'd', status: 'disabled' });
    await register('sec-ret', { secret: 'r', status: 'retired' });
    expect(await refusal(enroll({ method: 'secret', deviceId: 'sec-dis', secret: 'd' }, 'sec-dis'))).toEqual({ type: 'forbidden', message: 'device "sec-dis" is disabled' });
    expect(await refusal(enroll({ method: 'secret', deviceId: 'sec-ret', secret: 'r' }, 'sec-ret'))).toEqual({ type: 'forbidden', message: 'device "sec-ret" is retired' });
  });

  test('every enrollment and refusal is audited, never with the secret', async () => {
    const events = await pki.instance.store.audit.range(0, 10_000);
    const mine = events.filter((e) => e.type.startsWith('device.')).map((e) => ({ ...e, data: JSON.parse(e.data) as Record<string, unknown> }));
    expect(mine.some((e) => e.type === 'device.enrolled' && e.actor === 'device:sec-1' && e.data.method === 'secret')).toBe(true);
    expect(mine.some((e) => e.type === 'device.enroll_refused' && e.data.device === 'sec-dis')).toBe(true);
    expect(JSON.stringify(mine)).not.toMatch(/s3cret-1|right-horse|wrong-horse/);
    const dbFile = fs.readFileSync(`${pki.dataDir}/trellis.db`);
    expect(dbFile.includes(Buffer.from('s3cret-1'))).toBe(false);
  });
});

describe('factory identity (IDevID)', () => {
  test('enrolls a registered device named by its IDevID; policy never then refuses a second enrollment', async () => {
    await register('fac-1');
    const id = await makeIdevid(tmp.dir, factory, 'fac-1');
    const chain = [der(id.certPem)];
    const r = await enroll({ method: 'idevid', chain }, 'fac-1');
    expect(r.deviceId).toBe('fac-1');
    expect(await refusal(enroll({ method: 'idevid', chain }, 'fac-1'))).toMatchObject({ type: 'forbidden', message: expect.stringMatching(/already holds a valid certificate .* policy is never$/) });
  });

  test('policy never: two concurrent enrollments with one IDevID issue once', async () => {
    await register('fac-race');
    const chain = [der((await makeIdevid(tmp.dir, factory, 'fac-race')).certPem)];
    const results = await Promise.allSettled([enroll({ method: 'idevid', chain }, 'fac-race'), enroll({ method: 'idevid', chain }, 'fac-race')]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(await pki.instance.store.certificates.validForDevice('fac-race', new Date())).toHaveLength(1);
  });

  test('policy never across processes: two fronts enrolling one IDevID at once issue once (the enrollment lease)', async () => {
    await register('fac-2proc');
    const chain = [der((await makeIdevid(tmp.dir, factory, 'fac-2proc')).certPem)];
    const csr = (await deviceCsr(tmp.dir, 'fac-2proc')).csrPem;
    const results = await Promise.allSettled([enrollment, otherProcess].map((e) => e.enroll({ auth: { method: 'idevid', chain }, csr, via: 'est' })));
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const lost = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as PkiError;
    // Busy while the other holds the lease (with a Retry-After), or refused by the policy once it has issued.
    if (lost.type === 'conflict') expect(lost).toMatchObject({ message: 'another enrollment of device "fac-2proc" is in progress', retryAfterSeconds: 2 });
    else expect(lost).toMatchObject({ type: 'forbidden', message: expect.stringMatching(/policy is never$/) });
    expect(await pki.instance.store.certificates.validForDevice('fac-2proc', new Date())).toHaveLength(1);
    expect(await pki.instance.store.devices.find('fac-2proc')).toMatchObject({ status: 'active' });
  });

  test('unknown manufacturer, id mismatch, unregistered device', async () => {
    await register('fac-2');
    const foreign = await makeIdevid(tmp.dir, stranger, 'fac-2');
    expect(await refusal(enroll({ method: 'idevid', chain: [der(foreign.certPem)] }, 'fac-2'))).toEqual({ type: 'unauthorized', message: 'factory identity refused: the client certificate does not chain to a trusted CA' });
    const ours = await makeIdevid(tmp.dir, factory, 'fac-2');
    expect(await refusal(enroll({ method: 'idevid', chain: [der(ours.certPem)] }, 'fac-3'))).toMatchObject({ type: 'forbidden', message: 'the CSR names device "fac-3" but the credential is for device "fac-2"' });
    const unregistered = await makeIdevid(tmp.dir, factory, 'fac-none');
    expect(await refusal(enroll({ method: 'idevid', chain: [der(unregistered.certPem)] }, 'fac-none'))).toEqual({ type: 'forbidden', message: 'device "fac-none" is not registered' });
  });

  test('policy reset issues again and revokes the old certificate as superseded', async () => {
    await register('fac-reset', { reprovision: 'reset' });
    const chain = [der((await makeIdevid(tmp.dir, factory, 'fac-reset')).certPem)];
    const first = await enroll({ method: 'idevid', chain }, 'fac-reset');
    const second = await enroll({ method: 'idevid', chain }, 'fac-reset');
    expect(second.superseded).toEqual([first.issued.serialHex]);
    expect(await pki.instance.store.certificates.findBySerial(first.issued.issuerId, first.issued.serialHex)).toMatchObject({ status: 'revoked', revocationReason: 4 });
  });
});

describe('re-enrollment with the current certificate', () => {
  test('renews; a revoked certificate, a certificate of no device and a disabled device are refused', async () => {
    await register('re-1', { secret: 'one', reprovision: 'reset' });
    const first = await enroll({ method: 'secret', deviceId: 're-1', secret: 'one' }, 're-1');
    const renewed = await enroll({ method: 'reenroll', chain: [first.issued.certDer] }, 're-1');
    expect(renewed.superseded).toEqual([first.issued.serialHex]);
    // The first certificate is now revoked (superseded): it cannot renew again.
    expect(await refusal(enroll({ method: 'reenroll', chain: [first.issued.certDer] }, 're-1'))).toEqual({ type: 'forbidden', message: `certificate ${first.issued.serialHex} is revoked` });
    // Another device's id in the CSR.
    expect(await refusal(enroll({ method: 'reenroll', chain: [renewed.issued.certDer] }, 're-2'))).toMatchObject({ type: 'forbidden' });
    // A certificate from the factory CA is not ours.
    const idevid = await makeIdevid(tmp.dir, factory, 're-1');
    expect(await refusal(enroll({ method: 'reenroll', chain: [der(idevid.certPem)] }, 're-1'))).toMatchObject({ type: 'unauthorized' });
    expect(await pki.instance.store.devices.setStatus('re-1', ['active'], 'disabled', new Date())).toBe(true);
    expect(await refusal(enroll({ method: 'reenroll', chain: [renewed.issued.certDer] }, 're-1'))).toEqual({ type: 'forbidden', message: 'device "re-1" is disabled' });
  });
});
