/** RFC 8555 §7.1 resource objects as JSON, from RA records and views. */
import type { AcmeAccountRecord, AcmeChallenge, AcmeAuthorizationRecord } from '../ra/acme/ports.js';
import type { AuthorizationView, OrderView } from '../ra/acme/orders.js';
import type { Links } from './links.js';

/** §7.1.2 account object. */
export function renderAccount(a: AcmeAccountRecord, links: Links) {
  return { status: a.status, contact: a.contact, termsOfServiceAgreed: a.termsAgreed, orders: links.orders(a.id) };
}

/** §7.1.3 order object. */
export function renderOrder({ order: o, status }: OrderView, links: Links) {
  return {
    status,
    expires: o.expires.toISOString(),
    identifiers: o.identifiers,
    ...(o.notBefore ? { notBefore: o.notBefore.toISOString() } : {}),
    ...(o.notAfter ? { notAfter: o.notAfter.toISOString() } : {}),
    ...(o.error ? { error: o.error } : {}),
    authorizations: o.authorizationIds.map((id) => links.authorization(id)),
    finalize: links.finalize(o.id),
    ...(status === 'valid' && o.issuerId && o.certificateSerial ? { certificate: links.certificate(o.issuerId, o.certificateSerial) } : {}),
    ...(o.replaces ? { replaces: o.replaces } : {}),
  };
}

/** §8 challenge object. */
export function renderChallenge(authzId: string, c: AcmeChallenge, links: Links) {
  return {
    type: c.type,
    url: links.challenge(authzId, c.type),
    status: c.status,
    token: c.token,
    ...(c.validated ? { validated: c.validated.toISOString() } : {}),
    ...(c.error ? { error: c.error } : {}),
  };
}

/** §7.1.4 authorization object; a valid one lists only the challenge that validated it. */
export function renderAuthorization({ authorization: a, status }: AuthorizationView, links: Links) {
  const challenges: AcmeAuthorizationRecord['challenges'] = status === 'valid' ? a.challenges.filter((c) => c.status === 'valid') : a.challenges;
  return {
    identifier: a.identifier,
    status,
    expires: a.expires.toISOString(),
    challenges: challenges.map((c) => renderChallenge(a.id, c, links)),
    ...(a.wildcard ? { wildcard: true } : {}),
  };
}
