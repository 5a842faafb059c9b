/**
 * Per-node rate limits (sliding window over the last hour, approximated with
 * two fixed windows as Cloudflare and nginx do). Limits count on the node that
 * answered: with N nodes behind a balancer a client gets up to N times the
 * budget, which bounds abuse without a round trip to the database per request.
 */
import type { Clock } from '../../clock/clock.js';
import { PkiError } from '../../errors/pki-error.js';

const windowMs = 3600_000;

interface Counter {
  window: number;
  current: number;
  previous: number;
}

export class RateLimiter {
  private readonly counters = new Map<string, Counter>();
  private sweptWindow = 0;

  constructor(
    private readonly clock: Clock,
    /** What is limited, for the problem detail ("new orders per account"). */
    private readonly what: string,
    /** Events per hour; 0 = no limit. */
    private readonly perHour: number,
  ) {}

  private counter(key: string, now: number): Counter {
    const window = Math.floor(now / windowMs);
    if (window !== this.sweptWindow) {
      // Keys idle for two windows count nothing any more: drop them so the map stays bounded by active keys.
      for (const [k, c] of this.counters) if (c.window < window - 1) this.counters.delete(k);
      this.sweptWindow = window;
    }
    let c = this.counters.get(key);
    if (!c) this.counters.set(key, (c = { window, current: 0, previous: 0 }));
    if (c.window !== window) {
      c.previous = c.window === window - 1 ? c.current : 0;
      c.current = 0;
      c.window = window;
    }
    return c;
  }

  private estimate(c: Counter, now: number): number {
    const into = (now % windowMs) / windowMs;
    return c.current + c.previous * (1 - into);
  }

  /** Throws `rateLimited` (with Retry-After) when `key` is at its limit; does not count. */
  check(key: string): void {
    if (this.perHour === 0) return;
    const now = this.clock.now().getTime();
    const c = this.counter(key, now);
    if (this.estimate(c, now) + 1 > this.perHour) {
      // The previous window's weight falls linearly: wait until one more event fits.
      const excess = this.estimate(c, now) + 1 - this.perHour;
      const waitMs = c.previous > 0 ? Math.min(windowMs - (now % windowMs), (excess / c.previous) * windowMs) : windowMs - (now % windowMs);
      throw new PkiError('rateLimited', `too many ${this.what}: at most ${this.perHour} per hour`, { retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) });
    }
  }

  /** Counts one event for `key`. */
  hit(key: string): void {
    if (this.perHour === 0) return;
    const now = this.clock.now().getTime();
    this.counter(key, now).current++;
  }
}
