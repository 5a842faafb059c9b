/**
 * Overview: the CAs with their key state and expiry, CRL freshness, the audit
 * log's verification, and issuance and revocations per day over 30 days.
 * Each part reads its own API resource and fails on its own (an officer may
 * not read the audit log; the rest still shows).
 */
import { describeError, getJson } from '../api.js';
import { issuanceChart } from '../chart.js';
import { badge, el, notice, panel, replace, table } from '../dom.js';
import { dateTime, keyStateTone, relative, short } from '../format.js';

/** Renders the overview into `main`. */
export async function render(main) {
  const heading = el('h1', {}, 'Overview');
  const tiles = el('div', { class: 'tiles' });
  const cas = panel('Certificate authorities', el('p', { class: 'muted' }, 'Loading…'));
  const crls = panel('CRLs', el('p', { class: 'muted' }, 'Loading…'));
  const audit = panel('Audit log', el('p', { class: 'muted' }, 'Loading…'));
  const chart = panel('Issuance and revocations, last 30 days', el('p', { class: 'muted' }, 'Loading…'));
  replace(main, heading, tiles, chart, cas, crls, audit);

  const [casR, crlsR, auditR, statsR] = await Promise.allSettled([
    getJson('/api/v1/cas'),
    getJson('/api/v1/crls'),
    getJson('/api/v1/audit/verify'),
    getJson('/api/v1/stats/issuance', { days: 30 }),
  ]);
  const failed = (section, result) => replace(section, section.firstChild, notice('warn', describeError(result.reason)));

  if (casR.status === 'fulfilled') replace(cas, cas.firstChild, caTable(casR.value.items));
  else failed(cas, casR);
  if (crlsR.status === 'fulfilled') replace(crls, crls.firstChild, crlTable(crlsR.value.items));
  else failed(crls, crlsR);
  if (auditR.status === 'fulfilled') replace(audit, audit.firstChild, auditStatus(auditR.value));
  else failed(audit, auditR);
  if (statsR.status === 'fulfilled') replace(chart, chart.firstChild, chartWithLegend(statsR.value.days));
  else failed(chart, statsR);

  const tile = (label, value, tone) => el('div', { class: 'tile' }, el('div', { class: 'label' }, label), el('div', { class: 'value' }, tone ? badge(value, tone) : value));
  if (statsR.status === 'fulfilled') {
    const sum = (k) => statsR.value.days.reduce((n, d) => n + d[k], 0);
    tiles.append(tile('Issued, 30 days', String(sum('issued'))), tile('Revoked, 30 days', String(sum('revoked'))));
  }
  if (crlsR.status === 'fulfilled') {
    const items = crlsR.value.items;
    const fresh = items.filter((c) => c.fresh).length;
    tiles.append(tile('CRLs fresh', `${fresh} of ${items.length}`, fresh === items.length ? 'good' : 'bad'));
  }
  if (auditR.status === 'fulfilled') tiles.append(tile('Audit chain', auditR.value.ok ? 'verified' : 'broken', auditR.value.ok ? 'good' : 'bad'));
}

function caTable(items) {
  return table(
    [
      { label: 'CA', cell: (c) => [el('a', { href: `/console/cas/${encodeURIComponent(c.id)}` }, el('strong', {}, c.name)), c.name !== c.id ? el('div', { class: 'muted mono' }, c.id) : null] },
      { label: 'Role', cell: (c) => c.role },
      { label: 'Key state', cell: (c) => [badge(c.keyState, keyStateTone(c.keyState)), c.active ? [' ', badge('issuing', 'accent')] : null] },
      { label: 'Subject', cell: (c) => el('div', { class: 'clip', title: c.subject }, c.subject) },
      { label: 'Expires', className: 'nowrap', cell: (c) => [dateTime(c.notAfter), el('div', { class: 'muted' }, relative(c.notAfter))] },
      { label: 'Key id', cell: (c) => el('span', { class: 'mono', title: c.skiHex }, short(c.skiHex, 12)) },
    ],
    items,
    'No CAs.',
  );
}

