/**
 * Pre-signed responses on their way to the database, written in batches (at
 * 256 pending or after 100 ms). A row whose certificate changed status after
 * it was signed is dropped, never written.
 */
import type { Invalidations } from './invalidations.js';
import type { OcspResponseRepository, StoredOcspResponse } from './ports.js';

const maxPendingWrites = 20_000;

export interface PendingWritesOptions {
  /** Without it nothing is written (and nothing is kept). */
  responses?: OcspResponseRepository;
  log?: (e: Record<string, unknown>) => void;
}

/** The write queue of one responder; see the module comment. */
export class PendingWrites {
  /** `${issuerId}:${serialHex}` → the row, and the invalidation mark taken when its load began. */
  private readonly pending = new Map<string, { row: StoredOcspResponse; start: number }>();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly o: PendingWritesOptions,
    private readonly changes: Invalidations,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** Queues the row of certificate `id`, signed by a load that began at invalidation mark `start`. */
  enqueue(id: string, row: StoredOcspResponse, start: number): void {
    if (this.closed || this.pending.size >= maxPendingWrites) return; // closing, or the database is behind: the row is signed again next time
    this.pending.set(id, { row, start });
    if (this.pending.size >= 256) void this.flush();
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => void this.flush(), 100);
      this.flushTimer.unref();
    }
  }

  /** Drops the pending row of certificate `id` (its status changed). */
  drop(id: string): void {
    this.pending.delete(id);
  }

  /** Drops every pending row. */
  clear(): void {
    this.pending.clear();
  }

  /** Writes pending pre-signed responses to the database (batched; a row whose certificate changed meanwhile is dropped). */
  flush(): Promise<void> {
    this.stopTimer();
    const repo = this.o.responses;
    if (!repo || this.pending.size === 0) return this.flushing;
    const batch = [...this.pending].filter(([id, p]) => !this.changes.changedSince(id, p.start)).map(([, p]) => p.row);
    this.pending.clear();
    this.flushing = this.flushing.then(async () => {
      try {
        await repo.putMany(batch);
      } catch (err) {
        // Only a cache: the responses are signed again on the next miss.
        this.o.log?.({ level: 'warn', msg: 'OCSP pre-signed responses not stored', count: batch.length, error: String(err) });
      }
    });
    return this.flushing;
  }

  /** Stops the batch timer (what is pending stays until `flush`). */
  stopTimer(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }

  /** Writes what is pending and accepts nothing more. */
  close(): Promise<void> {
    const last = this.flush();
    this.closed = true;
    return last;
  }
}
