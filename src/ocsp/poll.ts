/**
 * Status changes made by other nodes (or the CLI) reach this node's cache
 * here: `poll` reads statusChangedSince and invalidates each change.
 */
import type { CertificateRepository } from '../ca/ports.js';
import type { Clock } from '../clock/clock.js';
import { maxLoadMs, type CachingSource } from './cache.js';
import type { Invalidations } from './invalidations.js';

/** statusChangedSince rows per page of a poll (default of `pageSize`). */
const defaultPollPage = 10_000;
/** Polls overlap by this much: a change committed while we read, or stamped by a node whose clock is a little behind, is seen next time. */
const pollOverlapMs = 2_000;

export interface PollOptions {
  certificates: Pick<CertificateRepository, 'statusChangedSince'>;
  clock: Clock;
  /** statusChangedSince rows per page (default 10,000). */
  pageSize?: number;
  log?: (e: Record<string, unknown>) => void;
}

/** The status poll of one node's cache. */
export class StatusPoller {
  /** `${issuerId}:${serialHex}:${atMs}` of changes already handled → atMs, kept for the overlap. */
  private readonly seen = new Map<string, number>();
  private polledAtMs: number;

  constructor(
    private readonly o: PollOptions,
    private readonly cache: Pick<CachingSource, 'capacity' | 'invalidate' | 'clear' | 'pollSucceeded'>,
    private readonly changes: Invalidations,
  ) {
    this.polledAtMs = o.clock.now().getTime();
  }

  /**
   * Reads status changes made anywhere since the last poll and invalidates
   * them, page by page: the store orders changes by time and never ends a
   * page inside a run of equal times, so the last time of a page is where
   * the next one starts, and no change is skipped. Only when one poll finds
   * more changes than the cache can hold is the cache cleared instead.
   */
  async poll(): Promise<void> {
    const startedMs = this.o.clock.now().getTime();
    const since = new Date(this.polledAtMs - pollOverlapMs);
    const pageSize = this.o.pageSize ?? defaultPollPage;
    let cursor = since;
    let read = 0;
    for (;;) {
      const rows = await this.o.certificates.statusChangedSince(cursor, pageSize);
      for (const r of rows) {
        const k = `${r.issuerId}:${r.serialHex}:${r.at.getTime()}`;
        if (this.seen.has(k)) continue; // already handled in the overlap of the previous poll
        this.seen.set(k, r.at.getTime());
        this.cache.invalidate(r.issuerId, r.serialHex);
      }
      read += rows.length;
      if (rows.length < pageSize) break;
      const last = rows[rows.length - 1]!.at;
      if (read > this.cache.capacity || last.getTime() <= cursor.getTime()) {
        // More changes than this node can hold answers for (clearing costs less
        // than reading on), or a store that does not order its pages: forget
        // everything held (database rows are checked on load anyway).
        this.o.log?.({ level: 'warn', msg: 'more OCSP status changes than the cache holds; clearing the cache', read, cacheEntries: this.cache.capacity });
        this.cache.clear();
        break;
      }
      cursor = last;
    }
    for (const [k, at] of this.seen) if (at <= since.getTime()) this.seen.delete(k);
    this.changes.forgetBefore(startedMs - 2 * maxLoadMs);
    this.polledAtMs = startedMs;
    this.cache.pollSucceeded(startedMs);
  }
}
