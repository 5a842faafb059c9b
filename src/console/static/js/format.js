/**
 * Times and statuses in words. Times are shown in UTC, as the certificates
 * and logs have them.
 */

/** "2026-12-06 13:40 UTC", or "—" for null. */
export function dateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "2026-12-06", or "—" for null. */
export const day = (iso) => (iso ? String(iso).slice(0, 10) : '—');

/** "in 3 days", "5 hours ago": how far `iso` is from `now`. */
export function relative(iso, now = Date.now()) {
  if (!iso) return '';
  const ms = new Date(iso).getTime() - now;
  const abs = Math.abs(ms);
  const units = [['year', 365 * 86400e3], ['day', 86400e3], ['hour', 3600e3], ['minute', 60e3]];
  for (const [name, size] of units) {
    if (abs >= size) {
      const n = Math.floor(abs / size);
      const text = `${n} ${name}${n === 1 ? '' : 's'}`;
      return ms >= 0 ? `in ${text}` : `${text} ago`;
    }
  }
  return 'now';
}

/** The badge tone of a certificate status. */
export const certificateTone = (status) => ({ valid: 'good', revoked: 'bad', expired: 'warn', pending: 'accent', failed: 'bad' })[status] ?? null;

/** The badge tone of a CA key state (src/ca/key-state.ts). */
export const keyStateTone = (state) => ({ active: 'good', preActivation: 'accent', suspended: 'warn', deactivated: 'warn', compromised: 'bad', destroyed: 'bad' })[state] ?? null;

/** The badge tone of a device status. */
export const deviceTone = (status) => ({ active: 'good', registered: 'accent', disabled: 'warn', retired: null })[status] ?? null;

/** The badge tone of an ACME order or account status (RFC 8555 §7.1.6). */
export const acmeTone = (status) => ({ valid: 'good', ready: 'accent', pending: 'accent', processing: 'accent', invalid: 'bad', deactivated: 'warn', revoked: 'bad' })[status] ?? null;

/** The first `n` characters of a long hex string, then "…". */
export const short = (hex, n = 16) => (hex && hex.length > n ? `${hex.slice(0, n)}…` : (hex ?? '—'));
