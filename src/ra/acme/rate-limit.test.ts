import { expect, test } from 'vitest';
import { fixedClock } from '../../clock/clock.js';
import { PkiError } from '../../errors/pki-error.js';
import { RateLimiter } from './rate-limit.js';

const limited = (f: () => void): PkiError | undefined => {
  try {
    f();
    return undefined;
  } catch (err) {
    return err as PkiError;
  }
};

test('counts per key within the hour; the over-limit answer is rateLimited with a Retry-After', () => {
  const clock = fixedClock(new Date('2026-12-01T10:00:00Z'));
  const l = new RateLimiter(clock, 'new orders per account', 3);
  for (let i = 0; i < 3; i++) {
    l.check('a');
    l.hit('a');
  }
  const err = limited(() => l.check('a'));
  expect(err?.type).toBe('rateLimited');
  expect(err?.message).toMatch(/new orders per account: at most 3 per hour/);
  expect(err?.retryAfterSeconds).toBeGreaterThan(0);
  expect(err?.retryAfterSeconds).toBeLessThanOrEqual(3600);
  expect(limited(() => l.check('b'))).toBeUndefined();
});

test('the previous hour weighs less as the current one advances (sliding window)', () => {
  const clock = fixedClock(new Date('2026-12-01T10:00:00Z'));
  const l = new RateLimiter(clock, 'x', 4);
  for (let i = 0; i < 4; i++) l.hit('a');
  clock.advance(3600_000 + 60_000); // one minute into the next window: ~3.9 of the 4 still count
  expect(limited(() => l.check('a'))?.type).toBe('rateLimited');
  clock.advance(30 * 60_000); // half way: 4 × 0.47 ≈ 1.9 count
  expect(limited(() => l.check('a'))).toBeUndefined();
  clock.advance(2 * 3600_000); // two windows on: nothing counts
  for (let i = 0; i < 4; i++) {
    l.check('a');
    l.hit('a');
  }
});

test('a limit of 0 is off', () => {
  const l = new RateLimiter(fixedClock(new Date()), 'x', 0);
  for (let i = 0; i < 100; i++) {
    l.check('a');
    l.hit('a');
  }
});
