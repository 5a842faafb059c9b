import { generateKeyPairSync } from 'node:crypto';
import { expect, test } from 'vitest';
import type { AuditLog } from '../../audit/audit-log.js';
import { fixedClock } from '../../clock/clock.js';
import type { DeviceRecord } from '../devices/ports.js';
import { AcmeOrders, type AcmeOrdersDeps } from './orders.js';
import type { AcmeAccountRecord, AcmeAuthorizationRecord, AcmeOrderRecord, AcmeOrderRepository, ValidationVerdict } from './ports.js';
import { RateLimiter } from './rate-limit.js';

const clock = fixedClock(new Date('2026-12-01T00:00:00Z'));
const account: AcmeAccountRecord = { id: 'acct', thumbprint: 'tp', jwk: '{}', status: 'valid', contact: [], termsAgreed: true, eabKeyId: null, createdAt: clock.now() };
const authz = (): AcmeAuthorizationRecord => ({
  id: 'authz',
  accountId: 'acct',
  identifier: { type: 'dns', value: 'a.test' },
  wildcard: false,
  status: 'pending',
  expires: new Date(clock.now().getTime() + 86400_000),
  challenges: [{ type: 'http-01', token: 'tok', status: 'pending', validated: null, error: null }],
  createdAt: clock.now(),
});

/** Only what respondChallenge touches; the rest of the deps are never called here. */
function orders(opts: { verdictAfterMs: number; updateFails?: boolean; logged: Record<string, unknown>[]; calls?: { method: string; args: unknown[] }[] }) {
  const limiter = new RateLimiter(clock, 'x', 0);
  const repo = {
    findAuthorization: async (...args: unknown[]) => {
      opts.calls?.push({ method: 'findAuthorization', args });
      return authz();
    },
    updateAuthorization: async (...args: unknown[]) => {
      opts.calls?.push({ method: 'updateAuthorization', args });
      if (opts.updateFails) throw new Error('database is gone');
      return true;
    },
  } as unknown as AcmeOrderRepository;
  const validator = { validate: () => new Promise<ValidationVerdict>((r) => setTimeout(() => r({ status: 'valid' }), opts.verdictAfterMs)) };
  return new AcmeOrders({
    orders: repo,
    validator,
    audit: { record: async () => undefined } as unknown as AuditLog,
    clock,
    limits: { newOrdersPerAccount: limiter, newOrdersPerAddress: limiter, failedValidationsPerAccount: limiter, failedValidationsPerAddress: limiter },
    syncValidationMs: 20,
    log: (e: Record<string, unknown>) => opts.logged.push(e),
  } as unknown as AcmeOrdersDeps);
}

test('a validation slower than syncValidationMs answers processing with Retry-After; its later storage failure is logged, not left unhandled', async () => {
  const logged: Record<string, unknown>[] = [];
  const r = await orders({ verdictAfterMs: 60, updateFails: true, logged }).respondChallenge(account, 'authz', 'http-01', '127.0.0.1');
  expect(r.challenge.status).toBe('processing');
  expect(r.retryAfterSeconds).toBe(1);
  // The verdict arrives at 60 ms; wait for the log line without a fixed sleep (slow CI machines).
  for (let i = 0; i < 200 && logged.length === 0; i++) await new Promise((res) => setTimeout(res, 10));
  expect(logged).toEqual([expect.objectContaining({ level: 'error', authorization: 'authz', error: expect.stringMatching(/database is gone/) })]);
});

test('a failure to store a quick validation reaches the caller', async () => {
  const logged: Record<string, unknown>[] = [];
  await expect(orders({ verdictAfterMs: 1, updateFails: true, logged }).respondChallenge(account, 'authz', 'http-01', '127.0.0.1')).rejects.toThrow(/database is gone/);
});

test('a validation stores its move and audit event in one write, and answers what it stored without reading it again', async () => {
  const calls: { method: string; args: unknown[] }[] = [];
  const r = await orders({ verdictAfterMs: 1, logged: [], calls }).respondChallenge(account, 'authz', 'http-01', '127.0.0.1');
  expect(calls.map((c) => c.method)).toEqual(['findAuthorization', 'updateAuthorization']);
  const [id, expected, next, audit] = calls[1]!.args as [string, string, { status: string; expires: Date }, { drafts: { type: string; actor: string; data: Record<string, unknown> }[] }];
  expect([id, expected, next.status]).toEqual(['authz', 'pending', 'valid']);
  expect(audit.drafts).toEqual([expect.objectContaining({ type: 'acme.authorization_valid', actor: 'acme:acct', data: { authorization: 'authz', identifier: 'dns:a.test', challenge: 'http-01' } })]);
  expect(r.view.status).toBe('valid');
  expect(r.view.authorization.expires).toEqual(next.expires);
  expect(r.challenge).toEqual(expect.objectContaining({ type: 'http-01', status: 'valid', validated: clock.now() }));
});

