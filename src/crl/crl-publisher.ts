/**
 * Publishes CRLs for every CA this node knows: one complete CRL per shard
 * (the URL each certificate carries), a full CRL for tools that want one, and
 * a delta CRL of the full CRL. Numbers come from the database sequence, so
 * several nodes never publish two CRLs under one number; every node serves
 * the highest number it has seen. A failed generation keeps the last good CRL.
 */
import type { AuditLog } from '../audit/audit-log.js';
import type { CaUrls } from '../ca/issuer.js';
import { crlShardOf } from '../ca/serial.js';
import type { CertificateRepository } from '../ca/ports.js';
import type { Clock } from '../clock/clock.js';
import { encodeEntries, signCrl, type CrlSigner } from './encode-crl.js';
import type { CrlRecord, CrlRepository } from './ports.js';

/** A CA whose CRLs this node publishes. `signer` is null when its key is not here (an offline root): its CRLs are only served. */
export interface CrlIssuer {
  id: string;
  shards: number;
  signer: CrlSigner | null;
}

export interface CrlPublisherOptions {
  crls: CrlRepository;
  certificates: CertificateRepository;
  audit: AuditLog;
  clock: Clock;
  urls: CaUrls;
  /** nextUpdate - thisUpdate. */
  validitySeconds: number;
  /** A revocation reaches its shard CRL within this many seconds. */
  delaySeconds: number;
  log?: (event: Record<string, unknown>) => void;
}

/** Scope names: 'shard-<n>', 'full', 'full-delta'. URLs: /crl/{ca}/{n}.crl, /crl/{ca}/full.crl, /crl/{ca}/full-delta.crl. */
export const scopeOfPath = (file: string): string | null => {
  const m = /^(\d{1,4}|full|full-delta)\.crl$/.exec(file);
  return m ? (/^\d/.test(m[1]!) ? `shard-${Number(m[1])}` : m[1]!) : null;
};

