/**
 * When CRLs are made (docs/crl.md): a pass every few seconds (at most a
 * quarter of `delaySeconds`) picks up status changes — told directly on this
 * node, polled from the database for other nodes — and has the generator
 * regenerate the shards they touch plus the full CRL's delta, so many
 * revocations make one CRL per shard. Every scope is also regenerated at half
 * its validity. The full CRL, the expensive one, is regenerated on that
 * schedule only (or when its delta grows large); its delta carries the
 * changes in between. A failed generation is logged and audited, the last
 * good CRL stays served, and the scope is retried with backoff. With a lease
 * shared on the database, only its holder runs the schedule of a CA.
 */
import type { AuditLog } from '../audit/audit-log.js';
import type { CertificateRepository } from '../ca/ports.js';
import { crlShardOf } from '../ca/serial.js';
import type { Clock } from '../clock/clock.js';
import { lintFindingsOf } from '../lint/index.js';
import type { CrlGenerator, CrlIssuer } from './generator.js';
import type { HeldCrls } from './held.js';
import type { CrlRepository } from './ports.js';
import { shardScope } from './scope.js';

/** What the scheduler needs; all parameters, no defaults from libraries. */
export interface CrlSchedulerOptions {
  crls: CrlRepository;
  certificates: CertificateRepository;
  audit: AuditLog;
  clock: Clock;
  /** A status change reaches its shard CRL and the full CRL's delta within this many seconds. */
  delaySeconds: number;
  log?: (event: Record<string, unknown>) => void;
  /** CRLs kept per scope in the database (default 3). */
  keep?: number;
  /**
   * Publish through a lease shared by every process on the database
   * (`trellis serve`, and each of its workers): per CA, only the holder runs
   * the schedule; the others serve what it stores, and step in only for what
   * it leaves undone (a scope with no CRL, a CRL past three quarters of its
   * life, a change of their own not published within `delaySeconds`).
   * Without it this process publishes everything itself (the CLI, tests).
   */
  lease?: {
    /** This process's holder id, an integer in [1, 2^21), random per process. */
    holder: number;
    /** The lease lasts this long unless renewed (every pass and before each CRL). */
    seconds: number;
  };
}

/** Polls for other nodes' changes overlap by this much (a revokedAt is stamped before its commit). */
const pollOverlapMs = 10_000;
/**
 * On taking a lease, a change stamped this long before a shard's CRL may
 * still be missing from it: the generator's window for the same question
 * (commit lag, clock skew between nodes).
 */
const catchUpOverlapMs = 5 * 60_000;
/** statusChangedSince rows per page when catching up on taking a lease; past this many pages, every shard is regenerated. */
const catchUpPage = 10_000;
const catchUpMaxPages = 20;
/** The full CRL is rebuilt when its delta holds more than this many entries (or a tenth of the base). */
const deltaRebaseEntries = 1_000;
const maxBackoffMs = 5 * 60_000;
/**
 * Shard CRLs of one CA made at once in a pass. A first pass at 1,024 shards:
 * 17–20 ms wall a CRL at 4, 31–42 ms one at a time (interleaved A/B, load 10–14).
 */
const shardConcurrency = 4;
const pruneEveryMs = 10 * 60_000;

/** A scope's oldest change not yet published: when it was noted here (ms), and the number of the CRL held for the scope then (null: none). */
interface Mark {
  at: number;
  over: bigint | null;
}

/** Scopes to regenerate, each with its {@link Mark}. */
interface Dirty {
  shards: Map<number, Mark>;
  delta: Mark | null;
}

