/**
 * Certificates: search (serial, subject or SAN: the API's q), filters, and
 * cursor paging. The form is a plain GET form: every search is a URL, so the
 * back button and bookmarks work.
 */
import { describeError, getJson } from '../api.js';
import { badge, el, notice, pageLink, panel, replace, table } from '../dom.js';
import { certificateTone, dateTime, day } from '../format.js';

const statuses = ['valid', 'revoked', 'expired', 'pending', 'failed'];
const pageSize = 50;

/** Renders the certificate list for the filters in `params` into `main`. */
export async function render(main, params) {
  const filters = {
    q: params.get('q') ?? '',
    status: params.get('status') ?? '',
    profile: params.get('profile') ?? '',
    ca: params.get('ca') ?? '',
    expiresAfter: params.get('expiresAfter') ?? '',
    expiresBefore: params.get('expiresBefore') ?? '',
  };
  const cursor = params.get('cursor') ?? '';
  const [listR, casR] = await Promise.allSettled([
    getJson('/api/v1/certificates', { ...filters, expiresAfter: startOfDay(filters.expiresAfter), expiresBefore: startOfDay(filters.expiresBefore), limit: pageSize, cursor }),
    getJson('/api/v1/cas'),
  ]);
  const form = searchForm(filters, casR.status === 'fulfilled' ? casR.value.items : []);
  // A search the API refuses (a character q does not take, say) keeps the form, with the API's reason.
  if (listR.status === 'rejected') {
    replace(main, el('h1', {}, 'Certificates'), form, notice('warn', describeError(listR.reason)));
    return;
  }
  const list = listR.value;
  const results = table(
    [
      { label: 'Serial', cell: (c) => pageLink(`/console/certificates/${encodeURIComponent(c.serial)}`, { ca: c.ca }, el('span', { class: 'mono' }, c.serial)) },
      { label: 'Subject', cell: (c) => el('div', { class: 'clip', title: c.subject }, c.subject || '—') },
      { label: 'SANs', cell: (c) => sans(c.sans) },
      { label: 'Profile', cell: (c) => c.profile },
      { label: 'CA', className: 'nowrap', cell: (c) => c.ca },
      { label: 'Status', className: 'nowrap', cell: (c) => [badge(c.status, certificateTone(c.status)), c.revocationReason ? el('div', { class: 'muted' }, c.revocationReason) : null] },
      { label: 'Expires', className: 'nowrap', cell: (c) => el('span', { title: dateTime(c.notAfter) }, day(c.notAfter)) },
    ],
    list.items,
    filters.q ? `No certificate matches “${filters.q}”.` : 'No certificates.',
  );
  const pager = el(
    'div',
    { class: 'pager' },
    cursor ? pageLink('/console/certificates', filters, '← First page') : null,
    list.next ? pageLink('/console/certificates', { ...filters, cursor: list.next }, 'Next page →') : null,
  );
  replace(main, el('h1', {}, 'Certificates'), form, panel(null, results, pager));
}

function searchForm(f, cas) {
  const option = (value, label, selected) => el('option', { value, selected: value === selected }, label);
  return el(
    'form',
    { class: 'filters', method: 'get', action: '/console/certificates', role: 'search' },
    el('label', {}, 'Search', el('input', { type: 'search', name: 'q', value: f.q, placeholder: 'serial, subject or SAN', maxlength: 256 })),
    el('label', {}, 'Status', el('select', { name: 'status' }, option('', 'any', f.status), statuses.map((s) => option(s, s, f.status)))),
    el('label', {}, 'Profile', el('input', { type: 'text', name: 'profile', value: f.profile, size: 12, maxlength: 64 })),
    el('label', {}, 'CA', el('select', { name: 'ca' }, option('', 'any', f.ca), cas.map((c) => option(c.id, c.id, f.ca)))),
    el('label', {}, 'Expires after', el('input', { type: 'date', name: 'expiresAfter', value: f.expiresAfter })),
    el('label', {}, 'Expires before', el('input', { type: 'date', name: 'expiresBefore', value: f.expiresBefore })),
    el('button', { type: 'submit' }, 'Search'),
  );
}

/** A date input's "YYYY-MM-DD" as the start of that day in UTC (the API takes ISO 8601 times). */
const startOfDay = (date) => (/^\d{4}-\d{2}-\d{2}$/.test(date) ? `${date}T00:00:00Z` : date);

function sans(list) {
  if (!list || list.length === 0) return '—';
  const shown = list.slice(0, 2).join(', ');
  return list.length > 2 ? el('span', { title: list.join(', ') }, `${shown} +${list.length - 2}`) : shown;
}
