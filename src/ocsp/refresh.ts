/**
 * Keeps the database's pre-signed responses fresh: rows that reach half-life
 * before the next run are re-signed with the current status, so a client
 * never waits for a signature on a certificate that is asked about.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { CertificateRepository } from '../ca/ports.js';
import type { Clock } from '../clock/clock.js';
import type { CachingSource } from './cache.js';
import type { Invalidations } from './invalidations.js';
import { toStatus, type LiveSource } from './live.js';
import type { OcspResponseRepository, StoredOcspResponse } from './ports.js';
import { encodeCertId } from './request.js';
import type { ServedCa } from './source.js';

export interface RefreshOptions {
  certificates: Pick<CertificateRepository, 'statusOf'>;
  responses: OcspResponseRepository;
  clock: Clock;
  /** nextUpdate − thisUpdate of good and revoked responses. */
  validitySeconds: number;
  /** How often the refresh runs. */
  refreshSeconds: number;
  /** Rows per refresh batch. */
  refreshBatch: number;
}

/** The refresh of one node; any number of nodes may run it (a row refreshed twice is harmless). */
export class Refresher {
  private running = false;
  #refreshed = 0;

  constructor(
    private readonly o: RefreshOptions,
    private readonly caOf: (id: string) => ServedCa | undefined,
    private readonly live: LiveSource,
    private readonly cache: CachingSource,
    private readonly changes: Invalidations,
  ) {}

  /** Rows re-signed since start. */
  get refreshed(): number {
    return this.#refreshed;
  }

  /**
   * Re-signs one batch of database rows that reach half-life before the next
   * run, with the current status; rows of expired or never-issued
   * certificates are deleted. Returns how many rows were due.
   */
  async refresh(): Promise<number> {
    const repo = this.o.responses;
    const nowMs = this.o.clock.now().getTime();
    const refreshMs = this.o.refreshSeconds * 1000;
    const due = await repo.expiring(new Date(nowMs + (this.o.validitySeconds * 1000) / 2 + 2 * refreshMs), this.o.refreshBatch);
    const puts: StoredOcspResponse[] = [];
    let n = 0;
    for (const d of due) {
      if (++n % 32 === 0) await yieldToLoop(); // keep the event loop answering requests
      const ca = this.caOf(d.issuerId);
      if (!ca) continue; // a CA this node does not serve
      const id = `${d.issuerId}:${d.serialHex}`;
      const start = this.changes.mark();
      const row = await this.o.certificates.statusOf(d.issuerId, d.serialHex);
      if (!row || toStatus(row).status === 'unknown' || row.notAfter.getTime() <= nowMs) {
        await repo.delete(d.issuerId, d.serialHex);
        continue;
      }
      const h = ca.hashes.sha1;
      const e = await this.live.single(ca, { der: encodeCertId('sha1', h.issuerNameHash, h.issuerKeyHash, d.serialHex), serialHex: d.serialHex, hash: 'sha1' }, row, nowMs);
      if (this.changes.changedSince(id, start)) continue;
      puts.push({ issuerId: d.issuerId, serialHex: d.serialHex, der: e.der, thisUpdate: e.thisUpdate, nextUpdate: e.nextUpdate });
      this.cache.replace(`${id}:sha1`, e);
    }
    await repo.putMany(puts);
    this.#refreshed += puts.length;
    return due.length;
  }

  /** Drains what is due, a batch at a time, within one interval; a run while one is under way does nothing. */
  async refreshAll(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const until = this.o.clock.now().getTime() + this.o.refreshSeconds * 1000;
      while ((await this.refresh()) >= this.o.refreshBatch && this.o.clock.now().getTime() < until);
    } finally {
      this.running = false;
    }
  }
}
