/**
 * The audit log: whether its hash chain verifies, then its events in order
 * with filters by type, actor and time, and cursor paging.
 */
import { describeError, getJson } from '../api.js';
import { el, notice, pageLink, panel, replace, table } from '../dom.js';
import { dateTime, short } from '../format.js';

/** Renders the audit log into `main`. */
export async function render(main, params) {
  const filters = { type: params.get('type') ?? '', actor: params.get('actor') ?? '', since: params.get('since') ?? '', until: params.get('until') ?? '' };
  const cursor = params.get('cursor') ?? '';
  const [verify, list] = await Promise.allSettled([
    getJson('/api/v1/audit/verify'),
    getJson('/api/v1/audit/events', { ...filters, since: startOfDay(filters.since), until: startOfDay(filters.until), cursor, limit: 50 }),
  ]);
  if (list.status === 'rejected') throw list.reason;
  const rows = table(
    [
      { label: '#', className: 'num', cell: (e) => String(e.seq) },
      { label: 'Time', className: 'nowrap', cell: (e) => dateTime(e.at) },
      { label: 'Type', cell: (e) => el('code', {}, e.type) },
      { label: 'Actor', cell: (e) => e.actor },
      { label: 'Data', cell: (e) => data(e.data) },
    ],
    list.value.items,
    'No events.',
  );
  const form = el(
    'form',
    { class: 'filters', method: 'get', action: '/console/audit' },
    el('label', {}, 'Type', el('input', { type: 'text', name: 'type', value: filters.type, placeholder: 'certificate.issued', maxlength: 128 })),
    el('label', {}, 'Actor', el('input', { type: 'text', name: 'actor', value: filters.actor, maxlength: 256 })),
    el('label', {}, 'Since', el('input', { type: 'date', name: 'since', value: filters.since })),
    el('label', {}, 'Until', el('input', { type: 'date', name: 'until', value: filters.until })),
    el('button', { type: 'submit' }, 'Filter'),
  );
  const pager = el('div', { class: 'pager' }, cursor ? pageLink('/console/audit', filters, '← First page') : null, list.value.next ? pageLink('/console/audit', { ...filters, cursor: list.value.next }, 'Next page →') : null);
  replace(main, el('h1', {}, 'Audit log'), verification(verify), form, panel(null, rows, pager));
}

function verification(result) {
  if (result.status === 'rejected') return notice('warn', `Verification not available: ${describeError(result.reason)}`);
  const v = result.value;
  if (!v.ok) return notice('bad', el('strong', {}, 'The audit log does not verify'), v.firstBadSeq !== undefined && v.firstBadSeq !== null ? `: the first bad event is #${v.firstBadSeq}.` : '.');
  return notice('good', el('strong', {}, 'Verified: '), `the hash chain of all ${v.events} events holds; head `, el('code', { title: v.headHash ?? '' }, short(v.headHash, 16)), v.checkpoint ? `, signed checkpoint at ${v.checkpoint.events ?? '?'} events.` : '.');
}

/** An event's data (an object, or JSON text): one line, all of it on demand. */
function data(value) {
  let obj = value;
  if (typeof value === 'string') {
    try {
      obj = JSON.parse(value);
    } catch {
      obj = value;
    }
  }
  const line = typeof obj === 'string' ? obj : JSON.stringify(obj);
  if (line.length <= 80) return el('code', {}, line);
  return el('details', { class: 'data' }, el('summary', {}, el('code', {}, line)), el('pre', {}, JSON.stringify(obj, null, 2)));
}

const startOfDay = (date) => (/^\d{4}-\d{2}-\d{2}$/.test(date) ? `${date}T00:00:00Z` : date);
