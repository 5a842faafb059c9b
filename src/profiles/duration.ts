/** Durations in profiles: "90d", "12h", "5m", "30s", "10y" (365 days). */
const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, y: 365 * 86400 };

/** Parses a duration into seconds; null when it is not one. */
export function parseDuration(text: string): number | null {
  const m = /^(\d{1,6})([smhdy])$/.exec(text.trim());
  return m ? Number(m[1]) * units[m[2]!]! : null;
}

/** Formats seconds in the largest exact unit ("7776000" → "90d"). */
export function formatDuration(seconds: number): string {
  for (const u of ['y', 'd', 'h', 'm'] as const) if (seconds % units[u]! === 0 && seconds >= units[u]!) return `${seconds / units[u]!}${u}`;
  return `${seconds}s`;
}
