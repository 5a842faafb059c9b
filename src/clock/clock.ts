/** The only source of the current time; tests pass a fixed or stepping clock. */
export interface Clock {
  now(): Date;
}

/** Wall-clock time. This is the one place in Trellis that calls `new Date()`. */
export const systemClock: Clock = { now: () => new Date() };

/** A clock frozen at `at` that tests can move forward with `advance`. */
export function fixedClock(at: Date): Clock & { advance(ms: number): void } {
  let t = at.getTime();
  return {
    now: () => new Date(t),
    advance(ms: number) {
      t += ms;
    },
  };
}
