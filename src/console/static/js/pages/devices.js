/** Devices of the registry (issue 10), by status, with cursor paging. */
import { getJson } from '../api.js';
import { badge, el, pageLink, panel, replace, table } from '../dom.js';
import { dateTime, deviceTone } from '../format.js';

const statuses = ['registered', 'active', 'disabled', 'retired'];

/** Renders the device list into `main`. */
export async function render(main, params) {
  const status = params.get('status') ?? '';
  const cursor = params.get('cursor') ?? '';
  const list = await getJson('/api/v1/devices', { status, cursor, limit: 50 });
  const rows = table(
    [
      { label: 'Device', cell: (d) => el('span', { class: 'mono' }, d.id) },
      { label: 'Status', cell: (d) => badge(d.status, deviceTone(d.status)) },
      { label: 'Profile', cell: (d) => d.profile },
      { label: 'CA', cell: (d) => d.issuerId ?? 'default' },
      { label: 'Reprovision', cell: (d) => d.reprovision },
      { label: 'Attributes', cell: (d) => attributes(d.attributes) },
      { label: 'Certificates', cell: (d) => pageLink('/console/certificates', { q: d.id }, 'search') },
      { label: 'Updated', className: 'nowrap', cell: (d) => dateTime(d.updatedAt) },
    ],
    list.items,
    'No devices.',
  );
  const filter = el(
    'form',
    { class: 'filters', method: 'get', action: '/console/devices' },
    el('label', {}, 'Status', el('select', { name: 'status' }, el('option', { value: '' }, 'any'), statuses.map((s) => el('option', { value: s, selected: s === status }, s)))),
    el('button', { type: 'submit' }, 'Show'),
  );
  const pager = el('div', { class: 'pager' }, cursor ? pageLink('/console/devices', { status }, '← First page') : null, list.next ? pageLink('/console/devices', { status, cursor: list.next }, 'Next page →') : null);
  replace(main, el('h1', {}, 'Devices'), filter, panel(null, rows, pager));
}

function attributes(attrs) {
  const entries = Object.entries(attrs ?? {});
  if (entries.length === 0) return '—';
  return el('span', { class: 'mono' }, entries.map(([k, v]) => `${k}=${v}`).join(' '));
}
