/* global document, location, URLSearchParams */
/**
 * The console's entry module: marks the current page in the navigation, shows
 * who is logged in, and renders the page the server named in
 * <body data-page>, each from its own module under pages/.
 */
import { describeError, getJson } from './api.js';
import { el, replace } from './dom.js';

const pages = {
  overview: () => import('./pages/overview.js'),
  certificates: () => import('./pages/certificates.js'),
  certificate: () => import('./pages/certificate.js'),
  devices: () => import('./pages/devices.js'),
  audit: () => import('./pages/audit.js'),
  acme: () => import('./pages/acme.js'),
  ca: () => import('./pages/ca.js'),
};

const page = document.body.dataset.page;
const nav = { certificate: 'certificates', ca: 'overview' }[page] ?? page;
for (const a of document.querySelectorAll('[data-nav]')) {
  if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
}

const who = getJson('/api/v1/whoami').then(
  (me) => replace(document.getElementById('who'), `${me.role} · ${me.id}`),
  () => replace(document.getElementById('who'), ''),
);

const main = document.getElementById('main');
const params = new URLSearchParams(location.search);
try {
  if (!Object.hasOwn(pages, page)) throw new Error(`no page "${page}"`);
  const module = await pages[page]();
  await module.render(main, params);
} catch (err) {
  const heading = main.querySelector('h1');
  replace(main, heading, el('p', { class: 'notice bad', role: 'alert' }, describeError(err)));
}
// data-ready: the page and the header are drawn (the browser test waits for it).
await who;
document.body.dataset.ready = 'true';
