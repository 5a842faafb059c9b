/**
 * Crash leftovers (issue 9 item 12). Issuance records an intent ('pending')
 * before it signs, and completes it with its audit event in one transaction;
 * ACME finalize moves an order to 'processing' before it issues. A process
 * that stops in between (SIGKILL, power loss, a failed commit) leaves those
 * half-done. `serve` settles them when it starts, and again every grace
 * period while it runs (a worker that crashed and was restarted at once
 * left leftovers younger than the grace period):
 *
 * - an intent still 'pending' that was recorded more than the grace period
 *   ago becomes 'failed'. Its row stays, so the issuer never uses that serial
 *   again; whatever was signed for it was never stored as valid and never
 *   handed out. One audit event lists the serials.
 * - an ACME order in 'processing' created more than the grace period ago
 *   becomes 'valid' with the certificate its finalize stored, or 'invalid'
 *   (serverInternal) when none was stored (ra/acme/stuck-orders.ts). One
 *   audit event lists the orders.
 *
 * The grace period keeps this away from work in progress: another node, a
 * cluster sibling or the CLI may be between intent and completion right now,
 * which takes milliseconds (seconds with a slow HSM or a contended database
 * write lock); ten minutes is far beyond that, and a signer that is paused
 * for longer loses nothing: its completion finds the row no longer pending
 * and fails, so the certificate is not handed out.
 */
import { chainHash } from '../audit/audit-log.js';
import type { AbandonedIntent } from '../ca/ports.js';
import type { Logger } from '../http/log.js';
import type { AcmeOrderRecord, OrderSettlement } from '../ra/acme/ports.js';
import { settleStuckOrders } from '../ra/acme/stuck-orders.js';
import type { Instance } from './instance.js';

/** How old a leftover must be before it is settled. */
export const leftoverGraceMs = 10 * 60_000;

/** Who the audit events name. */
const actor = 'trellis-reconcile';

/** Stuck orders looked at per pass (the rest wait for the next pass). */
const ordersPerPass = 1000;

export interface Reconciled {
  /** Intents marked 'failed'. */
  abandoned: AbandonedIntent[];
  /** ACME orders moved out of 'processing'. */
  orders: OrderSettlement[];
}

/**
 * One pass. `orders: 'all'` scans every order in 'processing' (AcmeOrder has
 * no index on status: a table scan, done at start); `'abandoned'` looks only
 * at the orders of the ACME accounts whose intents this pass marked failed
 * (through the account index), which is the window a crash most likely hits.
 */
export async function reconcileLeftovers(instance: Instance, opts: { orders: 'all' | 'abandoned'; graceMs?: number }): Promise<Reconciled> {
  const now = instance.clock.now();
  const cutoff = new Date(now.getTime() - (opts.graceMs ?? leftoverGraceMs));
  const { certificates, acmeOrders } = instance.store;
  const batch = (type: string, data: Record<string, unknown>) => ({ drafts: [{ at: now, type, actor, data }], chain: chainHash });

  const abandoned = await certificates.failStalePending(cutoff, (failed) =>
    batch('certificate.intents_abandoned', {
      certificates: failed.map((f) => ({ issuer: f.issuerId, serialHex: f.serialHex })),
      recordedBefore: cutoff.toISOString(),
      reason: 'recorded but never completed: the process stopped between intent and completion; the serials stay used',
    }),
  );

  let stuck: AcmeOrderRecord[];
  if (opts.orders === 'all') {
    stuck = await acmeOrders.listProcessing(cutoff, ordersPerPass);
  } else {
    const accounts = [...new Set(abandoned.flatMap((a) => (a.requestedVia === 'acme' && a.requestedBy ? [a.requestedBy] : [])))];
    stuck = [];
    for (const account of accounts) {
      stuck.push(...(await acmeOrders.listOrders(account, ordersPerPass)).filter((o) => o.status === 'processing' && o.createdAt < cutoff));
    }
  }
  const orders = stuck.length
    ? await settleStuckOrders({ orders: acmeOrders, certificates }, stuck, (moved) =>
        batch('acme.orders_settled', {
          valid: moved.flatMap((m) => (m.next.status === 'valid' ? [{ order: m.id, issuer: m.next.issuerId, serialHex: m.next.certificateSerial }] : [])),
          invalid: moved.flatMap((m) => (m.next.status === 'invalid' ? [m.id] : [])),
        }),
      )
    : [];
  return { abandoned, orders };
}

/**
 * Settles leftovers now (the caller waits: nothing is served before) and
 * then every grace period; returns a stop function that waits for a pass in
 * progress. A failing first pass fails the start; later ones are logged.
 */
export async function startReconciler(instance: Instance, log: Logger, opts: { graceMs?: number; intervalMs?: number } = {}): Promise<() => Promise<void>> {
  const report = (r: Reconciled) => {
    if (r.abandoned.length === 0 && r.orders.length === 0) return;
    log({
      level: 'warn',
      msg: 'settled crash leftovers',
      intentsFailed: r.abandoned.length,
      ordersValid: r.orders.filter((o) => o.next.status === 'valid').length,
      ordersInvalid: r.orders.filter((o) => o.next.status === 'invalid').length,
    });
  };
  report(await reconcileLeftovers(instance, { orders: 'all', ...(opts.graceMs !== undefined ? { graceMs: opts.graceMs } : {}) }));
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= reconcileLeftovers(instance, { orders: 'abandoned', ...(opts.graceMs !== undefined ? { graceMs: opts.graceMs } : {}) })
      .then(report, (err: unknown) => log({ level: 'error', msg: 'settling crash leftovers failed', error: String(err) }))
      .finally(() => (running = undefined));
  }, opts.intervalMs ?? opts.graceMs ?? leftoverGraceMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
