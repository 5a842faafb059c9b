import { expect, test } from 'vitest';
import type { AuditLog } from '../../audit/audit-log.js';
import { fixedClock } from '../../clock/clock.js';
import { AcmeOrders, type AcmeOrdersDeps } from './orders.js';
import type { AcmeAccountRecord, AcmeAuthorizationRecord, AcmeOrderRepository, ValidationVerdict } from './ports.js';
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
function orders(opts: { verdictAfterMs: number; updateFails?: boolean; logged: Record<string, unknown>[] }) {
  const limiter = new RateLimiter(clock, 'x', 0);
  const repo = {
    findAuthorization: async () => authz(),
    updateAuthorization: async () => {
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