/** One row per CA (how many CRLs, how many fresh, the soonest next update), then every CRL on demand. */
function crlTable(items) {
  const byCa = new Map();
  for (const c of items) byCa.set(c.ca, [...(byCa.get(c.ca) ?? []), c]);
  const summary = table(
    [
      { label: 'CA', cell: ([ca]) => ca },
      { label: 'CRLs', className: 'num', cell: ([, list]) => String(list.length) },
      { label: 'Fresh', cell: ([, list]) => freshness(list) },
      { label: 'Soonest next update', className: 'nowrap', cell: ([, list]) => soonest(list) },
      { label: 'Highest number', className: 'num', cell: ([, list]) => String(Math.max(...list.map((c) => c.crlNumber))) },
      { label: 'Entries', className: 'num', cell: ([, list]) => String(list.reduce((n, c) => n + c.entries, 0)) },
    ],
    [...byCa],
    'No CRL published yet.',
  );
  const scopeOrder = (a, b) => a.ca.localeCompare(b.ca) || a.scope.localeCompare(b.scope, 'en', { numeric: true });
  const all = table(
    [
      { label: 'CA', cell: (c) => c.ca },
      { label: 'Scope', cell: (c) => c.scope },
      { label: 'Number', className: 'num', cell: (c) => String(c.crlNumber) },
      { label: 'This update', className: 'nowrap', cell: (c) => dateTime(c.thisUpdate) },
      { label: 'Next update', className: 'nowrap', cell: (c) => [dateTime(c.nextUpdate), ' ', el('span', { class: 'muted' }, relative(c.nextUpdate))] },
      { label: 'Entries', className: 'num', cell: (c) => String(c.entries) },
      { label: 'Fresh', cell: (c) => (c.fresh ? badge('fresh', 'good') : badge('stale', 'bad')) },
    ],
    [...items].sort(scopeOrder),
  );
  return items.length ? [summary, el('details', { class: 'more' }, el('summary', {}, `All ${items.length} CRLs`), all)] : summary;
}

function freshness(list) {
  const fresh = list.filter((c) => c.fresh).length;
  return badge(fresh === list.length ? `all ${fresh} fresh` : `${list.length - fresh} stale`, fresh === list.length ? 'good' : 'bad');
}

function soonest(list) {
  const next = list.map((c) => c.nextUpdate).sort()[0];
  return [dateTime(next), ' ', el('span', { class: 'muted' }, relative(next))];
}

function auditStatus(v) {
  const checkpoint = v.checkpoint
    ? el('p', { class: 'muted' }, `Latest signed checkpoint covers ${v.checkpoint.events ?? '?'} events${v.checkpoint.time ? ` (${dateTime(v.checkpoint.time)})` : ''}.`)
    : el('p', { class: 'muted' }, 'No signed checkpoint yet.');
  return [
    v.ok
      ? notice('good', `The hash chain of all ${v.events} events verifies.`)
      : notice('bad', `The audit log does not verify${v.firstBadSeq !== undefined && v.firstBadSeq !== null ? `: first bad event #${v.firstBadSeq}` : ''}.`),
    el('p', {}, 'Head hash ', el('code', { title: v.headHash ?? '' }, short(v.headHash, 24))),
    checkpoint,
    el('p', {}, el('a', { href: '/console/audit' }, 'Open the audit log →')),
  ];
}

function chartWithLegend(days) {
  return [
    issuanceChart(days),
    el('div', { class: 'legend' }, el('span', {}, el('span', { class: 'key issued' }), 'issued'), el('span', {}, el('span', { class: 'key revoked' }), 'revoked')),
    el('p', {}, el('a', { href: '/console/certificates?status=revoked' }, 'Revoked certificates →')),
  ];
}
