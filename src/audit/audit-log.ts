/** The tamper-evident audit log: every event is chained to the previous one by SHA-256. */
import { hash } from 'node:crypto';
import type { Clock } from '../clock/clock.js';
import type { AuditDraft, AuditRecord, AuditRepository } from './ports.js';

/** Hash of the chain's first link. */
export const genesisHash = '0'.repeat(64);

/** hash = SHA-256(prevHash | seq | at | type | actor | data) with fields separated by newlines. */
export function chainHash(prevHash: string, seq: number, draft: Omit<AuditDraft, 'data'>, dataJson: string): string {
  return hash('sha256', `${prevHash}\n${seq}\n${draft.at.toISOString()}\n${draft.type}\n${draft.actor}\n${dataJson}`, 'hex');
}

/** Appends events and checks the chain. Never give it key material. */
export class AuditLog {
  constructor(
    private readonly repo: AuditRepository,
    private readonly clock: Clock,
  ) {}

  /** Appends one event; returns the stored record. */
  async record(type: string, actor: string, data: Record<string, unknown>): Promise<AuditRecord> {
    const [rec] = await this.repo.append([{ at: this.clock.now(), type, actor, data }], chainHash);
    return rec!;
  }

  /** Appends several events atomically (hot path batches). */
  async recordMany(events: { type: string; actor: string; data: Record<string, unknown> }[]): Promise<void> {
    if (events.length === 0) return;
    const at = this.clock.now();
    await this.repo.append(events.map((e) => ({ at, ...e })), chainHash);
  }

  /**
   * Walks the whole chain; returns the first broken link (seq) or null when
   * every hash and back-link checks out.
   */
  async verify(pageSize = 1000): Promise<{ ok: true; events: number } | { ok: false; seq: number; reason: string }> {
    let prev = genesisHash;
    let expectSeq = 1;
    for (;;) {
      const page = await this.repo.range(expectSeq, pageSize);
      for (const r of page) {
        if (r.seq !== expectSeq) return { ok: false, seq: expectSeq, reason: 'missing event' };
        if (r.prevHash !== prev) return { ok: false, seq: r.seq, reason: 'back-link does not match the previous hash' };
        if (chainHash(prev, r.seq, r, r.data) !== r.hash) return { ok: false, seq: r.seq, reason: 'event was modified' };
        prev = r.hash;
        expectSeq++;
      }
      if (page.length < pageSize) return { ok: true, events: expectSeq - 1 };
    }
  }
}
