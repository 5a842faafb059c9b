/**
 * Keeps every CRL of every CA current and serves them: from memory, a
 * large one from the store on demand (src/crl/held.ts).
 *
 * Per CA: one complete CRL per shard (the URL each certificate carries), a
 * full CRL for tools that want one, and a delta of the full CRL. CRL numbers
 * come from the database sequence, so several nodes never publish two CRLs
 * under one number, and every node serves the highest number it has seen.
 *
 * The publisher puts three parts together: the CRLs held (src/crl/held.ts,
 * what is served), the generator (src/crl/generator.ts, how one CRL is
 * made) and the scheduler (src/crl/scheduler.ts, when each is made).
 */
import { PkiError } from '../errors/pki-error.js';
import { CrlGenerator, type CrlGeneratorOptions, type CrlIssuer } from './generator.js';
import { HeldCrls, type HeldCrlsOptions } from './held.js';
import type { CrlRecord, HeldCrl } from './ports.js';
import { CrlScheduler, type CrlSchedulerOptions } from './scheduler.js';

/** What the publisher needs: the generator's and the scheduler's options; all parameters, no defaults from libraries. */
export interface CrlPublisherOptions extends CrlGeneratorOptions, CrlSchedulerOptions, HeldCrlsOptions {}

export class CrlPublisher {
  private readonly issuers = new Map<string, CrlIssuer>();
  private readonly crls: HeldCrls;
  private readonly generator: CrlGenerator;
  private readonly scheduler: CrlScheduler;

  constructor(o: CrlPublisherOptions) {
    this.crls = new HeldCrls(o.crls, o);
    this.generator = new CrlGenerator(o, this.crls);
    this.scheduler = new CrlScheduler(o, this.issuers, this.crls, this.generator);
  }

  /** Adds (or replaces) a CA. */
  addIssuer(issuer: CrlIssuer): void {
    if (!Number.isInteger(issuer.shards) || issuer.shards < 1) throw new PkiError('invalidConfig', `CA ${issuer.id}: CRL shards must be a positive integer`);
    this.issuers.set(issuer.id, issuer);
  }

  /** The CRL to serve for a scope (newest held), or undefined. A memory lookup; a large CRL's `der` is null (derOf). */
  get(caId: string, scope: string): HeldCrl | undefined {
    return this.crls.get(caId, scope);
  }

  /** The DER of a CRL got from `get` or `held`: from memory, or for a large CRL read from the store (src/crl/held.ts); null when superseded there. */
  derOf(crl: HeldCrl): Promise<Buffer | null> {
    return this.crls.derOf(crl);
  }

  /** Each of `crls` with its DER (src/crl/held.ts withDers): those not in memory read a page per query, and not held after. */
  withDers(crls: readonly HeldCrl[]): AsyncGenerator<[HeldCrl, Buffer | null]> {
    return this.crls.withDers(crls);
  }

  /** Every CRL held, one per CA and scope. */
  held(): HeldCrl[] {
    return this.crls.all();
  }

  /** The CAs known to this publisher. */
  cas(): CrlIssuer[] {
    return [...this.issuers.values()];
  }

  /** RevocationListener: a certificate of `issuerId` in `crlShard` changed status on this node at `changedAt`. */
  statusChanged(issuerId: string, serialHex: string, crlShard: number, changedAt?: Date): void {
    this.scheduler.statusChanged(issuerId, serialHex, crlShard, changedAt);
  }

  /** Schedules shard `shard` of `issuerId` (and the full CRL's delta) for the next pass. */
  markDirty(issuerId: string, shard: number, atMs?: number): void {
    this.scheduler.markDirty(issuerId, shard, atMs);
  }

  /**
   * Makes one CRL of a scope of a known CA now (src/crl/generator.ts): built,
   * signed, stored and served; throws when it cannot.
   */
  async generate(caId: string, scope: string, opts: { validitySeconds?: number; incremental?: boolean } = {}): Promise<CrlRecord> {
    const issuer = this.issuers.get(caId);
    if (!issuer) throw new PkiError('notFound', `CA ${caId} has no CRLs here`);
    return this.generator.generate(issuer, scope, opts);
  }

  /** Loads the newest CRL of every scope of every CA from the database (what other nodes published). */
  async refresh(): Promise<void> {
    for (const issuer of this.issuers.values()) await this.crls.loadNewer(issuer.id);
  }

  /** One pass of the schedule (CrlScheduler.tick); never rejects. */
  tick(): Promise<void> {
    return this.scheduler.tick();
  }

  /** Starts the schedule. */
  start(): void {
    this.scheduler.start();
  }

  /** Stops the schedule, waits for a running pass, and gives up the leases held. */
  stop(): Promise<void> {
    return this.scheduler.stop();
  }

  /** True when this process publishes the CA's CRLs: it holds the lease, or publishes without one. */
  isPublisher(caId: string): boolean {
    return this.scheduler.isPublisher(caId);
  }
}
