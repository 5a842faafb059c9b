/**
 * ACME orders left in 'processing' by a finalize that never finished: the
 * process stopped after moving the order to processing (RFC 8555 §7.4) and
 * before moving it to valid or invalid. The order does not know its
 * certificate until then, so the certificate is found the way finalize made
 * it: requested via ACME by the order's account, under the order's profile,
 * naming exactly the order's identifiers, recorded after the order was
 * created, and not already the certificate of another order.
 */
import type { AuditBatch } from '../../audit/ports.js';
import type { CertificateRecord, CertificateRepository } from '../../ca/ports.js';
import type { GeneralName } from '../../pki/general-name.js';
import { identifiersOfSans, sameIdentifiers } from './identifiers.js';
import type { AcmeOrderRecord, AcmeOrderRepository, OrderSettlement, StoredProblem } from './ports.js';

/** RFC 8555 §7.4: an order that cannot be finished is invalid; the client may start again with a new order. */
export const interruptedProblem: StoredProblem = {
  type: 'urn:ietf:params:acme:error:serverInternal',
  detail: 'issuance was interrupted before a certificate was stored; create a new order',
  status: 500,
};

/** Certificates looked at per stuck order, and orders of its account looked at for certificates already taken. */
const lookupLimit = 1000;

const certKey = (issuerId: string, serialHex: string) => `${issuerId}/${serialHex}`;

/** The identifiers a certificate row names (its SANs as stored, JSON); null when they cannot be read. */
function identifiersOf(cert: CertificateRecord) {
  try {
    const { identifiers, other } = identifiersOfSans(JSON.parse(cert.sans) as GeneralName[]);
    return other.length ? null : identifiers;
  } catch {
    // Not a list of names: it cannot be the certificate of an ACME order.
    return null;
  }
}

/**
 * Settles `stuck` (orders in 'processing' created before `cutoff`): 'valid'
 * with the certificate their finalize stored, 'invalid' with
 * {@link interruptedProblem} when none was stored. An order with a matching
 * certificate still 'pending' is left alone: a finalize that is still
 * running (on this node or another) owns it, and intents older than the
 * cutoff were marked 'failed' before this runs. Moves and their audit event
 * (`audit(moved)`) commit together; returns the orders that moved.
 */
export async function settleStuckOrders(
  deps: { orders: AcmeOrderRepository; certificates: CertificateRepository },
  stuck: readonly AcmeOrderRecord[],
  audit: (moved: OrderSettlement[]) => AuditBatch,
): Promise<OrderSettlement[]> {
  const settlements: OrderSettlement[] = [];
  // Certificates already the certificate of an order, per account, and those given out in this pass.
  const taken = new Map<string, Set<string>>();
  for (const order of stuck) {
    if (order.status !== 'processing') continue;
    let takenHere = taken.get(order.accountId);
    if (!takenHere) {
      const orders = await deps.orders.listOrders(order.accountId, lookupLimit);
      takenHere = new Set(orders.flatMap((o) => (o.issuerId && o.certificateSerial ? [certKey(o.issuerId, o.certificateSerial)] : [])));
      taken.set(order.accountId, takenHere);
    }
    const candidates = (await deps.certificates.findRequestedBy('acme', order.accountId, order.createdAt, lookupLimit)).filter((c) => {
      const ids = c.profile === order.profile ? identifiersOf(c) : null;
      return ids !== null && sameIdentifiers(ids, order.identifiers);
    });
    const cert = candidates.find((c) => c.der !== null && (c.status === 'valid' || c.status === 'revoked') && !takenHere.has(certKey(c.issuerId, c.serialHex)));
    if (cert) {
      takenHere.add(certKey(cert.issuerId, cert.serialHex));
      settlements.push({ id: order.id, next: { status: 'valid', issuerId: cert.issuerId, certificateSerial: cert.serialHex } });
    } else if (!candidates.some((c) => c.status === 'pending')) {
      settlements.push({ id: order.id, next: { status: 'invalid', error: interruptedProblem } });
    }
  }
  if (settlements.length === 0) return [];
  return deps.orders.settleProcessing(settlements, audit);
}
