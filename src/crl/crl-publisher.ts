/**
 * Keeps every CRL of every CA current and serves them from memory.
 *
 * Per CA: one complete CRL per shard (the URL each certificate carries), a
 * full CRL for tools that want one, and a delta of the full CRL. CRL numbers
 * come from the database sequence, so several nodes never publish two CRLs
 * under one number, and every node serves the highest number it has seen.
 *
 * Schedule (docs/crl.md): a pass every few seconds (at most a quarter of
 * `delaySeconds`) picks up status changes — told directly on this node, polled
 * from the database for other nodes — and regenerates the shards they touch
 * plus the full CRL's delta, so many revocations make one CRL per shard. Every
 * scope is also regenerated at half its validity. The full CRL, the expensive
 * one, is regenerated on that schedule only (or when its delta grows large);
 * its delta carries the changes in between. A failed generation is logged and
 * audited, the last good CRL stays served, and the scope is retried with backoff.
 */
import { createHash } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import type { CaUrls } from '../ca/issuer.js';
import type { CertificateRepository } from '../ca/ports.js';
import { crlShardOf } from '../ca/serial.js';
import type { Clock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import { lintFindingsOf } from '../lint/index.js';
import type { CrlExpectations } from '../lint/crl.js';
import { buildCrl, type BuiltCrl, type CrlContent, type CrlSigner, type EntryPage, type RemovedEntry } from './build.js';
import { mergeEntries, revokedListOf } from './incremental.js';
import type { CrlRecord, CrlRepository } from './ports.js';
import { crlUrl, parseScope, shardScope, type CrlScope } from './scope.js';

/** A CA whose CRLs this node publishes or serves. */
export interface CrlIssuer {
  id: string;
  /** CRL shards of the certificates it issues (1 for a root). */
  shards: number;
  /** Null when its key is not unlocked on this node (an offline root): its CRLs are served, never made. */
  signer: CrlSigner | null;
  /** nextUpdate - thisUpdate for this CA; defaults to the publisher's (an offline root's ARL lives longer). */
  validitySeconds?: number;
  /** Only CA certificates in scope (the root's ARL): IDP onlyContainsCACerts. */
  onlyCaCerts?: boolean;
  /** Publish a delta of the full CRL (default true; false for an offline root, whose CRLs change only in ceremonies). */
  deltas?: boolean;
}

/** The scopes a CA publishes: its shards, the full CRL, and the full CRL's delta unless it has none. */
export function scopesOf(issuer: CrlIssuer): string[] {
  const shards = Array.from({ length: issuer.shards }, (_, n) => shardScope(n));
  return issuer.deltas === false ? [...shards, 'full'] : [...shards, 'full', 'full-delta'];
}

/** What the publisher needs; all parameters, no defaults from libraries. */
export interface CrlPublisherOptions {
  crls: CrlRepository;
  certificates: CertificateRepository;
  audit: AuditLog;
  clock: Clock;
  urls: CaUrls;
  /** nextUpdate - thisUpdate; every scope is regenerated at half of it. */
  validitySeconds: number;
  /** A status change reaches its shard CRL and the full CRL's delta within this many seconds. */
  delaySeconds: number;
  log?: (event: Record<string, unknown>) => void;
  /**
   * Revoked entries per store page (default 2,000): the most entry objects
   * held at once, and the longest the store blocks the event loop in one go.
   */
  pageSize?: number;
  /** CRLs kept per scope in the database (default 3). */
  keep?: number;
  /**
   * Publish through a lease shared by every process on the database
   * (`trellis serve`, and each of its workers): per CA, only the holder runs
   * the schedule; the others serve what it stores, and step in only for what
   * it leaves undone (a scope with no CRL, a CRL past three quarters of its
   * life, a change of their own not published within `delaySeconds`).
   * Without it this publisher publishes everything itself (the CLI, tests).
   */
  lease?: {
    /** This process's holder id, an integer in [1, 2^21), random per process. */
    holder: number;
    /** The lease lasts this long unless renewed (every pass and before each CRL). */
    seconds: number;
  };
}

/** Status changes older than the base CRL by this much still go into its delta (commit lag, clock skew between nodes). */
const deltaOverlapMs = 5 * 60_000;
/** Polls for other nodes' changes overlap by this much (a revokedAt is stamped before its commit). */
const pollOverlapMs = 10_000;
/** The full CRL is rebuilt when its delta holds more than this many entries (or a tenth of the base). */
const deltaRebaseEntries = 1_000;
const maxBackoffMs = 5 * 60_000;
const defaultPageSize = 2_000;
const pruneEveryMs = 10 * 60_000;

/**
 * The issuingDistributionPoint a scope needs (docs/crl.md, RFC 5280 §5.2.5):
 * a shard of a CA with several shards names its URL; a CA with one shard, the
 * full CRL and its delta cover every certificate and carry none, except the
 * root's ARL, which says onlyContainsCACerts.
 */
function scopeIdp(issuer: CrlIssuer, scope: CrlScope, url: string): CrlExpectations['idp'] {
  const onlyCaCerts = !!issuer.onlyCaCerts;
  if (scope.kind === 'shard' && issuer.shards > 1) return { url, onlyCaCerts };
  return onlyCaCerts ? { url: null, onlyCaCerts } : null;
}

/** Scopes to regenerate, each with the time (ms) of its oldest change not yet published. */
interface Dirty {
  shards: Map<number, number>;
  delta: number | null;
}

export class CrlPublisher {
  private readonly issuers = new Map<string, CrlIssuer>();
  /** Newest CRL per `${caId}/${scope}`: serving is a map lookup. */
  private readonly current = new Map<string, CrlRecord>();
  private readonly dirty = new Map<string, Dirty>();
  private readonly failures = new Map<string, { count: number; retryAt: number }>();
  /** Changes this node was told about directly: `${issuer}/${serial}` → when. Polling skips them. */
  private readonly told = new Map<string, number>();
  private polledAt: Date;
  /** CAs whose lease this process held at its last attempt. */
  private readonly leased = new Set<string>();
  private prunedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private queued: Promise<void> | null = null;

  constructor(private readonly o: CrlPublisherOptions) {
    // Start polling a little in the past: a change another node made just
    // before this one started, but did not publish, is picked up.
    this.polledAt = new Date(o.clock.now().getTime() - o.delaySeconds * 1000 - pollOverlapMs);
  }

  /** Adds (or replaces) a CA. */
  addIssuer(issuer: CrlIssuer): void {
    if (!Number.isInteger(issuer.shards) || issuer.shards < 1) throw new PkiError('invalidConfig', `CA ${issuer.id}: CRL shards must be a positive integer`);
    this.issuers.set(issuer.id, issuer);
  }

  /** The CRL to serve for a scope (newest held), or undefined. A memory lookup. */
  get(caId: string, scope: string): CrlRecord | undefined {
    return this.current.get(`${caId}/${scope}`);
  }

  /** Every CRL held, one per CA and scope. */
  held(): CrlRecord[] {
    return [...this.current.values()];
  }

  /** The CAs known to this publisher. */
  cas(): CrlIssuer[] {
    return [...this.issuers.values()];
  }

  /** RevocationListener: a certificate of `issuerId` in `crlShard` changed status on this node. */
  statusChanged(issuerId: string, serialHex: string, crlShard: number): void {
    this.told.set(`${issuerId}/${serialHex}`, this.o.clock.now().getTime());
    this.markDirty(issuerId, crlShard);
  }

  /** Schedules shard `shard` of `issuerId` (and the full CRL's delta) for the next pass. */
  markDirty(issuerId: string, shard: number, atMs = this.o.clock.now().getTime()): void {
    this.markScopes(issuerId, [shard], atMs, atMs);
  }

  private markScopes(issuerId: string, shards: Iterable<number>, shardAtMs: number, deltaAtMs: number | null): void {
    let d = this.dirty.get(issuerId);
    if (!d) this.dirty.set(issuerId, (d = { shards: new Map(), delta: null }));
    for (const n of shards) d.shards.set(n, Math.min(d.shards.get(n) ?? shardAtMs, shardAtMs));
    if (deltaAtMs !== null) d.delta = Math.min(d.delta ?? deltaAtMs, deltaAtMs);
  }

  /**
   * Builds, signs, stores and starts serving one CRL of a scope; throws when
   * it cannot (no key here, no base CRL for a delta, store or signing failure).
   * `incremental` (shards only): start from the CRL of the scope held here and
   * read only the certificates whose status changed since it from the store,
   * instead of the whole shard; without a CRL held, a complete read.
   */
  async generate(caId: string, scope: string, opts: { validitySeconds?: number; incremental?: boolean } = {}): Promise<CrlRecord> {
    const issuer = this.issuers.get(caId);
    if (!issuer) throw new PkiError('notFound', `CA ${caId} has no CRLs here`);
    if (!issuer.signer) throw new PkiError('notFound', `the key of CA ${caId} is not unlocked on this node`);
    const parsed = parseScope(scope);
    if (!parsed || (parsed.kind === 'shard' && parsed.shard >= issuer.shards) || (parsed.kind === 'full-delta' && issuer.deltas === false)) throw new PkiError('malformed', `CA ${caId} has no CRL scope "${scope}"`);
    const started = performance.now();
    const now = this.o.clock.now();
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + (opts.validitySeconds ?? issuer.validitySeconds ?? this.o.validitySeconds) * 1000);

    // Step 1: draw the number before reading. Every status change committed
    // before the draw is then in this CRL, and a later change makes its node
    // draw a higher number: the highest number is never missing a change
    // that a lower one has (docs/crl.md, "several nodes").
    const crlNumber = await this.o.crls.nextCrlNumber(caId);

    // Step 2: the scope's content, streamed page by page into the encoder.
    const content: CrlContent = { crlNumber, thisUpdate, nextUpdate, ...(issuer.onlyCaCerts ? { onlyCaCerts: true } : {}) };
    let revoked: AsyncIterable<EntryPage> | Iterable<EntryPage>;
    let removed: RemovedEntry[] = [];
    let baseCrlNumber: bigint | null = null;
    const previous = this.current.get(`${caId}/${scope}`);
    let builtFrom: 'store' | 'previous' = 'store';
    switch (parsed.kind) {
      case 'shard': {
        // RFC 5280 §5.2.5: the IDP names exactly the URL in the certificates' CDP.
        // A CA with one shard (a root) has no IDP name: its CRL covers every
        // certificate it issued, so it also serves for a certificate without
        // a CDP, like the root itself under `openssl verify -crl_check_all`.
        if (issuer.shards > 1) content.distributionPointUrl = crlUrl(this.o.urls, caId, scope);
        const merged = opts.incremental && previous ? await this.mergedPages(caId, parsed.shard, previous) : null;
        if (merged) builtFrom = 'previous';
        revoked = merged ?? this.o.certificates.revokedEntries(caId, parsed.shard, { notAfterAfter: now, pageSize: this.o.pageSize ?? defaultPageSize });
        break;
      }
      case 'full':
        // Complete for the whole CA, so no IDP (a CRL with an IDP covers only
        // certificates whose CDP matches it, §6.3.3); the delta carries changes.
        if (issuer.deltas !== false) content.freshestUrl = crlUrl(this.o.urls, caId, 'full-delta');
        revoked = this.o.certificates.revokedEntries(caId, null, { notAfterAfter: now, pageSize: this.o.pageSize ?? defaultPageSize });
        break;
      case 'full-delta': {
        // §5.2.4: changes since the complete CRL it names, same scope (no IDP).
        // The newest full CRL of any node, by its metadata (its DER can be 49 MB).
        const base = (await this.o.crls.latestAll(caId)).find((m) => m.scope === 'full');
        if (!base) throw new PkiError('notFound', `CA ${caId} has no full CRL yet to base a delta on`);
        baseCrlNumber = content.baseCrlNumber = base.crlNumber;
        const changes = await this.o.certificates.changedSince(caId, null, new Date(base.thisUpdate.getTime() - deltaOverlapMs));
        revoked = [changes.revoked];
        removed = changes.released.map((serialHex) => ({ serialHex, removedAt: thisUpdate }));
        break;
      }
    }

    // Step 3: sign once, store, serve; the audit event carries the digest of what was published.
    // The previous CRL of the scope sizes the buffer, so the entries are written in place.
    // The lint checks the TBS against what the scope needs, derived here from
    // the scope and the CA (not from `content`): IDP, delta base, freshestCRL, validity.
    const expect: Partial<CrlExpectations> = {
      idp: scopeIdp(issuer, parsed, crlUrl(this.o.urls, caId, scope)),
      freshestUrl: parsed.kind === 'full' && issuer.deltas !== false ? crlUrl(this.o.urls, caId, 'full-delta') : null,
      maxValiditySeconds: (nextUpdate.getTime() - thisUpdate.getTime()) / 1000,
      now,
    };
    let built: BuiltCrl;
    try {
      built = await buildCrl(issuer.signer, content, revoked, removed, { expect, ...(previous ? { sizeHint: Math.ceil(previous.der.length * 1.05) + 65_536 } : {}) });
    } catch (err) {
      const findings = lintFindingsOf(err);
      // Audited like a certificate's lint failure: nothing was signed.
      if (findings) await this.o.audit.record('crl.lint_failed', 'trellis', { ca: caId, scope, crlNumber: crlNumber.toString(), lint: findings.map((f) => f.id), error: (err as Error).message });
      throw err;
    }
    const rec: CrlRecord = { caId, scope, crlNumber, baseCrlNumber, thisUpdate, nextUpdate, entries: built.entries, der: built.der };
    await this.o.crls.insert(rec);
    this.remember(rec);
    const ms = Math.round((performance.now() - started) * 10) / 10;
    await this.o.audit.record('crl.published', 'trellis', {
      ca: caId, scope, crlNumber: crlNumber.toString(), entries: built.entries, sha256: createHash('sha256').update(built.der).digest('hex'),
      thisUpdate: thisUpdate.toISOString(), nextUpdate: nextUpdate.toISOString(),
    });
    this.o.log?.({ level: 'info', msg: 'CRL published', ca: caId, scope, crlNumber: crlNumber.toString(), entries: built.entries, bytes: built.der.length, from: builtFrom, ms });
    return rec;
  }

  /**
   * The entries of a shard's next CRL from its previous one and the store's
   * changes since (src/crl/incremental.ts); null when the previous DER cannot
   * be walked, so the caller reads the whole shard instead.
   */
  private async mergedPages(caId: string, shard: number, previous: CrlRecord): Promise<EntryPage[] | null> {
    // The same window as a delta's: a change stamped before the previous
    // thisUpdate may have committed after its number was drawn.
    const changes = await this.o.certificates.changedSince(caId, shard, new Date(previous.thisUpdate.getTime() - deltaOverlapMs));
    try {
      return mergeEntries(revokedListOf(previous.der), changes);
    } catch (err) {
      this.o.log?.({ level: 'warn', msg: 'previous CRL not reusable; reading the whole shard', ca: caId, shard, crlNumber: previous.crlNumber.toString(), error: err instanceof Error ? err.message : String(err) });
      return null;
    }
  }

  /** Loads the newest CRL of every scope of every CA from the database (what other nodes published). */
  async refresh(): Promise<void> {
    for (const issuer of this.issuers.values()) await this.loadNewer(issuer.id);
  }

  /**
   * One pass: pick up what other nodes published and changed, then regenerate
   * what is dirty or past half its life. Passes never overlap; calls made
   * while one runs share the next. Never rejects: failures are logged and audited.
   */
  tick(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.running.then(() => {
      this.queued = null;
      return this.pass();
    });
    this.queued = next.catch((err: unknown) => this.report('CRL pass failed', {}, err));
    this.running = this.queued;
    return this.queued;
  }

  /** Starts the schedule. */
  start(): void {
    if (this.timer) return;
    const passMs = Math.min(5000, Math.max(1000, Math.floor((this.o.delaySeconds * 1000) / 4)));
    this.timer = setInterval(() => void this.tick(), passMs);
    this.timer.unref();
  }

  /** Stops the schedule, waits for a running pass, and gives up the leases held (another process takes over at its next pass). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    const lease = this.o.lease;
    if (!lease) return;
    for (const caId of this.leased) {
      try {
        await this.o.crls.releaseLease(caId, lease.holder);
      } catch (err) {
        this.o.log?.({ level: 'warn', msg: 'CRL lease not released; it expires by itself', ca: caId, error: err instanceof Error ? err.message : String(err) });
      }
    }
    this.leased.clear();
  }

  /** True when this process publishes the CA's CRLs: it holds the lease, or publishes without one. */
  isPublisher(caId: string): boolean {
    return !this.o.lease || this.leased.has(caId);
  }

  // ------------------------------------------------------------ internals

  private remember(rec: CrlRecord): void {
    const k = `${rec.caId}/${rec.scope}`;
    const have = this.current.get(k);
    if (!have || have.crlNumber < rec.crlNumber) this.current.set(k, rec);
  }

  private async loadNewer(caId: string): Promise<void> {
    for (const meta of await this.o.crls.latestAll(caId)) {
      const have = this.current.get(`${caId}/${meta.scope}`);
      if (have && have.crlNumber >= meta.crlNumber) continue;
      const rec = await this.o.crls.latest(caId, meta.scope);
      if (rec) this.remember(rec);
    }
  }

  /** Status changes made on other nodes (and this one, skipped when it was told directly). */
  private async pollChanges(now: Date): Promise<void> {
    const since = new Date(this.polledAt.getTime() - pollOverlapMs);
    const limit = 10_000;
    const changes = await this.o.certificates.statusChangedSince(since, limit);
    this.polledAt = now;
    // With a lease, changes made elsewhere are the holder's to publish; the
    // others take them all up if they take the lease over (holdLease).
    if (changes.length >= limit) {
      // More than one page of changes: every shard may be touched.
      for (const issuer of this.issuers.values()) if (this.isPublisher(issuer.id)) this.markScopes(issuer.id, Array.from({ length: issuer.shards }, (_, n) => n), now.getTime(), now.getTime());
      return;
    }
    for (const c of changes) {
      const issuer = this.issuers.get(c.issuerId);
      if (!issuer || !this.isPublisher(c.issuerId)) continue;
      const toldAt = this.told.get(`${c.issuerId}/${c.serialHex}`);
      if (toldAt !== undefined && toldAt >= c.at.getTime()) continue;
      this.markDirty(c.issuerId, crlShardOf(c.serialHex, issuer.shards));
      this.told.set(`${c.issuerId}/${c.serialHex}`, now.getTime());
    }
    for (const [k, at] of this.told) if (at < since.getTime() - pollOverlapMs) this.told.delete(k);
  }

  /** True when a scope has no CRL yet or is past half its life. */
  private due(caId: string, scope: string, now: number): boolean {
    const c = this.current.get(`${caId}/${scope}`);
    return !c || now >= c.thisUpdate.getTime() + (c.nextUpdate.getTime() - c.thisUpdate.getTime()) / 2;
  }

  private deltaTooBig(caId: string): boolean {
    const base = this.current.get(`${caId}/full`);
    const delta = this.current.get(`${caId}/full-delta`);
    return !!base && !!delta && delta.baseCrlNumber === base.crlNumber && delta.entries > Math.max(deltaRebaseEntries, base.entries / 10);
  }

  /** Generates unless the scope is backing off after failures; true when a new CRL was published. */
  private async safeGenerate(issuer: CrlIssuer, scope: string, now: number, opts: { incremental?: boolean } = {}): Promise<boolean> {
    const k = `${issuer.id}/${scope}`;
    const failed = this.failures.get(k);
    if (failed && now < failed.retryAt) return false;
    try {
      await this.generate(issuer.id, scope, opts);
      this.failures.delete(k);
      return true;
    } catch (err) {
      const count = (failed?.count ?? 0) + 1;
      this.failures.set(k, { count, retryAt: now + Math.min(maxBackoffMs, 1000 * 2 ** Math.min(count, 16)) });
      await this.report('CRL generation failed; serving the last good CRL', { ca: issuer.id, scope, failures: count }, err);
      return false;
    }
  }

  /** Logs a failure and records it in the audit log; an audit failure is logged too (never thrown into the schedule). */
  private async report(msg: string, data: Record<string, unknown>, err: unknown): Promise<void> {
    const error = err instanceof Error ? err.message : String(err);
    this.o.log?.({ level: 'error', msg, ...data, error });
    // A lint failure was audited where it happened (crl.lint_failed).
    if (lintFindingsOf(err)) return;
    try {
      await this.o.audit.record('crl.generation_failed', 'trellis', { ...data, error });
    } catch (auditErr) {
      this.o.log?.({ level: 'error', msg: 'audit event for a CRL failure could not be written', error: auditErr instanceof Error ? auditErr.message : String(auditErr) });
    }
  }

  /**
   * Takes or renews the CA's lease (always true without leases). A failure
   * to reach the database counts as not holding it: other work of the pass
   * still runs, and the CRLs this node serves are kept.
   */
  private async holdLease(caId: string, t: number): Promise<boolean> {
    const lease = this.o.lease;
    if (!lease) return true;
    let held = false;
    try {
      held = await this.o.crls.acquireLease(caId, lease.holder, new Date(t), new Date(t + lease.seconds * 1000));
    } catch (err) {
      this.o.log?.({ level: 'warn', msg: 'CRL lease not reachable; publishing only what is overdue', ca: caId, error: err instanceof Error ? err.message : String(err) });
    }
    if (held && !this.leased.has(caId)) {
      this.o.log?.({ level: 'info', msg: 'CRL publisher lease taken', ca: caId, holder: lease.holder });
      // Whatever the previous holder saw but did not publish (it may have
      // died mid-pass; this process, not holding the lease, did not note other
      // processes' changes): every shard and the delta once, from their
      // previous CRLs.
      const issuer = this.issuers.get(caId);
      if (issuer) this.markScopes(caId, Array.from({ length: issuer.shards }, (_, n) => n), t, t);
    }
    if (held) this.leased.add(caId);
    else this.leased.delete(caId);
    return held;
  }

  /** True when a scope's newest CRL is past three quarters of its life: the process that should have renewed it at half-life did not. */
  private overdue(caId: string, scope: string, now: number): boolean {
    const c = this.current.get(`${caId}/${scope}`);
    return !c || now >= c.thisUpdate.getTime() + ((c.nextUpdate.getTime() - c.thisUpdate.getTime()) * 3) / 4;
  }

  /**
   * Whether a change noted at `markMs` (after its commit) still needs a CRL
   * of `scope`: not when the CRL held was made after it (its number was drawn
   * after its thisUpdate), by this process or another. thisUpdate has whole
   * seconds, so a CRL of the same second proves nothing; `sameSecond` counts
   * it anyway. That is for a process without the lease, whose only job is to
   * step in when the holder does not publish: counting it avoids making the
   * holder's CRL a second time, and should that CRL have been drawn just
   * before the change, the holder still publishes the change (it polls it),
   * or whoever takes the lease over does.
   */
  private stillDirty(caId: string, scope: string, markMs: number | undefined | null, sameSecond = false): boolean {
    if (markMs === undefined || markMs === null) return false;
    const c = this.current.get(`${caId}/${scope}`);
    return !c || c.thisUpdate.getTime() < (sameSecond ? Math.floor(markMs / 1000) * 1000 : markMs);
  }

  private async pass(): Promise<void> {
    const now = this.o.clock.now();
    const t = now.getTime();
    const delayMs = this.o.delaySeconds * 1000;
    await this.pollChanges(now);
    for (const issuer of this.issuers.values()) {
      await this.loadNewer(issuer.id);
      if (!issuer.signer) continue;
      const leader = await this.holdLease(issuer.id, t);
      const dirty = this.dirty.get(issuer.id);
      this.dirty.delete(issuer.id);
      // What is left for a later pass (a failure, or work the lease holder is expected to do).
      const keep = (shard: number | 'delta', atMs: number) => (shard === 'delta' ? this.markScopes(issuer.id, [], atMs, atMs) : this.markScopes(issuer.id, [shard], atMs, null));
      // The lease holder does the schedule; another process only what the
      // holder leaves undone: a scope without a CRL, a CRL past three quarters
      // of its life, a change of its own still unpublished after delaySeconds.
      const run = async (scope: string, opts: { incremental?: boolean } = {}) => {
        // A long pass renews the lease before each CRL, so it does not lapse half way.
        if (leader) await this.holdLease(issuer.id, this.o.clock.now().getTime());
        return this.safeGenerate(issuer, scope, t, opts);
      };

      // Shards first: they are what certificates point at. A shard that is
      // only dirty starts from its previous CRL; one at half-life is read
      // whole from the store (which also drops entries that expired).
      for (let n = 0; n < issuer.shards; n++) {
        const scope = shardScope(n);
        const mark = dirty?.shards.get(n);
        const wanted = this.stillDirty(issuer.id, scope, mark, !leader);
        const due = this.due(issuer.id, scope, t);
        const go = leader ? wanted || due : !this.current.has(`${issuer.id}/${scope}`) || this.overdue(issuer.id, scope, t) || (wanted && t - mark! >= delayMs);
        if (go) {
          if (!(await run(scope, { incremental: !due })) && wanted) keep(n, mark!);
        } else if (wanted) keep(n, mark!);
      }
      const fullGo = leader ? this.due(issuer.id, 'full', t) || this.deltaTooBig(issuer.id) : this.overdue(issuer.id, 'full', t);
      const fullNew = fullGo && (await run('full'));
      const deltaWanted = this.stillDirty(issuer.id, 'full-delta', dirty?.delta, !leader);
      if (issuer.deltas !== false && this.current.has(`${issuer.id}/full`)) {
        const go = leader ? fullNew || deltaWanted || this.due(issuer.id, 'full-delta', t) : fullNew || this.overdue(issuer.id, 'full-delta', t) || (deltaWanted && t - dirty!.delta! >= delayMs);
        if (go) {
          if (!(await run('full-delta')) && deltaWanted) keep('delta', dirty!.delta!);
        } else if (deltaWanted) keep('delta', dirty!.delta!);
      } else if (deltaWanted) keep('delta', dirty!.delta!);
    }
    if (t - this.prunedAt >= pruneEveryMs) {
      this.prunedAt = t;
      for (const issuer of this.issuers.values()) {
        if (!issuer.signer || !this.isPublisher(issuer.id)) continue;
        try {
          await this.o.crls.prune(issuer.id, this.o.keep ?? 3);
        } catch (err) {
          await this.report('pruning old CRLs failed', { ca: issuer.id }, err);
        }
      }
    }
  }
}
