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
 *
 * Memory: the LRU holds each response packed in a fixed-size slot of a
 * shared slab (`PackedResponses`), not as an object with its own Buffer,
 * two Dates and an ETag string: ~3 KB of RSS per entry before, ~0.7 KB
 * packed (docs/performance.md, Memory). A hit copies the bytes out.
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
  /** `${issuerId}:${serialHex}:${hash}` → the entry's slot in `packed`, least recently used first. */
  private readonly lru = new Map<string, number>();
  private readonly packed = new PackedResponses();
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
    const c = presignable(req);
    return c ? this.presigned(ca, c) : this.live.answer(req, ca);
  }

  /** The LRU's fresh pre-signed response for the request, counted as a hit; undefined for anything else (nothing is loaded). */
  cached(req: OcspRequest, ca: ServedCa): OcspResult | undefined {
    const c = presignable(req);
    return c ? this.lruHit(ca, c, this.o.clock.now().getTime()) : undefined;
  }

  /** Drops every pre-signed response of a certificate (LRU and pending writes) after its status changed. */
  invalidate(issuerId: string, serialHex: string): void {
    const id = `${issuerId}:${serialHex}`;
    this.changes.note(id, this.o.clock.now().getTime());
    for (const h of hashes) this.lruDelete(`${id}:${h}`);
    this.writes.drop(id);
  }

  /** Forgets everything held (database rows are checked on load anyway). */
  clear(): void {
    this.changes.noteAll();
    this.lru.clear();
    this.packed.clear();
    this.writes.clear();
  }

  /** Puts a re-signed response in place of the one held for `key`, if one is held. */
  replace(key: string, e: PresignedResponse): void {
    const old = this.lru.get(key);
    if (old === undefined) return;
    const slot = this.packed.put(e);
    this.packed.free(old);
    // An entry too big for a slot is dropped: the next request loads it again.
    if (slot === undefined) this.lru.delete(key);
    // Map.set on a held key keeps its place in the LRU order, as before.
    else this.lru.set(key, slot);
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

  private lruHit(ca: ServedCa, c: CertId, nowMs: number): OcspResult | undefined {
    if (!this.lruUsable(nowMs)) return undefined;
    const key = `${ca.id}:${c.serialHex}:${c.hash}`;
    const slot = this.lru.get(key);
    if (slot === undefined || nowMs >= this.packed.staleAt(slot)) return undefined;
    this.lru.delete(key);
    this.lru.set(key, slot);
    this.counters.lruHits++;
    return this.packed.read(slot);
  }

  private async presigned(ca: ServedCa, c: CertId): Promise<OcspResult> {
    const nowMs = this.o.clock.now().getTime();
    const hit = this.lruHit(ca, c, nowMs);
    if (hit) return hit;
    const id = `${ca.id}:${c.serialHex}`;
    const key = `${id}:${c.hash}`;
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
    this.lruDelete(key);
    while (this.lru.size >= this.o.cacheEntries) this.lruDelete(this.lru.keys().next().value as string);
    const slot = this.packed.put(e);
    if (slot !== undefined) this.lru.set(key, slot);
  }

  private lruDelete(key: string): void {
    const slot = this.lru.get(key);
    if (slot === undefined) return;
    this.lru.delete(key);
    this.packed.free(slot);
  }
}

/** Slot sizes are multiples of this; a slot holds the header, the ETag and the DER. */
const slotUnit = 64;
/** Size classes 1..127 (64 B to 8 KiB): a slot handle is class × 2^24 + index, a small integer. */
const maxClass = 127;
const maxSlotsPerClass = 2 ** 24;
/** Slabs are about this big (at least one slot). */
const slabBytes = 64 * 1024;
/** thisUpdate, nextUpdate and staleAt (ms, float64), the DER length (uint16), the ETag length (uint8). */
const headerBytes = 8 + 8 + 8 + 2 + 1;

interface SlotClass {
  slotBytes: number;
  slotsPerSlab: number;
  slabs: Buffer[];
  /** Slots given back, reused first. */
  free: number[];
  /** Slots handed out so far, reused or not. */
  next: number;
}

