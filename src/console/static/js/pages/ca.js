/* global location */
/** One CA: its certificate's facts, its key's state and every change of that state (src/ca/key-state.ts), and its PEM. */
import { ApiError, getJson } from '../api.js';
import { badge, el, facts, notice, panel, replace, table } from '../dom.js';
import { dateTime, keyStateTone, relative } from '../format.js';

/** Renders the CA whose id is the last part of the path into `main`. */
export async function render(main) {
  const id = decodeURIComponent(location.pathname.split('/').pop());
  let ca;
  try {
    ca = await getJson(`/api/v1/cas/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      replace(main, el('h1', {}, 'Certificate authority'), notice('warn', `No CA has the id ${id}.`));
      return;
    }
    throw err;
  }
  const events = table(
    [
      { label: 'When', className: 'nowrap', cell: (e) => dateTime(e.at) },
      { label: 'From', cell: (e) => (e.from ? badge(e.from, keyStateTone(e.from)) : '—') },
      { label: 'To', cell: (e) => badge(e.to, keyStateTone(e.to)) },
      { label: 'By', cell: (e) => e.actor },
      { label: 'Reason', cell: (e) => e.reason ?? '—' },
    ],
    ca.keyEvents,
    'No key state changes recorded.',
  );
  replace(
    main,
    el('h1', {}, ca.name, ' ', badge(ca.keyState, keyStateTone(ca.keyState)), ca.active ? [' ', badge('issuing', 'accent')] : null),
    panel(
      'Summary',
      facts([
        ['Id', el('span', { class: 'mono' }, ca.id)],
        ['Role', ca.role],
        ['Parent', ca.parentId ? el('a', { href: `/console/cas/${encodeURIComponent(ca.parentId)}` }, ca.parentId) : '—'],
        ['Subject', ca.subject],
        ['Not before', dateTime(ca.notBefore)],
        ['Not after', `${dateTime(ca.notAfter)} (${relative(ca.notAfter)})`],
        ['Key state', [badge(ca.keyState, keyStateTone(ca.keyState)), ca.keyStateAt ? ` since ${dateTime(ca.keyStateAt)}` : '']],
        ['Subject key id', el('span', { class: 'mono' }, ca.skiHex)],
        ['Certificate', el('a', { href: `/ca/${encodeURIComponent(ca.id)}.cer` }, `/ca/${ca.id}.cer`)],
      ]),
    ),
    panel('Key state changes', events),
    panel('PEM', el('pre', { class: 'pem' }, ca.pem)),
  );
}
