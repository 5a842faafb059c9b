/** ACME activity: the accounts and the orders (RFC 8555 objects, by their RFC names), newest first. */
import { getJson } from '../api.js';
import { badge, el, pageLink, panel, replace, table } from '../dom.js';
import { acmeTone, dateTime, short } from '../format.js';

const orderStatuses = ['pending', 'processing', 'valid', 'invalid'];

/** Renders accounts and orders into `main`. */
export async function render(main, params) {
  const status = params.get('status') ?? '';
  const account = params.get('account') ?? '';
  const cursor = params.get('cursor') ?? '';
  const [accounts, orders] = await Promise.all([
    getJson('/api/v1/acme/accounts', { limit: 50 }),
    getJson('/api/v1/acme/orders', { status, account, cursor, limit: 50 }),
  ]);
  const accountTable = table(
    [
      { label: 'Account', cell: (a) => pageLink('/console/acme', { account: a.id }, el('span', { class: 'mono' }, a.id)) },
      { label: 'Status', cell: (a) => badge(a.status, acmeTone(a.status)) },
      { label: 'Contact', cell: (a) => (a.contact && a.contact.length ? a.contact.join(', ') : '—') },
      { label: 'Key thumbprint', cell: (a) => el('span', { class: 'mono', title: a.thumbprint ?? '' }, short(a.thumbprint, 16)) },
      { label: 'Created', className: 'nowrap', cell: (a) => dateTime(a.createdAt) },
    ],
    accounts.items,
    'No ACME accounts.',
  );
  const orderTable = table(
    [
      { label: 'Order', cell: (o) => el('span', { class: 'mono' }, o.id) },
      { label: 'Account', cell: (o) => el('span', { class: 'mono' }, o.account ?? o.accountId ?? '—') },
      { label: 'Identifiers', cell: (o) => (o.identifiers ?? []).map((i) => (typeof i === 'string' ? i : i.value)).join(', ') || '—' },
      { label: 'Status', cell: (o) => badge(o.status, acmeTone(o.status)) },
      { label: 'Certificate', cell: (o) => (o.certificateSerial ? pageLink(`/console/certificates/${encodeURIComponent(o.certificateSerial)}`, { ca: o.ca }, el('span', { class: 'mono' }, short(o.certificateSerial, 12))) : '—') },
      { label: 'Created', className: 'nowrap', cell: (o) => dateTime(o.createdAt) },
      { label: 'Expires', className: 'nowrap', cell: (o) => dateTime(o.expires) },
    ],
    orders.items,
    'No orders.',
  );
  const filter = el(
    'form',
    { class: 'filters', method: 'get', action: '/console/acme' },
    el('label', {}, 'Order status', el('select', { name: 'status' }, el('option', { value: '' }, 'any'), orderStatuses.map((s) => el('option', { value: s, selected: s === status }, s)))),
    el('label', {}, 'Account', el('input', { type: 'text', name: 'account', value: account, maxlength: 128 })),
    el('button', { type: 'submit' }, 'Show'),
  );
  const pager = el('div', { class: 'pager' }, cursor ? pageLink('/console/acme', { status, account }, '← First page') : null, orders.next ? pageLink('/console/acme', { status, account, cursor: orders.next }, 'Next page →') : null);
  replace(main, el('h1', {}, 'ACME'), panel('Accounts', accountTable), filter, panel('Orders', orderTable, pager));
}