// ---- device orders: reprovisioning policy (as EST applies it) ----------------

type Policy = DeviceRecord['reprovision'];

/** A device order ready to finalize, with stubs that record what finalize did. */
function deviceFinalize(o: { policy: Policy; orderProfile?: string; held?: readonly string[]; busy?: boolean }) {
  const deviceId = 'dev-1';
  const accountKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const certKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  const devAccount: AcmeAccountRecord = { ...account, jwk: JSON.stringify(accountKey.publicKey.export({ format: 'jwk' })), eabKeyId: 'eab-dev-1' };
  const order: AcmeOrderRecord = {
    id: 'order-1', accountId: 'acct', profile: o.orderProfile ?? 'device', status: 'pending', expires: new Date(clock.now().getTime() + 3600_000),
    identifiers: [{ type: 'permanent-identifier', value: deviceId }], authorizationIds: ['authz-1'], notBefore: null, notAfter: null,
    error: null, issuerId: null, certificateSerial: null, replaces: null, createdAt: clock.now(),
  };
  const attested: AcmeAuthorizationRecord = {
    ...authz(), id: 'authz-1', identifier: order.identifiers[0]!, status: 'valid',
    challenges: [{ type: 'device-attest-01', token: 'tok', status: 'valid', validated: clock.now(), error: null, attestedSpki: certKey.toString('base64') }],
  };
  const device: DeviceRecord = {
    id: deviceId, status: 'active', profile: 'device', issuerId: null, reprovision: o.policy, attributes: {},
    secretHash: null, eabKeyId: 'eab-dev-1', createdAt: clock.now(), updatedAt: clock.now(),
  };
  const log: string[] = [];
  const audited: { type: string; data: Record<string, unknown> }[] = [];
  let held = (o.held ?? []).map((serialHex) => ({ serialHex, issuerId: 'issuing-1' }));
  let serial = 0x10;
  const stored = new Map([[order.id, order]]);
  const deps = {
    orders: {
      findOrder: async (id: string) => stored.get(id) ?? null,
      findAuthorizations: async () => [attested],
      updateOrder: async (id: string, from: string, next: Partial<AcmeOrderRecord>) => {
        const cur = stored.get(id)!;
        if (cur.status !== from) return false;
        log.push(`order ${id} ${from}->${next.status}`);
        stored.set(id, { ...cur, ...next } as AcmeOrderRecord);
        return true;
      },
    },
    ra: {
      checkRequest: (input: { profile: string }) => ({ issuer: {}, request: { profile: { name: input.profile }, spkiDer: certKey, subject: { serialNumber: deviceId }, sans: [] } }),
      issue: async (checked: { request: { deviceId?: string; profile: { name: string }; completionSettles?: string } }) => {
        // The ACME router holds the answer until the store's writes are on disk: the CA is asked not to wait for its own.
        expect(checked.request.completionSettles).toBe('committed');
        // The registry row follows the CA's: once issued, the new certificate is one the device holds.
        await new Promise((r) => setTimeout(r, 5));
        const serialHex = (serial++).toString(16);
        log.push(`issue ${serialHex} for ${checked.request.deviceId} under ${checked.request.profile.name}`);
        held = [...held, { serialHex, issuerId: 'issuing-1' }];
        return { issuerId: 'issuing-1', serialHex, profile: checked.request.profile.name };
      },
    },
    certificates: { validForDevice: async () => held },
    audit: { record: async (type: string, _actor: string, data: Record<string, unknown>) => void audited.push({ type, data }) },
    clock,
    devices: {
      devices: {
        beginEnrollment: async () => (o.busy ? 'busy' : { ...device }),
        endEnrollment: async (id: string, _lease: unknown, end: { issued: boolean }) => void log.push(`release ${id}${end.issued ? ' issued' : ''}`),
        setEnrollment: async (id: string, profile: string) => {
          log.push(`move ${id} to ${profile}`);
          device.profile = profile;
        },
      },
      revocation: {
        revoke: async (r: { serialHex: string; reason: string; by: string; via: string }) => {
          log.push(`revoke ${r.serialHex} ${r.reason} by ${r.by} via ${r.via}`);
          held = held.filter((c) => c.serialHex !== r.serialHex);
          return {};
        },
      },
    },
  };
  const orders = new AcmeOrders(deps as unknown as AcmeOrdersDeps);
  const second = () => {
    stored.set('order-2', { ...order, id: 'order-2' });
    return orders.finalize(devAccount, 'order-2', Buffer.alloc(0));
  };
  return { finalize: () => orders.finalize(devAccount, order.id, Buffer.alloc(0)), second, log, audited, device };
}

