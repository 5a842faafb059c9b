/**
 * The caching layer (RFC 5019 profile). A request for one certificate,
 * without a nonce and with the CertID encoding every common client sends
 * (the RFC 5019 case, and every GET), is answered from a pre-signed
 * response: a bounded in-memory LRU first, then the database
 * (OcspResponseRepository, SHA-1 CertIDs only), else the live source signs
 * it now and it is written to the database in the background. Every other
 * request goes to the live source as it is.
 *
 * Freshness: a pre-signed response is served until half of its validity has
 * passed. A status change drops the certificate's entries (`invalidate`). A
 * database row is only ever served after checking that its status is still
 * the stored one, so a row written by a slow node just before a revocation
 * cannot come back. While the status poll runs (`watch`), the LRU is
 * bypassed when its last success is older than `maxStalenessMs`.
 */
import type { CertificateRepository } from '../ca/ports.js';
import type { Clock } from '../clock/clock.js';
import type { Invalidations } from './invalidations.js';
import { toStatus, type LiveSource } from './live.js';
import type { OcspResponseRepository, StoredOcspResponse } from './ports.js';
import type { CertId, CertIdHash, OcspRequest } from './request.js';
import { readResponseSummary, sameStatus, type SingleStatus } from './response.js';
import { presignedOf, type OcspResult, type OcspSource, type PresignedResponse, type ServedCa } from './source.js';
import type { PendingWrites } from './writes.js';

const hashes: readonly CertIdHash[] = ['sha1', 'sha256'];
/** A load that takes longer than this is not cached (its invalidation record may be gone). */
export const maxLoadMs = 60_000;

export interface CacheOptions {
  certificates: Pick<CertificateRepository, 'statusOf'>;
  /** Pre-signed responses shared by every node; without it only the in-memory LRU holds them. */
  responses?: OcspResponseRepository;
  clock: Clock;
  /** Entries of the in-memory LRU. */
  cacheEntries: number;
  /** While watched, the LRU is bypassed when the last successful poll is older than this. */
  maxStalenessMs: number;
  log?: (e: Record<string, unknown>) => void;
}

/** What the cache passes on to: the live source (live.ts). */
export type CacheNext = Pick<LiveSource, 'answer' | 'single'>;

/** The pre-signed responses of one node; see the module comment. */
export class CachingSource implements OcspSource {
  /** `${issuerId}:${serialHex}:${hash}` → entry, least recently used first. */
  private readonly lru = new Map<string, PresignedResponse>();
  private readonly inflight = new Map<string, { start: number; p: Promise<PresignedResponse> }>();
  private polling = false;
  private lastPollOkMs: number | null = null;
  readonly counters = { lruHits: 0, dbHits: 0 };

  constructor(
    private readonly o: CacheOptions,
    private readonly live: CacheNext,
    private readonly changes: Invalidations,
    private readonly writes: PendingWrites,
  ) {}

  get size(): number {
    return this.lru.size;
  }

  get capacity(): number {
    return this.o.cacheEntries;
  }

  /** When the status poll last succeeded (null before `watch`). */
  get lastPollOk(): Date | null {
    return this.lastPollOkMs === null ? null : new Date(this.lastPollOkMs);
  }

  answer(req: OcspRequest, ca: ServedCa): Promise<OcspResult> {
    const c = req.certIds[0]!;
    if (req.certIds.length === 1 && !req.nonce && c.canonical) return this.presigned(ca, c);
    return this.live.answer(req, ca);
  }

  /** Drops every pre-signed response of a certificate (LRU and pending writes) after its status changed. */
  invalidate(issuerId: string, serialHex: string): void {
    const id = `${issuerId}:${serialHex}`;
    this.changes.note(id, this.o.clock.now().getTime());
    for (const h of hashes) this.lru.delete(`${id}:${h}`);
    this.writes.drop(id);
  }

  /** Forgets everything held (database rows are checked on load anyway). */
  clear(): void {
    this.changes.noteAll();
    this.lru.clear();
    this.writes.clear();
  }

  /** Puts a re-signed response in place of the one held for `key`, if one is held. */
  replace(key: string, e: PresignedResponse): void {
    if (this.lru.has(key)) this.lru.set(key, e);
  }

