/* global location */
/**
 * One certificate: its status (a revoked one shows when and why), the facts
 * the registry keeps, the decoding (like `openssl x509 -text`) and the PEM.
 */
import { ApiError, getJson } from '../api.js';
import { badge, el, facts, notice, pageLink, panel, replace } from '../dom.js';
import { certificateTone, dateTime, relative } from '../format.js';

/** Renders the certificate whose serial is the last part of the path into `main`. */
export async function render(main, params) {
  const serial = decodeURIComponent(location.pathname.split('/').pop()).toLowerCase();
  const ca = params.get('ca') ?? '';
  let c;
  try {
    c = await getJson(`/api/v1/certificates/${encodeURIComponent(serial)}`, { ca });
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 409)) {
      const text = err.status === 404 ? `No certificate has the serial ${serial}${ca ? ` under CA ${ca}` : ''}.` : `${err.message} Pick one in the list.`;
      replace(main, el('h1', {}, 'Certificate'), notice('warn', text, ' ', pageLink('/console/certificates', { q: serial }, 'Search for it')));
      return;
    }
    throw err;
  }
  const status = c.status === 'revoked'
    ? notice('bad', el('strong', {}, 'Revoked'), ` on ${dateTime(c.revokedAt)}`, c.revocationReason ? `, reason: ${c.revocationReason}` : '', '.')
    : notice(c.status === 'valid' ? 'good' : 'warn', `Status: ${c.status}.`, c.status === 'valid' ? ` Expires ${relative(c.notAfter)}.` : '');
  replace(
    main,
    el('h1', {}, 'Certificate ', el('span', { class: 'mono' }, c.serial), ' ', badge(c.status, certificateTone(c.status))),
    status,
    panel(
      'Summary',
      facts([
        ['Subject', c.subject || '—'],
        ['SANs', c.sans && c.sans.length ? c.sans.join(', ') : '—'],
        ['Serial', el('span', { class: 'mono' }, c.serial)],
        ['Issuing CA', c.ca],
        ['Profile', c.profile],
        ['Not before', dateTime(c.notBefore)],
        ['Not after', `${dateTime(c.notAfter)} (${relative(c.notAfter)})`],
        ['Issued', dateTime(c.issuedAt)],
        ['Requested via', [c.requestedVia, c.requestedBy ? ` by ${c.requestedBy}` : '']],
        ['Device', c.deviceId],
        ['Revoked', c.revokedAt ? `${dateTime(c.revokedAt)}${c.revocationReason ? ` (${c.revocationReason})` : ''}` : null],
      ]),
    ),
    // A pending or failed row was recorded before signing (the intent) and has no certificate to show.
    c.pem === null
      ? notice('warn', `No certificate: this serial was recorded before signing and its status is ${c.status}.`)
      : [panel('Decoded', el('pre', { class: 'decoded' }, c.text ?? '')), panel('PEM', el('pre', { class: 'pem' }, c.pem))],
  );
}
