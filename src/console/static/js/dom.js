/* global document, Node, URLSearchParams */
/**
 * Building the page. Text always goes in as text (Node.append with strings,
 * textContent): nothing from the API is ever parsed as HTML.
 */

/** An element with attributes (`class`, `href`, any other; null and false left out) and children (nodes or text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

/** Appends children: nodes as they are, strings and numbers as text, arrays flattened, null left out. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Replaces every child of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/**
 * A table: `columns` are { label, cell(row) → node or text, className? }.
 * With no rows it says `empty` in one cell.
 */
export function table(columns, rows, empty = 'Nothing to show.') {
  const head = el('tr', {}, columns.map((c) => el('th', { class: c.className, scope: 'col' }, c.label)));
  const body = rows.length
    ? rows.map((row) => el('tr', {}, columns.map((c) => el('td', { class: c.className }, c.cell(row)))))
    : [el('tr', {}, el('td', { class: 'empty', colspan: columns.length }, empty))];
  return el('table', {}, el('thead', {}, head), el('tbody', {}, body));
}

/** A titled panel. */
export const panel = (title, ...children) => el('section', { class: 'panel' }, title ? el('h2', {}, title) : null, children);

/** A definition list of [term, value] pairs (values null are left out). */
export const facts = (pairs) => el('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== '').map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));

/** A coloured label; `tone` is one of good, bad, warn, accent, or none. */
export const badge = (text, tone) => el('span', { class: tone ? `badge ${tone}` : 'badge' }, text);

/** A notice box; `tone` good, bad or warn. */
export const notice = (tone, ...children) => el('div', { class: `notice ${tone}`, role: tone === 'bad' ? 'alert' : 'status' }, children);

/** A link to a console page with a query (empty values left out). */
export function pageLink(path, params, ...children) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') query.set(k, String(v));
  const q = query.toString();
  return el('a', { href: q ? `${path}?${q}` : path }, children);
}
