/**
 * The OCSP responder (RFC 6960, RFC 5019 profile) of a node: the request
 * filter (filter.ts) over the cache of pre-signed responses (cache.ts) over
 * the live source that looks up status and signs (live.ts), with the timers
 * that keep the cache true (poll.ts) and the database's rows fresh
 * (refresh.ts). Responses are signed by each issuing CA's delegated
 * responder, through the signer the CA hands out (it lints before it signs).
 *
 * A status change drops the certificate's entries at once on the node that
 * made it (`invalidate`, called by the RevocationAuthority) and within
 * `pollSeconds` on every other node (`poll` over statusChangedSince). If
 * polling fails for `maxStalenessSeconds`, the LRU is bypassed until it
 * works again.
 */
import type { ResponderMaterial } from '../ca/held-keys.js';
import type { CertificateRepository } from '../ca/ports.js';
import type { Clock } from '../clock/clock.js';
import { CachingSource } from './cache.js';
import { RequestFilter } from './filter.js';
import { Invalidations } from './invalidations.js';
import { LiveSource, ResponderUnavailable } from './live.js';
import { StatusPoller } from './poll.js';
import type { OcspResponseRepository } from './ports.js';
import { Refresher } from './refresh.js';
import { errorResponse, type ErrorStatusName } from './response.js';
import type { OcspResult, ResponderCa } from './source.js';
import { PendingWrites } from './writes.js';

export type { CacheInfo, OcspResult, ResponderCa } from './source.js';

export interface ResponderOptions {
  certificates: Pick<CertificateRepository, 'statusOf' | 'statusChangedSince'>;
  /** Pre-signed responses shared by every node; without it only the in-memory LRU holds them. */
  responses?: OcspResponseRepository;
  clock: Clock;
  /** nextUpdate − thisUpdate of good and revoked responses (RFC 5019 §4: hours to days). */
  validitySeconds: number;
  /** Validity of `unknown` responses, which are never stored (default min(validitySeconds, 300)). */
  unknownValiditySeconds?: number;
  /** How often statusChangedSince is polled (other nodes' revocations). */
  pollSeconds: number;
  /** The LRU is bypassed when the last successful poll is older than this (default max(5, 5 × pollSeconds)). */
  maxStalenessSeconds?: number;
  /** How often the refresh loop re-signs database rows nearing half-life (default 60). */
  refreshSeconds?: number;
  /** Rows per refresh batch (default 500). */
  refreshBatch?: number;
  /** Entries of the in-memory LRU (default 20,000; about 1 KiB each; `revocation.ocspCacheEntries`). */
  cacheEntries?: number;
  /**
   * statusChangedSince rows per page (default 10,000). A poll reads pages
   * until it has every change; only when one poll finds more changes than the
   * LRU can hold is the LRU cleared instead.
   */
  pollPageSize?: number;
  log?: (e: Record<string, unknown>) => void;
}

/** Counters since start, for tests, benchmarks and health output. */
export interface ResponderStats {
  lruEntries: number;
  lruHits: number;
  dbHits: number;
  signed: number;
  pendingWrites: number;
  refreshed: number;
  invalidations: number;
  errors: number;
  lastPollOk: Date | null;
}