/** The CertID of a request a pre-signed response answers (one certificate, no nonce, the CertID encoding every common client sends), else undefined. */
function presignable(req: OcspRequest): CertId | undefined {
  const c = req.certIds[0]!;
  return req.certIds.length === 1 && !req.nonce && c.canonical ? c : undefined;
}

/**
 * Pre-signed responses packed into fixed-size slots of shared slabs, one
 * free list per slot size. A slot is reused once freed, so `read` copies the
 * bytes out: a response being written to a socket never shares memory with
 * a slot. Responses over 8 KiB (with the ETag) are not held (`put` returns
 * undefined). Slabs stay allocated for reuse until `clear`: memory follows
 * the most entries ever held at once, which the LRU's capacity bounds.
 */
export class PackedResponses {
  private classes: (SlotClass | undefined)[] = [];

  /** Stores `e`; returns its slot, or undefined when it is too big to hold. */
  put(e: PresignedResponse): number | undefined {
    // ETags are ASCII (source.ts); anything else is not held rather than stored mangled.
    const etagBytes = Buffer.byteLength(e.etag, 'utf8');
    const bytes = headerBytes + etagBytes + e.der.length;
    const cls = Math.ceil(bytes / slotUnit);
    if (cls > maxClass || etagBytes > 255 || etagBytes !== e.etag.length) return undefined;
    const c = (this.classes[cls] ??= { slotBytes: cls * slotUnit, slotsPerSlab: Math.max(1, Math.floor(slabBytes / (cls * slotUnit))), slabs: [], free: [], next: 0 });
    let index = c.free.pop();
    if (index === undefined) {
      if (c.next >= maxSlotsPerClass) return undefined;
      index = c.next++;
      if (index >= c.slabs.length * c.slotsPerSlab) c.slabs.push(Buffer.alloc(c.slotsPerSlab * c.slotBytes));
    }
    const { slab, at } = this.locate(c, index);
    slab.writeDoubleLE(e.thisUpdate.getTime(), at);
    slab.writeDoubleLE(e.nextUpdate.getTime(), at + 8);
    slab.writeDoubleLE(e.staleAt, at + 16);
    slab.writeUInt16LE(e.der.length, at + 24);
    slab.writeUInt8(etagBytes, at + 26);
    slab.write(e.etag, at + headerBytes, 'latin1');
    e.der.copy(slab, at + headerBytes + etagBytes);
    return cls * maxSlotsPerClass + index;
  }

  /** When the response in `slot` stops being served (ms). */
  staleAt(slot: number): number {
    const { slab, at } = this.at(slot);
    return slab.readDoubleLE(at + 16);
  }

  /** The response in `slot`, its DER copied out of the slab. */
  read(slot: number): OcspResult {
    const { slab, at } = this.at(slot);
    const derBytes = slab.readUInt16LE(at + 24);
    const etagBytes = slab.readUInt8(at + 26);
    const from = at + headerBytes + etagBytes;
    const der = Buffer.allocUnsafe(derBytes);
    slab.copy(der, 0, from, from + derBytes);
    return {
      der,
      cache: { thisUpdate: new Date(slab.readDoubleLE(at)), nextUpdate: new Date(slab.readDoubleLE(at + 8)), etag: slab.toString('latin1', at + headerBytes, from) },
    };
  }

  /** Gives `slot` back for reuse. */
  free(slot: number): void {
    this.classes[Math.floor(slot / maxSlotsPerClass)]!.free.push(slot % maxSlotsPerClass);
  }

  /** Drops every slot and slab. */
  clear(): void {
    this.classes = [];
  }

  private at(slot: number): { slab: Buffer; at: number } {
    return this.locate(this.classes[Math.floor(slot / maxSlotsPerClass)]!, slot % maxSlotsPerClass);
  }

  private locate(c: SlotClass, index: number): { slab: Buffer; at: number } {
    return { slab: c.slabs[Math.floor(index / c.slotsPerSlab)]!, at: (index % c.slotsPerSlab) * c.slotBytes };
  }
}
