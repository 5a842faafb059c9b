/** DateTime columns on SQLite: written and read as Prisma writes and reads them, for the prepared statements beside Prisma. */

/** Prisma's SQLite DateTime text form (adapter option timestampFormat 'iso8601'). */
export const sqliteDate = (d: Date): string => d.toISOString().replace('Z', '+00:00');

/**
 * A DateTime column read by a prepared statement, as Prisma reads the same
 * column: the text Trellis writes ({@link sqliteDate}) as is; other text as
 * Prisma's client completes it before parsing (text without a zone is UTC, not
 * local time; a space may stand for the T; a date alone is midnight UTC; a time
 * alone is on 1970-01-01), which is SQLite's own form too (CURRENT_TIMESTAMP,
 * datetime()); an integer as milliseconds since 1970 (the adapter's
 * 'unixepoch-ms' form).
 */
export function sqliteDateOf(value: string | number | bigint): Date {
  if (typeof value !== 'string') return new Date(Number(value));
  return new Date(value.endsWith('+00:00') ? value : prismaDateText(value));
}

/** {@link sqliteDateOf} of a nullable column. */
export const sqliteDateOrNull = (value: string | null): Date | null => (value === null ? null : sqliteDateOf(value));

/** A time of day at the end of DateTime text, with its zone (Prisma's pattern). */
const timeOfDay = /\d{2}:\d{2}:\d{2}(?:\.\d+)?(Z|[+-]\d{2}(:?\d{2})?)?$/;

/** DateTime text completed as Prisma's client completes it before `new Date`. */
function prismaDateText(text: string): string {
  const m = timeOfDay.exec(text);
  if (m === null) return `${text}T00:00:00Z`;
  const [time, zone, zoneMinutes] = m;
  const zoned = zone === undefined ? `${text}Z` : zone !== 'Z' && zoneMinutes === undefined ? `${text}:00` : text;
  if (time.length === text.length) return `1970-01-01T${zoned}`;
  const sep = m.index - 1;
  return zoned[sep] === ' ' ? `${zoned.slice(0, sep)}T${zoned.slice(sep + 1)}` : zoned;
}
