/**
 * The Prometheus metrics of one `trellis serve` process (prom-client), in a
 * registry of its own: counters the serving code moves (issuance, revocation,
 * OCSP answers, ACME orders, EST enrollments, request latency), and values
 * read when Prometheus scrapes (OCSP cache counters, CRL ages, key states,
 * the process metrics). Labels take values from closed sets or from CA ids,
 * profile names and CRL scopes, never from anything a client sends.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { keyStates, type KeyState } from '../ca/key-state.js';
import type { ResponderStats } from '../ocsp/responder.js';
import { ocspAnswerStatusOf } from './ocsp-status.js';
import { RequestLatency } from './latency.js';

/** What the metrics read at scrape time. */
export interface MetricSources {
  now(): Date;
  /** The OCSP responder's counters since start (OcspResponder.stats()). */
  ocsp(): Pick<ResponderStats, 'lruHits' | 'dbHits' | 'signed' | 'lruEntries'>;
  /** The CRLs this process serves, one per CA and scope. */
  crls(): readonly { caId: string; scope: string; thisUpdate: Date }[];
  /** The key state of each CA, read from the database (undefined: never read). */
  keyStates(): Promise<readonly { ca: string; state: KeyState | undefined }[]>;
}

/** Upper bounds (seconds) of the latency buckets: from a pre-signed OCSP answer (about a millisecond) to a slow issuance. */
const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The metrics of one serving process; see the module comment. */
export class ServeMetrics {
  readonly registry = new Registry();
  readonly #issued: Counter<'ca' | 'profile'>;
  readonly #revoked: Counter<'ca' | 'profile'>;
  /** OCSP answers by status, counted here and handed to the counter when it is read (no label hashing per answer). */
  readonly #ocspAnswers = new Map<string, number>();
  readonly #acmeOrders: Counter<'state'>;
  readonly #estEnrollments: Counter<'result'>;
  readonly #latency: RequestLatency;

  /** `defaultMetrics: false` leaves out prom-client's process metrics (unit tests make many registries). */
  constructor(sources: MetricSources, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.#issued = new Counter({ name: 'trellis_certificates_issued_total', help: 'Certificates issued by this process, by issuing CA and profile.', labelNames: ['ca', 'profile'], registers });
    this.#revoked = new Counter({ name: 'trellis_certificates_revoked_total', help: 'Certificates revoked (certificateHold included) through this process, by issuing CA and profile.', labelNames: ['ca', 'profile'], registers });
    const ocspAnswers = this.#ocspAnswers;
    new Counter({
      name: 'trellis_ocsp_responses_total',
      help: 'OCSP responses sent, by certStatus (good, revoked, unknown) or error responseStatus.',
      labelNames: ['status'],
      registers,
      collect() {
        this.reset();
        for (const [status, n] of ocspAnswers) this.inc({ status }, n);
      },
    });
    this.#acmeOrders = new Counter({ name: 'trellis_acme_orders_total', help: 'ACME orders this process created (pending) or moved into a state.', labelNames: ['state'], registers });
    this.#estEnrollments = new Counter({ name: 'trellis_est_enrollments_total', help: 'EST enrollments by result: issued, the error type of a refusal, or error.', labelNames: ['result'], registers });
    this.#latency = new RequestLatency('trellis_http_request_duration_seconds', 'Time from a request reaching the server to its last byte written, by route class and status class.', latencyBuckets);
    this.registry.registerMetric(this.#latency.asMetric());
    new Counter({
      name: 'trellis_ocsp_cache_hits_total',
      help: 'OCSP requests answered from pre-signed responses, by where the response was found (memory: the LRU; database: the shared table).',
      labelNames: ['cache'],
      registers,
      collect() {
        const s = sources.ocsp();
        this.reset();
        this.inc({ cache: 'memory' }, s.lruHits);
        this.inc({ cache: 'database' }, s.dbHits);
      },
    });
    new Counter({
      name: 'trellis_ocsp_responses_signed_total',
      help: 'OCSP responses signed by this process (cache misses and refreshes).',
      registers,
      collect() {
        this.reset();
        this.inc(sources.ocsp().signed);
      },
    });
    new Gauge({
      name: 'trellis_ocsp_cache_entries',
      help: 'Pre-signed OCSP responses held in memory.',
      registers,
      collect() {
        this.set(sources.ocsp().lruEntries);
      },
    });
    new Gauge({
      name: 'trellis_crl_age_seconds',
      help: 'Seconds since the thisUpdate of the CRL served, by CA and scope (shard-N, full or full-delta).',
      labelNames: ['ca', 'scope'],
      registers,
      // Across cluster workers: the oldest CRL any worker serves.
      aggregator: 'max',
      collect() {
        this.reset();
        const now = sources.now().getTime();
        for (const crl of sources.crls()) this.set({ ca: crl.caId, scope: crl.scope }, (now - crl.thisUpdate.getTime()) / 1000);
      },
    });
    new Gauge({
      name: 'trellis_ca_key_state',
      help: 'Key state of each CA (docs/key-states.md): 1 for the current state, 0 for the others.',
      labelNames: ['ca', 'state'],
      registers,
      aggregator: 'max',
      async collect() {
        const states = await sources.keyStates();
        this.reset();
        for (const { ca, state } of states) {
          if (state === undefined) continue;
          for (const s of keyStates) this.set({ ca, state: s }, s === state ? 1 : 0);
        }
      },
    });
    if (opts.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named like counters, which `promtool check metrics` flags; the same counts by type stay (nodejs_active_handles…).
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    }
  }

  /** A certificate was issued (any channel: API, ACME, EST). */
  certificateIssued(c: { issuerId: string; profile: string }): void {
    this.#issued.inc({ ca: c.issuerId, profile: c.profile });
  }

  /** A certificate was revoked or put on hold. */
  certificateRevoked(c: { issuerId: string; profile: string }): void {
    this.#revoked.inc({ ca: c.issuerId, profile: c.profile });
  }

  /** An OCSP response was sent: counted by what it says (`etag`: the cache's ETag of those bytes, when it has one). */
  ocspAnswered(responseDer: Buffer, etag?: string): void {
    const status = ocspAnswerStatusOf(responseDer, etag);
    this.#ocspAnswers.set(status, (this.#ocspAnswers.get(status) ?? 0) + 1);
  }

  /** An ACME order was stored in `state` (created pending, or moved by compare-and-set). */
  acmeOrderEntered(state: string): void {
    this.#acmeOrders.inc({ state });
  }

  /** An EST enrollment ended: `issued`, the PkiError type of a refusal (`unauthorized`, `badCSR`…), or `error` for any other failure. */
  estEnrollment(result: string): void {
    this.#estEnrollments.inc({ result });
  }

  /** A request was answered: `url` as received, the status sent, and how long it took. */
  requestServed(url: string, status: number, seconds: number): void {
    this.#latency.observe(url, status, seconds);
  }

  /** The Prometheus text exposition of this process's metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The Content-Type of {@link text} (text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }
}