export class CrlPublisher {
  private readonly issuers = new Map<string, CrlIssuer>();
  /** Newest CRL per `${caId}/${scope}` held in memory: serving is a lookup. */
  private readonly current = new Map<string, CrlRecord>();
  private readonly dirty = new Map<string, Set<number>>();
  private lastFull = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private polledAt: Date;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly o: CrlPublisherOptions) {
    this.polledAt = o.clock.now();
  }

  addIssuer(issuer: CrlIssuer): void {
    this.issuers.set(issuer.id, issuer);
  }

  /** The CRL to serve, or undefined. */
  get(caId: string, scope: string): CrlRecord | undefined {
    return this.current.get(`${caId}/${scope}`);
  }

  /** Tells the publisher a certificate's status changed (this node); other nodes' changes arrive by polling. */
  statusChanged(issuerId: string, _serialHex: string, crlShard: number): void {
    const set = this.dirty.get(issuerId) ?? new Set<number>();
    set.add(crlShard);
    this.dirty.set(issuerId, set);
  }

  private url(caId: string, scope: string): string {
    return scope === 'full' ? this.o.urls.crl(caId, 0).replace(/\/0\.crl$/, '/full.crl') : scope === 'full-delta' ? this.o.urls.crl(caId, 0).replace(/\/0\.crl$/, '/full-delta.crl') : this.o.urls.crl(caId, Number(scope.slice(6)));
  }

  /** Builds, signs and stores one CRL of a scope; returns it. */
  async generate(caId: string, scope: string): Promise<CrlRecord> {
    const issuer = this.issuers.get(caId);
    if (!issuer?.signer) throw new Error(`no signing key for CA ${caId} on this node`);
    const now = this.o.clock.now();
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.o.validitySeconds * 1000);
    const entries: Buffer[] = [];
    let released: { serialHex: string; at: Date }[] = [];
    let baseCrlNumber: bigint | undefined;
    if (scope === 'full-delta') {
      // RFC 5280 §5.2.4: changes since the complete CRL it builds on.
      const base = await this.latest(caId, 'full');
      if (!base) throw new Error(`no complete CRL for ${caId} yet`);
      baseCrlNumber = base.crlNumber;
      const changes = await this.o.certificates.changedSince(caId, null, base.thisUpdate);
      encodeEntries(changes.revoked, entries);
      released = changes.released.map((serialHex) => ({ serialHex, at: thisUpdate }));
    } else {
      const shard = scope === 'full' ? null : Number(scope.slice(6));
      for await (const page of this.o.certificates.revokedEntries(caId, shard, { notAfterAfter: now })) encodeEntries(page, entries);
    }
    const crlNumber = await this.o.crls.nextCrlNumber(caId);
    const der = await signCrl(issuer.signer, entries, {
      crlNumber,
      thisUpdate,
      nextUpdate,
      // A shard names its URL in a critical IDP so relying parties know it covers only part of the CA (RFC 5280
      // §5.2.5). With one shard (a root's ARL) the CRL is complete for the CA and carries no IDP: OpenSSL's
      // -crl_check_all then also accepts it for the self-signed root, which has no distribution point.
      ...(scope.startsWith('shard-') && issuer.shards > 1 ? { distributionPointUrl: this.url(caId, scope) } : {}),
      ...(scope === 'full' ? { freshestUrl: this.url(caId, 'full-delta') } : {}),
      ...(baseCrlNumber !== undefined ? { baseCrlNumber, released } : {}),
    });
    const rec: CrlRecord = { caId, scope, crlNumber, baseCrlNumber: baseCrlNumber ?? null, thisUpdate, nextUpdate, entries: entries.length + released.length, der };
    await this.o.crls.insert(rec);
    this.remember(rec);
    return rec;
  }

  private remember(rec: CrlRecord): void {
    const k = `${rec.caId}/${rec.scope}`;
    const have = this.current.get(k);
    if (!have || have.crlNumber < rec.crlNumber) this.current.set(k, rec);
  }

  private async latest(caId: string, scope: string): Promise<CrlRecord | null> {
    const rec = await this.o.crls.latest(caId, scope);
    if (rec) this.remember(rec);
    return this.current.get(`${caId}/${scope}`) ?? rec;
  }

  /** Generates, keeping the last good CRL and auditing the failure when it fails. */
  private async safeGenerate(caId: string, scope: string): Promise<void> {
    try {
      await this.generate(caId, scope);
    } catch (err) {
      this.o.log?.({ level: 'error', msg: 'CRL generation failed; serving the last good CRL', ca: caId, scope, error: String((err as Error)?.message ?? err) });
      await this.o.audit.record('crl.generation_failed', 'trellis', { ca: caId, scope, error: String((err as Error)?.message ?? err) });
    }
  }

  /**
   * One pass: load what other nodes published, pick up status changes made on
   * other nodes, then regenerate what is dirty or past half its life.
   */
  async tick(): Promise<void> {
    const run = this.running.then(() => this.pass());
    this.running = run.catch(() => undefined);
    return run;
  }

  private async pass(): Promise<void> {
    const now = this.o.clock.now();
    for (const c of await this.o.certificates.statusChangedSince(this.polledAt, 10_000)) this.statusChanged(c.issuerId, c.serialHex, crlShardOf(c.serialHex, this.issuers.get(c.issuerId)?.shards ?? 1));
    this.polledAt = now;
    for (const issuer of this.issuers.values()) {
      for (const meta of await this.o.crls.latestAll(issuer.id)) {
        const have = this.current.get(`${issuer.id}/${meta.scope}`);
        if (!have || have.crlNumber < meta.crlNumber) await this.latest(issuer.id, meta.scope);
      }
      if (!issuer.signer) continue;
      const stale = (scope: string) => {
        const c = this.current.get(`${issuer.id}/${scope}`);
        return !c || now.getTime() >= c.thisUpdate.getTime() + (c.nextUpdate.getTime() - c.thisUpdate.getTime()) / 2;
      };
      const dirty = this.dirty.get(issuer.id) ?? new Set<number>();
      this.dirty.delete(issuer.id);
      for (let n = 0; n < issuer.shards; n++) if (dirty.has(n) || stale(`shard-${n}`)) await this.safeGenerate(issuer.id, `shard-${n}`);
      // The full CRL can be large: regenerate it on schedule, and after changes at most once per delay.
      const fullDue = stale('full') || (dirty.size > 0 && now.getTime() - (this.lastFull.get(issuer.id) ?? 0) >= this.o.delaySeconds * 1000);
      if (fullDue) {
        await this.safeGenerate(issuer.id, 'full');
        this.lastFull.set(issuer.id, now.getTime());
      }
      if (fullDue || dirty.size > 0 || stale('full-delta')) await this.safeGenerate(issuer.id, 'full-delta');
    }
  }

  /** Starts the schedule: a pass every few seconds, so changes show within `delaySeconds`. */
  start(): void {
    const every = Math.max(1, Math.min(5, Math.floor(this.o.delaySeconds / 4))) * 1000;
    this.timer = setInterval(() => void this.tick(), every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
