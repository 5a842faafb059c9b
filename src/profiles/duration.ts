/**
 * Durations as profiles write them: a whole number and one unit, "90d",
 * "12h", "5m", "30s", "10y". A year is 365 days exactly, so "1y" is "365d"
 * and a validity never depends on the calendar it happens to start in.
 */

/** Seconds per unit. `as const` keeps the set closed: a new unit is a deliberate change. */
export const durationUnits = { s: 1, m: 60, h: 3600, d: 86_400, y: 365 * 86_400 } as const;
export type DurationUnit = keyof typeof durationUnits;

// One number without sign, fraction, exponent or leading zeros, then one unit.
// Six digits is far beyond any sane validity and keeps results exact integers.
const durationPattern = /^(0|[1-9]\d{0,5})([smhdy])$/;

/**
 * Parses a duration such as "90d" into seconds; null when the text is not
 * exactly `<digits><unit>` (no spaces, no fractions, no upper-case units).
 */
export function parseDuration(text: string): number | null {
  const m = durationPattern.exec(text);
  if (!m) return null;
  return Number(m[1]) * durationUnits[m[2] as DurationUnit];
}

/**
 * Formats whole seconds in the largest unit that divides them exactly
 * (7776000 → "90d", 31536000 → "1y", 90 → "90s"); the inverse of
 * {@link parseDuration}. Throws RangeError for negative or fractional input.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isSafeInteger(seconds) || seconds < 0) throw new RangeError(`not a whole number of seconds: ${seconds}`);
  if (seconds === 0) return '0s';
  for (const unit of ['y', 'd', 'h', 'm'] as const) {
    if (seconds % durationUnits[unit] === 0) return `${seconds / durationUnits[unit]}${unit}`;
  }
  return `${seconds}s`;
}