  /** The status poll starts now: from here on the LRU is used only while polls succeed. */
  watch(nowMs: number): void {
    this.polling = true;
    // Until the first poll the LRU is empty anyway; count the start as a successful poll.
    this.lastPollOkMs = nowMs;
  }

  /** The status poll stopped: the LRU is used without it. */
  unwatch(): void {
    this.polling = false;
  }

  /** A poll that started at `startedMs` has invalidated every change since the previous one. */
  pollSucceeded(startedMs: number): void {
    this.lastPollOkMs = startedMs;
  }

  private lruUsable(nowMs: number): boolean {
    return !this.polling || (this.lastPollOkMs !== null && nowMs - this.lastPollOkMs <= this.o.maxStalenessMs);
  }

  private async presigned(ca: ServedCa, c: CertId): Promise<OcspResult> {
    const id = `${ca.id}:${c.serialHex}`;
    const key = `${id}:${c.hash}`;
    const nowMs = this.o.clock.now().getTime();
    const usable = this.lruUsable(nowMs);
    if (usable) {
      const hit = this.lru.get(key);
      if (hit && nowMs < hit.staleAt) {
        this.lru.delete(key);
        this.lru.set(key, hit);
        this.counters.lruHits++;
        return { der: hit.der, cache: { thisUpdate: hit.thisUpdate, nextUpdate: hit.nextUpdate, etag: hit.etag } };
      }
    }
    const e = await this.loadShared(ca, c, id, key, nowMs);
    return { der: e.der, cache: { thisUpdate: e.thisUpdate, nextUpdate: e.nextUpdate, etag: e.etag } };
  }

  /** Concurrent misses for one certificate share one load, unless it began before an invalidation. */
  private loadShared(ca: ServedCa, c: CertId, id: string, key: string, nowMs: number): Promise<PresignedResponse> {
    const running = this.inflight.get(key);
    if (running && !this.changes.changedSince(id, running.start)) return running.p;
    const start = this.changes.mark();
    const p = this.load(ca, c, id, key, start, nowMs).finally(() => {
      if (this.inflight.get(key)?.p === p) this.inflight.delete(key);
    });
    this.inflight.set(key, { start, p });
    return p;
  }

  private async load(ca: ServedCa, c: CertId, id: string, key: string, start: number, nowMs: number): Promise<PresignedResponse> {
    // RFC 5019 §2.1.1: clients use SHA-1 CertIDs, so those are the ones worth sharing between nodes.
    const repo = c.hash === 'sha1' ? this.o.responses : undefined;
    const [row, statusRow] = await Promise.all([repo ? repo.get(ca.id, c.serialHex) : null, this.o.certificates.statusOf(ca.id, c.serialHex)]);
    const status = toStatus(statusRow);
    let entry = row ? this.fromRow(row, status, c.hash, nowMs) : null;
    if (entry) this.counters.dbHits++;
    else {
      entry = await this.live.single(ca, c, statusRow, nowMs);
      if (repo && status.status !== 'unknown') this.writes.enqueue(id, { issuerId: ca.id, serialHex: c.serialHex, der: entry.der, thisUpdate: entry.thisUpdate, nextUpdate: entry.nextUpdate }, start);
    }
    const doneMs = this.o.clock.now().getTime();
    if (!this.changes.changedSince(id, start) && doneMs - nowMs < maxLoadMs && this.lruUsable(doneMs)) this.lruSet(key, entry);
    return entry;
  }

  /** A stored row is used only while fresh and while it still says what the store says. */
  private fromRow(row: StoredOcspResponse, status: SingleStatus, hash: CertIdHash, nowMs: number): PresignedResponse | null {
    const staleAt = (row.thisUpdate.getTime() + row.nextUpdate.getTime()) / 2;
    if (nowMs >= staleAt) return null;
    try {
      if (!sameStatus(readResponseSummary(row.der).status, status)) return null;
    } catch (err) {
      this.o.log?.({ level: 'warn', msg: 'unreadable pre-signed OCSP response; signing a new one', issuerId: row.issuerId, serialHex: row.serialHex, error: String(err) });
      return null;
    }
    return presignedOf(row.der, row.thisUpdate, row.nextUpdate, hash);
  }

  private lruSet(key: string, e: PresignedResponse): void {
    this.lru.delete(key);
    while (this.lru.size >= this.o.cacheEntries) this.lru.delete(this.lru.keys().next().value as string);
    this.lru.set(key, e);
  }
}