test('reset: the new certificate is issued, then the held one is revoked as superseded by the device, via acme, and audited', async () => {
  const t = deviceFinalize({ policy: 'reset', held: ['01'] });
  expect((await t.finalize()).status).toBe('valid');
  expect(t.log).toEqual(['order order-1 pending->processing', 'issue 10 for dev-1 under device', 'order order-1 processing->valid', 'revoke 01 superseded by device:dev-1 via acme', 'release dev-1 issued']);
  expect(t.audited).toEqual([{ type: 'device.enrolled', data: expect.objectContaining({ device: 'dev-1', via: 'acme', serialHex: '10', superseded: ['01'] }) }]);
});

test('migrate: an order under another device profile is issued under it, the device moves there, and its old certificate is superseded', async () => {
  const t = deviceFinalize({ policy: 'migrate', orderProfile: 'device-v2', held: ['01'] });
  expect((await t.finalize()).status).toBe('valid');
  expect(t.log).toEqual(['order order-1 pending->processing', 'issue 10 for dev-1 under device-v2', 'order order-1 processing->valid', 'move dev-1 to device-v2', 'revoke 01 superseded by device:dev-1 via acme', 'release dev-1 issued']);
  expect(t.audited[0]!.data).toMatchObject({ profile: 'device-v2', migratedFrom: 'device', superseded: ['01'] });
});

test.each([
  ['rejects: never while a certificate is valid', { policy: 'never', held: ['01'] }, /already holds a valid certificate \(01\) and its reprovisioning policy is never/],
  ['rejects: never under another profile', { policy: 'never', orderProfile: 'device-v2' }, /enrolls under profile "device"; another profile needs reprovisioning policy migrate/],
  ['rejects: reset under another profile', { policy: 'reset', orderProfile: 'device-v2', held: ['01'] }, /another profile needs reprovisioning policy migrate/],
] as const)('%s: forbidden, and nothing is issued or revoked; the lease is released', async (_name, o, detail) => {
  const t = deviceFinalize(o);
  await expect(t.finalize()).rejects.toMatchObject({ type: 'forbidden', message: expect.stringMatching(detail) });
  expect(t.log).toEqual(['release dev-1']);
  expect(t.audited).toEqual([]);
});

test("rejects: a device whose enrollment lease another process holds (an EST enrollment, say): conflict with Retry-After, the order stays ready", async () => {
  const t = deviceFinalize({ policy: 'reset', held: ['01'], busy: true });
  await expect(t.finalize()).rejects.toMatchObject({ type: 'conflict', retryAfterSeconds: 2, message: expect.stringMatching(/another enrollment of device "dev-1" is in progress/) });
  expect(t.log).toEqual([]);
});

test('never: a device without a valid certificate gets one and nothing is revoked', async () => {
  const t = deviceFinalize({ policy: 'never' });
  expect((await t.finalize()).status).toBe('valid');
  expect(t.log.filter((l) => l.startsWith('revoke'))).toEqual([]);
  expect(t.audited[0]!.data).not.toHaveProperty('superseded');
});

test('two orders of one device finalized together run one after the other: under never the second is refused, under reset it supersedes the first', async () => {
  const never = deviceFinalize({ policy: 'never' });
  const [a, b] = await Promise.allSettled([never.finalize(), never.second()]);
  expect(a.status).toBe('fulfilled');
  expect(b).toMatchObject({ status: 'rejected', reason: { type: 'forbidden' } });
  const reset = deviceFinalize({ policy: 'reset' });
  await Promise.all([reset.finalize(), reset.second()]);
  expect(reset.log.filter((l) => /^(issue|revoke|release)/.test(l))).toEqual(['issue 10 for dev-1 under device', 'release dev-1 issued', 'issue 11 for dev-1 under device', 'revoke 10 superseded by device:dev-1 via acme', 'release dev-1 issued']);
});