/** The OCSP responder of a node; see the module comment. */
export class OcspResponder {
  private readonly changes = new Invalidations();
  private readonly writes: PendingWrites;
  private readonly live: LiveSource;
  private readonly cache: CachingSource;
  private readonly filter: RequestFilter;
  private readonly poller: StatusPoller;
  private readonly refresher: Refresher | undefined;
  private errors = 0;
  private polling = false;
  private pollRunning = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ResponderOptions) {
    if (!(o.validitySeconds >= 60)) throw new RangeError('validitySeconds must be at least 60');
    const { certificates, responses, clock, log } = o;
    this.writes = new PendingWrites({ responses, log }, this.changes);
    this.live = new LiveSource({ certificates, clock, validitySeconds: o.validitySeconds, unknownValiditySeconds: o.unknownValiditySeconds ?? Math.min(o.validitySeconds, 300) });
    const maxStalenessMs = (o.maxStalenessSeconds ?? Math.max(5, 5 * o.pollSeconds)) * 1000;
    this.cache = new CachingSource({ certificates, responses, clock, cacheEntries: o.cacheEntries ?? 20_000, maxStalenessMs, log }, this.live, this.changes, this.writes);
    this.filter = new RequestFilter(this.cache);
    this.poller = new StatusPoller({ certificates, clock, pageSize: o.pollPageSize, log }, this.cache, this.changes);
    if (responses) {
      const refresh = { certificates, responses, clock, validitySeconds: o.validitySeconds, refreshSeconds: o.refreshSeconds ?? 60, refreshBatch: o.refreshBatch ?? 500 };
      this.refresher = new Refresher(refresh, (id) => this.filter.ca(id), this.live, this.cache, this.changes);
    }
  }

  /**
   * Adds a CA, or replaces its responder after a renewal. Responses signed by
   * the previous responder stay valid until their nextUpdate (never past that
   * certificate's notAfter) and keep being served until half-life.
   * Throws when the responder certificate was not issued by the CA or lacks id-kp-OCSPSigning.
   */
  setCa(ca: ResponderCa): void {
    this.filter.setCa(ca);
  }

  /** `setCa` from what `currentResponder` (ca/held-keys.ts) returns: the issuing CA and its responder's signer. */
  setResponder(m: Pick<ResponderMaterial, 'issuer' | 'signer'>): void {
    this.setCa({ id: m.issuer.id, subjectDer: m.issuer.cert.subjectDer, subjectPublicKey: m.issuer.cert.subjectPublicKey, signer: m.signer });
  }

  /**
   * Drops every pre-signed response of a certificate on this node (LRU and
   * pending writes) after its status changed; the next request reads the new
   * status. Other nodes learn of it through `poll`.
   */
  invalidate(issuerId: string, serialHex: string): void {
    this.cache.invalidate(issuerId, serialHex);
  }

  /** RevocationListener (src/ra/revoke.ts): the same as `invalidate`. */
  statusChanged(issuerId: string, serialHex: string): void {
    this.invalidate(issuerId, serialHex);
  }

  /** Answers any request body with an OCSPResponse DER, plus caching facts. Never throws (nor rejects). */
  answer(requestDer: Buffer): Promise<OcspResult> {
    // Not an async function: a cached answer is already settled, and each promise and await on the way costs.
    let answered: Promise<OcspResult>;
    try {
      answered = this.filter.answer(requestDer);
    } catch (err) {
      return Promise.resolve(this.failed(err));
    }
    return answered.then(undefined, this.onFailure);
  }

  private readonly onFailure = (err: unknown): OcspResult => this.failed(err);

  /**
   * The answer to a request body when a pre-signed response for it is held in memory (what `answer` would give,
   * without a promise); undefined otherwise: then call `answer`. Never throws.
   */
  answerCached(requestDer: Buffer): OcspResult | undefined {
    try {
      return this.filter.cached(requestDer);
    } catch {
      return undefined; // `answer` meets the same failure and answers it
    }
  }

  /** The OCSPResponse DER for a request body (see `answer`). Never throws. */
  async respond(requestDer: Buffer): Promise<Buffer> {
    return (await this.answer(requestDer)).der;
  }

  /** A failure below the filter, answered with an error status: tryLater when the responder cannot sign now, else internalError (a lint refusal included). */
  private failed(err: unknown): OcspResult {
    const status: ErrorStatusName = err instanceof ResponderUnavailable ? 'tryLater' : 'internalError';
    this.errors++;
    this.o.log?.({ level: 'error', msg: `OCSP ${status}`, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    return { der: errorResponse(status), cache: null };
  }

  /** Writes pending pre-signed responses to the database (batched; a row whose certificate changed meanwhile is dropped). */
  flush(): Promise<void> {
    return this.writes.flush();
  }

  /** Reads status changes made anywhere (other nodes, the CLI) since the last poll and invalidates them (poll.ts). */
  poll(): Promise<void> {
    return this.poller.poll();
  }

  /**
   * Re-signs database rows that reach half-life before the next run, with
   * the current status; rows of expired or never-issued certificates are
   * deleted. Returns how many rows were due (0 without a database).
   */
  async refresh(): Promise<number> {
    return this.refresher ? this.refresher.refresh() : 0;
  }

  /** Starts the status poll (every pollSeconds) and the refresh loop (every refreshSeconds); timers do not keep the process alive. */
  start(): void {
    if (this.polling) return;
    this.polling = true;
    this.cache.watch(this.o.clock.now().getTime());
    this.pollTimer = setInterval(() => {
      if (this.pollRunning) return; // a slow database: never two polls at once
      this.pollRunning = true;
      this.poll()
        .catch((err) => this.o.log?.({ level: 'error', msg: 'OCSP status poll failed', error: String(err) }))
        .finally(() => (this.pollRunning = false));
    }, this.o.pollSeconds * 1000);
    this.pollTimer.unref();
    const refresher = this.refresher;
    if (refresher) {
      this.refreshTimer = setInterval(() => {
        refresher.refreshAll().catch((err) => this.o.log?.({ level: 'error', msg: 'OCSP refresh failed', error: String(err) }));
      }, (this.o.refreshSeconds ?? 60) * 1000);
      this.refreshTimer.unref();
    }
  }

  /** Stops the timers (pending writes are dropped unless `close` is awaited instead). */
  stop(): void {
    clearInterval(this.pollTimer);
    clearInterval(this.refreshTimer);
    this.writes.stopTimer();
    this.polling = false;
    this.cache.unwatch();
  }

  /** Stops the timers and writes pending pre-signed responses; await it before closing the store. */
  async close(): Promise<void> {
    this.stop();
    await this.writes.close();
  }

  stats(): ResponderStats {
    return {
      ...this.cache.counters,
      signed: this.live.signed,
      refreshed: this.refresher?.refreshed ?? 0,
      invalidations: this.changes.count,
      errors: this.errors,
      lruEntries: this.cache.size,
      pendingWrites: this.writes.size,
      lastPollOk: this.cache.lastPollOk,
    };
  }
}
