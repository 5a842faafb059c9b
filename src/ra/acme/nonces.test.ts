import { randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { fixedClock } from '../../clock/clock.js';
import { isPkiError } from '../../errors/pki-error.js';
import { NonceService } from './nonces.js';
import type { AcmeNonceRepository, InstanceSecretRepository } from './ports.js';

/** An in-memory double of the used-nonce table (the store's contract suite tests the real ones). */
function memoryNonces(): AcmeNonceRepository & { rows: Map<string, Date> } {
  const rows = new Map<string, Date>();
  return {
    rows,
    async redeem(n, exp) {
      if (rows.has(n)) return false;
      rows.set(n, exp);
      return true;
    },
    async prune(before) {
      const expired = [...rows].filter(([, v]) => v < before);
      for (const [k] of expired) rows.delete(k);
      return expired.length;
    },
  };
}
const secrets = (key: Buffer = randomBytes(32)): InstanceSecretRepository => ({ getOrCreate: async () => key });

async function service(clock = fixedClock(new Date('2026-12-01T00:00:00Z')), key?: Buffer) {
  const nonces = memoryNonces();
  return { clock, nonces, svc: await NonceService.open({ secrets: secrets(key), nonces, clock, lifetimeSeconds: 60 }) };
}

const refusal = async (p: Promise<unknown>) => {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(isPkiError(err, 'badNonce')).toBe(true);
  return (err as Error).message;
};

describe('nonces', () => {
  test('a nonce is 43 base64url characters, unique, and redeems once', async () => {
    const { svc } = await service();
    const a = svc.issue();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(svc.issue()).not.toBe(a);
    await svc.redeem(a);
    expect(await refusal(svc.redeem(a))).toMatch(/already used/);
  });

  test('rejects: a nonce past its lifetime; pruning then forgets it', async () => {
    const { svc, clock, nonces } = await service();
    const a = svc.issue();
    await svc.redeem(a);
    const b = svc.issue();
    clock.advance(61_000);
    expect(await refusal(svc.redeem(b))).toMatch(/expired/);
    expect(await svc.prune()).toBe(1);
    expect(nonces.rows.size).toBe(0);
  });

  test('rejects: forged, truncated, or minted under another instance key; none of them is recorded', async () => {
    const { svc, nonces } = await service();
    const other = (await service(undefined, randomBytes(32))).svc.issue();
    const good = svc.issue();
    const flipped = `${good.slice(0, 10)}${good[10] === 'A' ? 'B' : 'A'}${good.slice(11)}`;
    for (const n of [other, flipped, good.slice(1), `${good}A`, '', undefined, 42, randomBytes(32).toString('base64url')]) {
      expect(await refusal(svc.redeem(n))).toMatch(/did not issue|no "nonce"/);
    }
    expect(nonces.rows.size).toBe(0);
  });

  test('nodes sharing the instance key accept each other\'s nonces', async () => {
    const key = randomBytes(32);
    const clock = fixedClock(new Date('2026-12-01T00:00:00Z'));
    const a = (await service(clock, key)).svc;
    const b = (await service(clock, key)).svc;
    await b.redeem(a.issue());
  });
});