/** Runs the schedule of every CA in `issuers`; the generator makes each CRL, `held` says what is served. */
export class CrlScheduler {
  private readonly dirty = new Map<string, Dirty>();
  private readonly failures = new Map<string, { count: number; retryAt: number }>();
  /** Changes this node was told about directly, or noted by polling: `${issuer}/${serial}` → when. Polling skips them. */
  private readonly told = new Map<string, number>();
  /** Of the changes polling noted: `${issuer}/${serial}` → the change's own time (ms), which statusChanged compares. */
  private readonly polled = new Map<string, number>();
  private polledAt: Date;
  /** CAs whose lease this process held at its last attempt. */
  private readonly leased = new Set<string>();
  /** When this process last took or renewed each CA's lease (ms). */
  private readonly renewedAt = new Map<string, number>();
  /** Without the lease: when this process first found `${caId}/${scope}` with no CRL (the holder makes it; see pass). */
  private readonly missingSince = new Map<string, number>();
  private prunedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private queued: Promise<void> | null = null;

  constructor(
    private readonly o: CrlSchedulerOptions,
    private readonly issuers: ReadonlyMap<string, CrlIssuer>,
    private readonly held: HeldCrls,
    private readonly generator: CrlGenerator,
  ) {
    // Start polling a little in the past: a change another node made just
    // before this one started, but did not publish, is picked up.
    this.polledAt = new Date(o.clock.now().getTime() - o.delaySeconds * 1000 - pollOverlapMs);
  }

  /**
   * RevocationListener: a certificate of `issuerId` in `crlShard` changed
   * status on this node at `changedAt`, committed. Nothing to do when polling
   * already noted that very change (the same serial and change time): it saw
   * it committed and marked it then, and a CRL made since has it. A mark now
   * would be later than needed, and the publisher, whose check has whole
   * seconds, would make the CRL again.
   */
  statusChanged(issuerId: string, serialHex: string, crlShard: number, changedAt?: Date): void {
    const k = `${issuerId}/${serialHex}`;
    if (changedAt !== undefined && this.polled.get(k) === changedAt.getTime()) return;
    this.told.set(k, this.o.clock.now().getTime());
    this.markDirty(issuerId, crlShard);
  }

  /** Schedules shard `shard` of `issuerId` (and the full CRL's delta) for the next pass. */
  markDirty(issuerId: string, shard: number, atMs = this.o.clock.now().getTime()): void {
    this.markScopes(issuerId, [shard], atMs, atMs);
  }

  private markScopes(issuerId: string, shards: Iterable<number>, shardAtMs: number, deltaAtMs: number | null): void {
    const markOf = (scope: string, at: number): Mark => ({ at, over: this.held.get(issuerId, scope)?.crlNumber ?? null });
    for (const n of shards) this.keepMark(issuerId, n, markOf(shardScope(n), shardAtMs));
    if (deltaAtMs !== null) this.keepMark(issuerId, 'delta', markOf('full-delta', deltaAtMs));
  }

