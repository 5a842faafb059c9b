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

/** Accepts a nonce once, as a request does (check, then record); anything else is `badNonce`. */
const redeem = async (svc: NonceService, nonce: unknown) => svc.check(nonce).record();

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
    await redeem(svc, a);
    expect(await refusal(redeem(svc, a))).toMatch(/already used/);
  });

  test('rejects: a nonce past its lifetime; pruning then forgets it', async () => {
    const { svc, clock, nonces } = await service();
    const a = svc.issue();
    await redeem(svc, a);
    const b = svc.issue();
    clock.advance(61_000);
    expect(await refusal(redeem(svc, b))).toMatch(/expired/);
    expect(await svc.prune()).toBe(1);
    expect(nonces.rows.size).toBe(0);
  });

  test('prune forgets only nonces past their lifetime: one at its last accepted millisecond stays recorded', async () => {
    const { svc, clock, nonces } = await service();
    const a = svc.issue();
    await redeem(svc, a);
    clock.advance(60_000);
    // now - issued = lifetime: still accepted by the age check, so still a replay.
    expect(await svc.prune()).toBe(0);
    expect(await refusal(redeem(svc, a))).toMatch(/already used/);
    expect(nonces.rows.has(a)).toBe(true);
    clock.advance(1);
    expect(await svc.prune()).toBe(1);
    expect(nonces.rows.has(a)).toBe(false);
    expect(await refusal(redeem(svc, a))).toMatch(/expired/);
  });

  test('a prune called while one runs joins it; one called after it ended starts another', async () => {
    const clock = fixedClock(new Date('2026-12-01T00:00:00Z'));
    const cuts: Date[] = [];
    let finish: (n: number) => void = () => {};
    const nonces: AcmeNonceRepository = {
      redeem: async () => true,
      prune: (before) => {
        cuts.push(before);
        return new Promise<number>((resolve) => (finish = resolve));
      },
    };
    const svc = await NonceService.open({ secrets: secrets(), nonces, clock, lifetimeSeconds: 60 });
    const first = svc.prune();
    clock.advance(60_000);
    const joined = svc.prune();
    expect(cuts).toHaveLength(1);
    finish(7);
    expect(await first).toBe(7);
    expect(await joined).toBe(7);
    const next = svc.prune();
    expect(cuts).toEqual([new Date('2026-12-01T00:00:00Z'), new Date('2026-12-01T00:01:00Z')]);
    finish(0);
    expect(await next).toBe(0);
  });

  test('rejects: forged, truncated, or minted under another instance key; none of them is recorded', async () => {
    const { svc, nonces } = await service();
    const other = (await service(undefined, randomBytes(32))).svc.issue();
    const good = svc.issue();
    const flipped = `${good.slice(0, 10)}${good[10] === 'A' ? 'B' : 'A'}${good.slice(11)}`;
    for (const n of [other, flipped, good.slice(1), `${good}A`, '', undefined, 42, randomBytes(32).toString('base64url')]) {
      expect(await refusal(redeem(svc, n))).toMatch(/did not issue|no "nonce"/);
    }
    expect(nonces.rows.size).toBe(0);
  });

  test('nodes sharing the instance key accept each other\'s nonces', async () => {
    const key = randomBytes(32);
    const clock = fixedClock(new Date('2026-12-01T00:00:00Z'));
    const a = (await service(clock, key)).svc;
    const b = (await service(clock, key)).svc;
    await redeem(b, a.issue());
  });

  test('a checked nonce is recorded once: with a write where the store joins them, else before it; a replay writes nothing', async () => {
    const { svc, nonces } = await service();
    // No redeemWith: the nonce first, then the write.
    const order: string[] = [];
    const a = svc.issue();
    const p = svc.check(a);
    expect(nonces.rows.has(a)).toBe(false);
    await p.with(async () => order.push(nonces.rows.has(a) ? 'after' : 'before'));
    expect(order).toEqual(['after']);
    await p.record();
    // A replay: badNonce, and the write is never made.
    let made = false;
    expect(await refusal(svc.check(a).with(async () => (made = true)))).toMatch(/already used/);
    expect(made).toBe(false);
    expect(await refusal(svc.check(a).record())).toMatch(/already used/);
  });

  test('a write that takes the nonce records it; one undone leaves it to record alone; one not made within the call fails the request', async () => {
    const { svc, nonces } = await service();
    // How the store ends the next joined write: committed with it, a replay, undone, or not taken within the call.
    let outcome: 'recorded' | 'used' | 'undone' | undefined;
    nonces.redeemWith = (n, exp, write) => {
      const written = write();
      if (outcome === 'recorded') nonces.rows.set(n, exp);
      return { written, recorded: outcome === undefined ? undefined : Promise.resolve(outcome) };
    };
    /** A fresh nonce, checked, whose write the store ends with `ending`. */
    const writtenWith = async (ending: typeof outcome) => {
      outcome = ending;
      const nonce = svc.issue();
      const pending = svc.check(nonce);
      await pending.with(async () => 1);
      return { nonce, pending };
    };
    for (const ending of ['recorded', 'undone'] as const) {
      const { nonce, pending } = await writtenWith(ending);
      await pending.record();
      expect(nonces.rows.has(nonce)).toBe(true);
    }
    expect(await refusal((await writtenWith('used')).pending.record())).toMatch(/already used/);
    await expect((await writtenWith(undefined)).pending.record()).rejects.toThrow(/did not take/);
  });
});