  /** Adds `mark` to a scope's pending change; the older of two is kept (its CRL number is the lower). */
  private keepMark(issuerId: string, scope: number | 'delta', mark: Mark): void {
    let d = this.dirty.get(issuerId);
    if (!d) this.dirty.set(issuerId, (d = { shards: new Map(), delta: null }));
    const have = scope === 'delta' ? d.delta : d.shards.get(scope);
    const kept = have && have.at <= mark.at ? have : mark;
    if (scope === 'delta') d.delta = kept;
    else d.shards.set(scope, kept);
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
      this.polled.set(`${c.issuerId}/${c.serialHex}`, c.at.getTime());
    }
    for (const [k, at] of this.told) {
      if (at >= since.getTime() - pollOverlapMs) continue;
      this.told.delete(k);
      this.polled.delete(k);
    }
  }

  /** True when a scope has no CRL yet or is past half its life. */
  private due(caId: string, scope: string, now: number): boolean {
    const c = this.held.get(caId, scope);
    return !c || now >= c.thisUpdate.getTime() + (c.nextUpdate.getTime() - c.thisUpdate.getTime()) / 2;
  }

  private deltaTooBig(caId: string): boolean {
    const base = this.held.get(caId, 'full');
    const delta = this.held.get(caId, 'full-delta');
    return !!base && !!delta && delta.baseCrlNumber === base.crlNumber && delta.entries > Math.max(deltaRebaseEntries, base.entries / 10);
  }

  /** Generates unless the scope is backing off after failures; true when a new CRL was published. */
  private async safeGenerate(issuer: CrlIssuer, scope: string, now: number, opts: { incremental?: boolean } = {}): Promise<boolean> {
    const k = `${issuer.id}/${scope}`;
    const failed = this.failures.get(k);
    if (failed && now < failed.retryAt) return false;
    try {
      await this.generator.generate(issuer, scope, opts);
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
    // A lint failure was audited where it happened, by the CA (crl.lint_failed).
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
      const issuer = this.issuers.get(caId);
      if (issuer) await this.catchUp(issuer, t);
    }
    if (held) {
      this.leased.add(caId);
      this.renewedAt.set(caId, t);
    } else this.leased.delete(caId);
    return held;
  }

  /**
   * On taking a CA's lease: whatever the previous holder saw but did not
   * publish (it may have died mid-pass; this process, not holding the lease,
   * did not note other processes' changes). Marks the delta, and each shard
   * whose CRL held here may lack a status change in the database: one stamped
   * after the CRL's thisUpdate less catchUpOverlapMs. The other shards' CRLs
   * already hold every change, and stay until their half-life. A shard with
   * no CRL is due anyway. When the changes cannot be read, or are too many,
   * every shard is marked.
   */
  private async catchUp(issuer: CrlIssuer, t: number): Promise<void> {
    const every = Array.from({ length: issuer.shards }, (_, n) => n);
    const shardCrls = every.map((n) => this.held.get(issuer.id, shardScope(n)));
    const oldest = Math.min(...shardCrls.map((c) => c?.thisUpdate.getTime() ?? Infinity));
    const touched = new Set<number>();
    try {
      let since = new Date(oldest - catchUpOverlapMs);
      for (let page = 0; Number.isFinite(oldest); page++) {
        if (page === catchUpMaxPages) {
          this.markScopes(issuer.id, every, t, t);
          return;
        }
        const changes = await this.o.certificates.statusChangedSince(since, catchUpPage);
        for (const c of changes) {
          if (c.issuerId !== issuer.id) continue;
          const n = crlShardOf(c.serialHex, issuer.shards);
          const crl = shardCrls[n];
          if (crl && c.at.getTime() >= crl.thisUpdate.getTime() - catchUpOverlapMs) touched.add(n);
        }
        // A page never ends inside a run of equal change times: its last one is the next cursor.
        if (changes.length < catchUpPage) break;
        since = changes[changes.length - 1]!.at;
      }
    } catch (err) {
      this.o.log?.({ level: 'warn', msg: 'CRL lease taken; changes not read, every shard is regenerated', ca: issuer.id, error: err instanceof Error ? err.message : String(err) });
      this.markScopes(issuer.id, every, t, t);
      return;
    }
    this.markScopes(issuer.id, touched, t, t);
  }

  /**
   * Without the lease: true when the holder left a scope undone. A scope with
   * no CRL is left to the holder for delaySeconds from when this process first
   * found it missing (on a new database, every process starts with none, and
   * the holder makes them all); a CRL past three quarters of its life is
   * overdue at once.
   */
  private leftUndone(caId: string, scope: string, now: number): boolean {
    const k = `${caId}/${scope}`;
    if (this.held.get(caId, scope)) {
      this.missingSince.delete(k);
      return this.overdue(caId, scope, now);
    }
    const since = this.missingSince.get(k) ?? now;
    this.missingSince.set(k, since);
    return now - since >= this.o.delaySeconds * 1000;
  }

  /** True when a scope's newest CRL is past three quarters of its life: the process that should have renewed it at half-life did not. */
  private overdue(caId: string, scope: string, now: number): boolean {
    const c = this.held.get(caId, scope);
    return !c || now >= c.thisUpdate.getTime() + ((c.nextUpdate.getTime() - c.thisUpdate.getTime()) * 3) / 4;
  }

  /**
   * Whether a change marked `mark` (noted after its commit) still needs a CRL
   * of `scope`. The publisher (`leader`): not when the CRL held was made
   * after the change was noted (its number was drawn after its thisUpdate,
   * which has whole seconds). A process without the lease, whose only job is
   * to step in when the holder does not publish: not once any CRL newer than
   * the one it held when it noted the change is held, so the holder is
   * publishing. The holder may have made that CRL between the change's
   * commit and the moment this process noted it (this process notes its own
   * change after its audit write): it has the change then, and a time check
   * would miss it across a second boundary and make the CRL again. Should the
   * holder's CRL have been drawn before the commit, the holder still
   * publishes the change (it polls it), or whoever takes the lease over does.
   */
  private stillDirty(caId: string, scope: string, mark: Mark | undefined | null, leader: boolean): boolean {
    if (!mark) return false;
    const c = this.held.get(caId, scope);
    if (!c) return true;
    return leader ? c.thisUpdate.getTime() < mark.at : mark.over !== null && c.crlNumber <= mark.over;
  }

  private async pass(): Promise<void> {
    const now = this.o.clock.now();
    const t = now.getTime();
    const delayMs = this.o.delaySeconds * 1000;
    await this.pollChanges(now);
    for (const issuer of this.issuers.values()) {
      await this.held.loadNewer(issuer.id);
      if (!issuer.signer) continue;
      const leader = await this.holdLease(issuer.id, t);
      const dirty = this.dirty.get(issuer.id);
      this.dirty.delete(issuer.id);
      // What is left for a later pass (a failure, or work the lease holder is expected to do).
      const keep = (scope: number | 'delta', mark: Mark) => this.keepMark(issuer.id, scope, mark);
      // The lease holder does the schedule; another process only what the
      // holder leaves undone: a scope without a CRL, a CRL past three quarters
      // of its life, a change of its own still unpublished after delaySeconds.
      const run = async (scope: string, opts: { incremental?: boolean } = {}) => {
        // A long pass renews the lease before a CRL once a third of it has
        // passed, so it does not lapse half way (not before each CRL: a first
        // pass makes one per shard, and each renewal is a round trip).
        const at = this.o.clock.now().getTime();
        const lease = this.o.lease;
        if (leader && lease && at - (this.renewedAt.get(issuer.id) ?? 0) >= (lease.seconds * 1000) / 3) await this.holdLease(issuer.id, at);
        return this.safeGenerate(issuer, scope, t, opts);
      };

      // Shards first: they are what certificates point at. A shard that is
      // only dirty starts from its previous CRL; one at half-life is read
      // whole from the store (which also drops entries that expired).
      // Up to shardConcurrency shard CRLs are made at once: each waits on a
      // few database round trips (number, read, insert, audit), which
      // overlap; a first pass or a half-life makes one per shard.
      const todo: (() => Promise<void>)[] = [];
      for (let n = 0; n < issuer.shards; n++) {
        const scope = shardScope(n);
        const mark = dirty?.shards.get(n);
        const wanted = this.stillDirty(issuer.id, scope, mark, leader);
        const due = this.due(issuer.id, scope, t);
        const go = leader ? wanted || due : this.leftUndone(issuer.id, scope, t) || (wanted && t - mark!.at >= delayMs);
        if (go) {
          todo.push(async () => {
            if (!(await run(scope, { incremental: !due })) && wanted) keep(n, mark!);
          });
        } else if (wanted) keep(n, mark!);
      }
      await Promise.all(Array.from({ length: Math.min(shardConcurrency, todo.length) }, async () => {
        for (let job = todo.shift(); job; job = todo.shift()) await job();
      }));
      const fullGo = leader ? this.due(issuer.id, 'full', t) || this.deltaTooBig(issuer.id) : this.leftUndone(issuer.id, 'full', t);
      const fullNew = fullGo && (await run('full'));
      const deltaWanted = this.stillDirty(issuer.id, 'full-delta', dirty?.delta, leader);
      if (issuer.deltas !== false && this.held.get(issuer.id, 'full')) {
        const go = leader ? fullNew || deltaWanted || this.due(issuer.id, 'full-delta', t) : fullNew || this.leftUndone(issuer.id, 'full-delta', t) || (deltaWanted && t - dirty!.delta!.at >= delayMs);
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
