/**
 * The OCSP responder (RFC 6960, RFC 5019 profile). Responses are signed by
 * each issuing CA's delegated responder certificate.
 *
 * Fast path: a request for one certificate, without a nonce and with the
 * CertID encoding every common client sends (the RFC 5019 case, and every
 * GET), is answered from a pre-signed response: a bounded in-memory LRU
 * first, then the database (OcspResponseRepository, SHA-1 CertIDs only),
 * else it is signed now and written to the database in the background.
 * Everything else (nonce, several certificates, other encodings) is signed
 * live.
 *
 * Freshness: a pre-signed response is served until half of its validity has
 * passed, and the refresh loop re-signs database rows before then. A status
 * change drops the certificate's entries at once on the node that made it
 * (`invalidate`, called by the RevocationAuthority) and within `pollSeconds`
 * on every other node (`poll` over statusChangedSince). A database row is
 * only ever served after checking that its status is still the stored one,
 * so a row written by a slow node just before a revocation cannot come back.
 * If polling fails for `maxStalenessSeconds`, the LRU is bypassed until it
 * works again.
 */
import { createHash } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { ResponderMaterial } from '../ca/held-keys.js';
import type { CertificateRepository, CertificateStatusRow } from '../ca/ports.js';
import type { Clock } from '../clock/clock.js';
import { lintFindingsOf } from '../lint/index.js';
import type { OcspExpectations } from '../lint/ocsp.js';
import { children, readOid, readOne, Tag } from '../pki/der.js';
import { findExtension, parseCertificate } from '../pki/certificate.js';
import { OID } from '../pki/oids.js';
import type { OcspResponseRepository, StoredOcspResponse } from './ports.js';
import { encodeCertId, hashOids, issuerHashes, MalformedOcspRequest, parseOcspRequest, type CertId, type CertIdHash, type OcspRequest } from './request.js';
import { errorResponse, readResponseSummary, sameStatus, signedResponse, type ErrorStatusName, type ResponderSigner, type SingleResponseInput, type SingleStatus } from './response.js';

/** An issuing CA this responder answers for, with its delegated responder. */
export interface ResponderCa {
  id: string;
  /** The issuing CA's subject Name DER and subjectPublicKey bits, for the CertID hashes. */
  subjectDer: Buffer;
  subjectPublicKey: Buffer;
  signer: ResponderSigner;
}


/** RFC 5019 §6 caching facts of a cacheable response, for the HTTP layer. */
export interface CacheInfo {
  thisUpdate: Date;
  nextUpdate: Date;
  /** Strong ETag (quoted) of the response DER. */
  etag: string;
}

export interface OcspResult {
  der: Buffer;
  /** Set for a pre-signed (single CertID, no nonce, successful) response; null when it must not be cached. */
  cache: CacheInfo | null;
}

export interface ResponderOptions {
  certificates: Pick<CertificateRepository, 'statusOf' | 'statusChangedSince'>;
  /** Pre-signed responses shared by every node; without it only the in-memory LRU holds them. */
  responses?: OcspResponseRepository;
  clock: Clock;
  /** nextUpdate − thisUpdate of good and revoked responses (RFC 5019 §4: hours to days). */
  validitySeconds: number;
  /** Validity of `unknown` responses, which are never stored (default min(validitySeconds, 300)). */
  unknownValiditySeconds?: number;
  /** How often statusChangedSince is polled (other nodes' revocations). */
  pollSeconds: number;
  /** The LRU is bypassed when the last successful poll is older than this (default max(5, 5 × pollSeconds)). */
  maxStalenessSeconds?: number;
  /** How often the refresh loop re-signs database rows nearing half-life (default 60). */
  refreshSeconds?: number;
  /** Rows per refresh batch (default 500). */
  refreshBatch?: number;
  /** Entries of the in-memory LRU (default 50,000; about 1 KiB each). */
  cacheEntries?: number;
  /**
   * statusChangedSince rows per page (default 10,000). A poll reads pages
   * until it has every change; only when one poll finds more changes than the
   * LRU can hold is the LRU cleared instead.
   */
  pollPageSize?: number;
  log?: (e: Record<string, unknown>) => void;
  /**
   * Where a response that fails its pre-signing lint is audited
   * (`ocsp.lint_failed`, at most once a minute per CA: a fault would otherwise
   * write one event per request). Without it the failure is only logged.
   */
  audit?: { record(type: string, actor: string, data: Record<string, unknown>): Promise<unknown> };
}

/** Counters since start, for tests, benchmarks and health output. */
export interface ResponderStats {
  lruEntries: number;
  lruHits: number;
  dbHits: number;
  signed: number;
  pendingWrites: number;
  refreshed: number;
  invalidations: number;
  errors: number;
  lastPollOk: Date | null;
}

interface Entry {
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  /** Served until here (ms): half of the validity, so the replacement exists well before nextUpdate (RFC 5019 §6.1). */
  staleAt: number;
  etag: string;
  hash: CertIdHash;
}

interface CaState extends ResponderCa {
  hashes: Record<CertIdHash, { issuerNameHash: Buffer; issuerKeyHash: Buffer }>;
  /** The responder certificate's notAfter: no response outlives it. */
  signerNotAfter: Date;
  /** What the lint checks every response of this CA against (src/lint/ocsp.ts), from its certificates. */
  lint: Pick<OcspExpectations, 'responderKeyHash' | 'issuerHashes'>;
}

const hashes: readonly CertIdHash[] = ['sha1', 'sha256'];
/** statusChangedSince rows per page of a poll (default of `pollPageSize`). */
const defaultPollPage = 10_000;
/** Polls overlap by this much: a change committed while we read, or stamped by a node whose clock is a little behind, is seen next time. */
const pollOverlapMs = 2_000;
/** A load that takes longer than this is not cached (its invalidation record may be gone). */
const maxLoadMs = 60_000;
const maxPendingWrites = 20_000;

const toStatus = (row: CertificateStatusRow | null): SingleStatus => {
  if (!row) return { status: 'unknown' };
  switch (row.status) {
    case 'valid':
      return { status: 'good' };
    case 'revoked':
      // revokedAt is always set with status revoked (store invariant); epoch only if a row breaks it.
      return { status: 'revoked', revokedAt: row.revokedAt ?? new Date(0), reason: row.revocationReason };
    case 'pending':
    case 'failed':
      // RFC 6960 §2.2: never issued (or not yet), so unknown.
      return { status: 'unknown' };
  }
};

/**
 * A long-lived copy outside Node's 8 KiB allocation pool: a small Buffer made
 * by Buffer.concat is a slice of a shared slab, and holding it in the LRU
 * would keep the whole slab alive (measured with 50,000 entries: 391 MiB of
 * ArrayBuffers instead of 34 MiB, RSS 535 MiB instead of 195 MiB).
 */
function own(b: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(b.length);
  b.copy(copy);
  return copy;
}

const etagOf = (der: Buffer): string => `"${createHash('sha256').update(der).digest('base64url').slice(0, 27)}"`;
const floorSecond = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);

class ResponderUnavailable extends Error {}

/** The OCSP responder of a node; see the module comment for the caching rules. */
export class OcspResponder {
  private readonly byHashes = new Map<string, CaState>();
  private readonly byId = new Map<string, CaState>();
  /** `${issuerId}:${serialHex}:${hash}` → entry, least recently used first. */
  private readonly lru = new Map<string, Entry>();
  private readonly inflight = new Map<string, { start: number; p: Promise<Entry> }>();
  /** Invalidation sequence: loads that started before an invalidation of their certificate are not cached. */
  private seq = 0;
  private clearedSeq = 0;
  private readonly changed = new Map<string, { seq: number; atMs: number }>();
  private readonly pending = new Map<string, { row: StoredOcspResponse; start: number }>();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly seen = new Map<string, number>();
  private polledAtMs: number;
  private lastPollOkMs: number | null = null;
  private polling = false;
  private pollRunning = false;
  private closed = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing = false;
  /** Per CA: when a lint failure was last audited, and how many since were not. */
  private readonly lintAudited = new Map<string, { atMs: number; suppressed: number }>();
  private readonly counters = { lruHits: 0, dbHits: 0, signed: 0, refreshed: 0, invalidations: 0, errors: 0 };
  private readonly maxEntries: number;
  private readonly unknownValiditySeconds: number;
  private readonly maxStalenessMs: number;

  constructor(private readonly o: ResponderOptions) {
    if (!(o.validitySeconds >= 60)) throw new RangeError('validitySeconds must be at least 60');
    this.polledAtMs = o.clock.now().getTime();
    this.maxEntries = o.cacheEntries ?? 50_000;
    this.unknownValiditySeconds = o.unknownValiditySeconds ?? Math.min(o.validitySeconds, 300);
    this.maxStalenessMs = (o.maxStalenessSeconds ?? Math.max(5, 5 * o.pollSeconds)) * 1000;
  }

  /**
   * Adds a CA, or replaces its responder after a renewal. Responses signed by
   * the previous responder stay valid until their nextUpdate (never past that
   * certificate's notAfter) and keep being served until half-life.
   * Throws when the responder certificate was not issued by the CA or lacks id-kp-OCSPSigning.
   */
  setCa(ca: ResponderCa): void {
    const cert = parseCertificate(ca.signer.certDer);
    // RFC 6960 §4.2.2.2: the CA itself may sign (a CA whose key may no longer certify a new responder, ca/held-keys.ts).
    const caItself = cert.subjectDer.equals(ca.subjectDer) && cert.subjectPublicKey.equals(ca.subjectPublicKey);
    if (!caItself && !cert.issuerDer.equals(ca.subjectDer)) throw new RangeError(`the OCSP responder certificate of ${ca.id} was not issued by that CA (RFC 6960 §4.2.2.2)`);
    const eku = findExtension(cert, OID.extKeyUsage);
    // Only a delegated responder needs id-kp-OCSPSigning.
    if (!caItself && (!eku || !children(readOne(eku.valueDer, Tag.SEQUENCE)).some((t) => readOid(t) === OID.OCSPSigning))) throw new RangeError(`the OCSP responder certificate of ${ca.id} lacks id-kp-OCSPSigning`);
    const byHash = { sha1: issuerHashes('sha1', ca.subjectDer, ca.subjectPublicKey), sha256: issuerHashes('sha256', ca.subjectDer, ca.subjectPublicKey) };
    const state: CaState = {
      ...ca,
      hashes: byHash,
      signerNotAfter: cert.notAfter,
      // The ResponderID from the responder certificate itself, not from the signer that writes it.
      lint: { responderKeyHash: createHash('sha1').update(cert.subjectPublicKey).digest(), issuerHashes: { [hashOids.sha1]: byHash.sha1, [hashOids.sha256]: byHash.sha256 } },
    };
    for (const h of hashes) this.byHashes.set(`${h}:${state.hashes[h].issuerNameHash.toString('hex')}:${state.hashes[h].issuerKeyHash.toString('hex')}`, state);
    this.byId.set(ca.id, state);
  }

  /** `setCa` from what `currentResponder` (ca/held-keys.ts) returns: the issuing CA and its responder's signer. */
  setResponder(m: Pick<ResponderMaterial, 'issuer' | 'signer'>): void {
    this.setCa({ id: m.issuer.id, subjectDer: m.issuer.cert.subjectDer, subjectPublicKey: m.issuer.cert.subjectPublicKey, signer: m.signer });
  }

  /**
   * Drops every pre-signed response of a certificate on this node (LRU and
   * pending writes) after its status changed; the next request reads the new
   * status. Other nodes learn of it through `poll`.
   */
  invalidate(issuerId: string, serialHex: string): void {
    const id = `${issuerId}:${serialHex}`;
    this.seq++;
    this.counters.invalidations++;
    this.changed.set(id, { seq: this.seq, atMs: this.o.clock.now().getTime() });
    for (const h of hashes) this.lru.delete(`${id}:${h}`);
    this.pending.delete(id);
  }

  /** RevocationListener (src/ra/revoke.ts): the same as `invalidate`. */
  statusChanged(issuerId: string, serialHex: string): void {
    this.invalidate(issuerId, serialHex);
  }

  /** Answers any request body with an OCSPResponse DER, plus caching facts. Never throws. */
  async answer(requestDer: Buffer): Promise<OcspResult> {
    let req: OcspRequest;
    try {
      req = parseOcspRequest(requestDer);
    } catch (err) {
      if (err instanceof MalformedOcspRequest) return { der: errorResponse('malformedRequest'), cache: null };
      return this.failed(err);
    }
    try {
      const ca = this.caFor(req.certIds);
      // RFC 6960 §2.3: we are not the responder for this issuer. One response has one signer, so every CertID needs the same CA.
      if (!ca) return { der: errorResponse('unauthorized'), cache: null };
      const c = req.certIds[0]!;
      if (req.certIds.length === 1 && !req.nonce && c.canonical) {
        const e = await this.presigned(ca, c);
        return { der: e.der, cache: { thisUpdate: e.thisUpdate, nextUpdate: e.nextUpdate, etag: e.etag } };
      }
      return { der: await this.live(ca, req), cache: null };
    } catch (err) {
      return this.failed(err);
    }
  }

  /** The OCSPResponse DER for a request body (see `answer`). Never throws. */
  async respond(requestDer: Buffer): Promise<Buffer> {
    return (await this.answer(requestDer)).der;
  }

  private failed(err: unknown): OcspResult {
    const status: ErrorStatusName = err instanceof ResponderUnavailable ? 'tryLater' : 'internalError';
    this.counters.errors++;
    this.o.log?.({ level: 'error', msg: `OCSP ${status}`, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    return { der: errorResponse(status), cache: null };
  }

  private caFor(certIds: CertId[]): CaState | undefined {
    let ca: CaState | undefined;
    for (const c of certIds) {
      const x = this.byHashes.get(`${c.hash}:${c.issuerNameHash.toString('hex')}:${c.issuerKeyHash.toString('hex')}`);
      if (!x || (ca && x !== ca)) return undefined;
      ca = x;
    }
    return ca;
  }

  private lruUsable(nowMs: number): boolean {
    return !this.polling || (this.lastPollOkMs !== null && nowMs - this.lastPollOkMs <= this.maxStalenessMs);
  }

  private changedSince(id: string, start: number): boolean {
    return this.clearedSeq > start || (this.changed.get(id)?.seq ?? 0) > start;
  }

  private async presigned(ca: CaState, c: CertId): Promise<Entry> {
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
        return hit;
      }
    }
    // Concurrent misses for one certificate share one load, unless it began before an invalidation.
    const running = this.inflight.get(key);
    if (running && !this.changedSince(id, running.start)) return running.p;
    const start = this.seq;
    const p = this.load(ca, c, id, key, start, nowMs).finally(() => {
      if (this.inflight.get(key)?.p === p) this.inflight.delete(key);
    });
    this.inflight.set(key, { start, p });
    return p;
  }

  private async load(ca: CaState, c: CertId, id: string, key: string, start: number, nowMs: number): Promise<Entry> {
    // RFC 5019 §2.1.1: clients use SHA-1 CertIDs, so those are the ones worth sharing between nodes.
    const repo = c.hash === 'sha1' ? this.o.responses : undefined;
    const [row, statusRow] = await Promise.all([repo ? repo.get(ca.id, c.serialHex) : null, this.o.certificates.statusOf(ca.id, c.serialHex)]);
    const status = toStatus(statusRow);
    let entry = row ? this.fromRow(row, status, c.hash, nowMs) : null;
    if (entry) this.counters.dbHits++;
    else {
      entry = await this.signOne(ca, c.der, { serialHex: c.serialHex, record: statusRow }, status, c.hash, nowMs);
      if (repo && status.status !== 'unknown') this.enqueueWrite(id, { issuerId: ca.id, serialHex: c.serialHex, der: entry.der, thisUpdate: entry.thisUpdate, nextUpdate: entry.nextUpdate }, start);
    }
    const doneMs = this.o.clock.now().getTime();
    if (!this.changedSince(id, start) && doneMs - nowMs < maxLoadMs && this.lruUsable(doneMs)) this.lruSet(key, entry);
    return entry;
  }

  /** A stored row is used only while fresh and while it still says what the store says. */
  private fromRow(row: StoredOcspResponse, status: SingleStatus, hash: CertIdHash, nowMs: number): Entry | null {
    const staleAt = (row.thisUpdate.getTime() + row.nextUpdate.getTime()) / 2;
    if (nowMs >= staleAt) return null;
    try {
      if (!sameStatus(readResponseSummary(row.der).status, status)) return null;
    } catch (err) {
      this.o.log?.({ level: 'warn', msg: 'unreadable pre-signed OCSP response; signing a new one', issuerId: row.issuerId, serialHex: row.serialHex, error: String(err) });
      return null;
    }
    return { der: own(row.der), thisUpdate: row.thisUpdate, nextUpdate: row.nextUpdate, staleAt, etag: etagOf(row.der), hash };
  }

  private times(ca: CaState, nowMs: number, status: SingleStatus): { thisUpdate: Date; nextUpdate: Date } {
    if (nowMs >= ca.signerNotAfter.getTime() - 1000) throw new ResponderUnavailable(`the OCSP responder certificate of ${ca.id} has expired; renew it`);
    const thisUpdate = floorSecond(nowMs);
    const seconds = status.status === 'unknown' ? this.unknownValiditySeconds : this.o.validitySeconds;
    // A response never outlives the certificate that signs it.
    const nextUpdate = floorSecond(Math.min(thisUpdate.getTime() + seconds * 1000, ca.signerNotAfter.getTime()));
    return { thisUpdate, nextUpdate };
  }

  /** What the lint expects of a response of `ca` signed at `nowMs` about these certificates. */
  private expectations(ca: CaState, nowMs: number, singles: OcspExpectations['singles']): OcspExpectations {
    return { ...ca.lint, now: new Date(nowMs), singles, maxValiditySeconds: this.o.validitySeconds };
  }

  /** Signs through the lint; a lint failure is audited (at most once a minute per CA) and rethrown. */
  private async sign(ca: CaState, producedAt: Date, singles: SingleResponseInput[], nonce: Buffer | null, expect: OcspExpectations): Promise<Buffer> {
    try {
      return await signedResponse(ca.signer, producedAt, singles, nonce, expect);
    } catch (err) {
      const findings = lintFindingsOf(err);
      if (findings) await this.auditLintFailure(ca, expect, findings.map((f) => f.id), (err as Error).message);
      throw err;
    }
  }

  private async auditLintFailure(ca: CaState, expect: OcspExpectations, lint: string[], error: string): Promise<void> {
    const nowMs = expect.now.getTime();
    const last = this.lintAudited.get(ca.id);
    if (last && nowMs - last.atMs < 60_000) {
      last.suppressed++;
      return;
    }
    this.lintAudited.set(ca.id, { atMs: nowMs, suppressed: 0 });
    try {
      await this.o.audit?.record('ocsp.lint_failed', 'trellis', { ca: ca.id, serials: expect.singles.map((x) => x.serialHex), lint, error, suppressedBefore: last?.suppressed ?? 0 });
    } catch (auditErr) {
      this.o.log?.({ level: 'error', msg: 'audit event for an OCSP lint failure could not be written', error: String(auditErr) });
    }
  }

  private async signOne(ca: CaState, certIdDer: Buffer, single: OcspExpectations['singles'][number], status: SingleStatus, hash: CertIdHash, nowMs: number): Promise<Entry> {
    const { thisUpdate, nextUpdate } = this.times(ca, nowMs, status);
    const der = own(await this.sign(ca, thisUpdate, [{ certIdDer, status, thisUpdate, nextUpdate }], null, this.expectations(ca, nowMs, [single])));
    this.counters.signed++;
    return { der, thisUpdate, nextUpdate, staleAt: (thisUpdate.getTime() + nextUpdate.getTime()) / 2, etag: etagOf(der), hash };
  }

  /** Nonce or several CertIDs: read every status and sign now (RFC 8954: a nonce response is never reused). */
  private async live(ca: CaState, req: OcspRequest): Promise<Buffer> {
    const nowMs = this.o.clock.now().getTime();
    const rows = await Promise.all(req.certIds.map((c) => this.o.certificates.statusOf(ca.id, c.serialHex)));
    const singles: SingleResponseInput[] = req.certIds.map((c, i) => {
      const status = toStatus(rows[i]!);
      return { certIdDer: c.der, status, ...this.times(ca, nowMs, status) };
    });
    const der = await this.sign(ca, floorSecond(nowMs), singles, req.nonce, this.expectations(ca, nowMs, req.certIds.map((c, i) => ({ serialHex: c.serialHex, record: rows[i] ?? null }))));
    this.counters.signed++;
    return der;
  }

  private lruSet(key: string, e: Entry): void {
    this.lru.delete(key);
    while (this.lru.size >= this.maxEntries) this.lru.delete(this.lru.keys().next().value as string);
    this.lru.set(key, e);
  }

  private enqueueWrite(id: string, row: StoredOcspResponse, start: number): void {
    if (this.closed || this.pending.size >= maxPendingWrites) return; // closing, or the database is behind: the row is signed again next time
    this.pending.set(id, { row, start });
    if (this.pending.size >= 256) void this.flush();
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => void this.flush(), 100);
      this.flushTimer.unref();
    }
  }

  /** Writes pending pre-signed responses to the database (batched; a row whose certificate changed meanwhile is dropped). */
  flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const repo = this.o.responses;
    if (!repo || this.pending.size === 0) return this.flushing;
    const batch = [...this.pending].filter(([id, p]) => !this.changedSince(id, p.start)).map(([, p]) => p.row);
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

  /**
   * Reads status changes made anywhere (other nodes, the CLI) since the last
   * poll and invalidates them, page by page: the store orders changes by
   * time and never ends a page inside a run of equal times, so the last time
   * of a page is where the next one starts, and no change is skipped.
   */
  async poll(): Promise<void> {
    const startedMs = this.o.clock.now().getTime();
    const since = new Date(this.polledAtMs - pollOverlapMs);
    const pageSize = this.o.pollPageSize ?? defaultPollPage;
    let cursor = since;
    let read = 0;
    for (;;) {
      const rows = await this.o.certificates.statusChangedSince(cursor, pageSize);
      for (const r of rows) {
        const k = `${r.issuerId}:${r.serialHex}:${r.at.getTime()}`;
        if (this.seen.has(k)) continue; // already handled in the overlap of the previous poll
        this.seen.set(k, r.at.getTime());
        this.invalidate(r.issuerId, r.serialHex);
      }
      read += rows.length;
      if (rows.length < pageSize) break;
      const last = rows[rows.length - 1]!.at;
      if (read > this.maxEntries || last.getTime() <= cursor.getTime()) {
        // More changes than this node can hold answers for (clearing costs less
        // than reading on), or a store that does not order its pages: forget
        // everything held (database rows are checked on load anyway).
        this.o.log?.({ level: 'warn', msg: 'more OCSP status changes than the cache holds; clearing the cache', read, cacheEntries: this.maxEntries });
        this.clearAll();
        break;
      }
      cursor = last;
    }
    for (const [k, at] of this.seen) if (at <= since.getTime()) this.seen.delete(k);
    for (const [id, c] of this.changed) if (c.atMs < startedMs - 2 * maxLoadMs) this.changed.delete(id);
    this.polledAtMs = startedMs;
    this.lastPollOkMs = startedMs;
  }

  private clearAll(): void {
    this.seq++;
    this.clearedSeq = this.seq;
    this.lru.clear();
    this.pending.clear();
  }

  /**
   * Re-signs database rows that reach half-life before the next run, with
   * the current status; rows of expired or never-issued certificates are
   * deleted. Returns how many rows were due. Every node may run it: a row
   * refreshed twice is harmless.
   */
  async refresh(): Promise<number> {
    const repo = this.o.responses;
    if (!repo) return 0;
    const nowMs = this.o.clock.now().getTime();
    const refreshMs = (this.o.refreshSeconds ?? 60) * 1000;
    const due = await repo.expiring(new Date(nowMs + (this.o.validitySeconds * 1000) / 2 + 2 * refreshMs), this.o.refreshBatch ?? 500);
    const puts: StoredOcspResponse[] = [];
    let n = 0;
    for (const d of due) {
      if (++n % 32 === 0) await yieldToLoop(); // keep the event loop answering requests
      const ca = this.byId.get(d.issuerId);
      if (!ca) continue; // a CA this node does not serve
      const id = `${d.issuerId}:${d.serialHex}`;
      const start = this.seq;
      const row = await this.o.certificates.statusOf(d.issuerId, d.serialHex);
      const status = toStatus(row);
      if (!row || status.status === 'unknown' || row.notAfter.getTime() <= nowMs) {
        await repo.delete(d.issuerId, d.serialHex);
        continue;
      }
      const h = ca.hashes.sha1;
      const e = await this.signOne(ca, encodeCertId('sha1', h.issuerNameHash, h.issuerKeyHash, d.serialHex), { serialHex: d.serialHex, record: row }, status, 'sha1', nowMs);
      if (this.changedSince(id, start)) continue;
      puts.push({ issuerId: d.issuerId, serialHex: d.serialHex, der: e.der, thisUpdate: e.thisUpdate, nextUpdate: e.nextUpdate });
      const key = `${id}:sha1`;
      if (this.lru.has(key)) this.lru.set(key, e);
    }
    await repo.putMany(puts);
    this.counters.refreshed += puts.length;
    return due.length;
  }

  private async refreshAll(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const batch = this.o.refreshBatch ?? 500;
      // Drain what is due, a batch at a time, within one interval.
      const until = this.o.clock.now().getTime() + (this.o.refreshSeconds ?? 60) * 1000;
      while ((await this.refresh()) >= batch && this.o.clock.now().getTime() < until);
    } finally {
      this.refreshing = false;
    }
  }

  /** Starts the status poll (every pollSeconds) and the refresh loop (every refreshSeconds); timers do not keep the process alive. */
  start(): void {
    if (this.polling) return;
    this.polling = true;
    // Until the first poll the LRU is empty anyway; count start as a successful poll.
    this.lastPollOkMs = this.o.clock.now().getTime();
    this.pollTimer = setInterval(() => {
      if (this.pollRunning) return; // a slow database: never two polls at once
      this.pollRunning = true;
      this.poll()
        .catch((err) => this.o.log?.({ level: 'error', msg: 'OCSP status poll failed', error: String(err) }))
        .finally(() => (this.pollRunning = false));
    }, this.o.pollSeconds * 1000);
    this.pollTimer.unref();
    if (this.o.responses) {
      this.refreshTimer = setInterval(() => {
        this.refreshAll().catch((err) => this.o.log?.({ level: 'error', msg: 'OCSP refresh failed', error: String(err) }));
      }, (this.o.refreshSeconds ?? 60) * 1000);
      this.refreshTimer.unref();
    }
  }

  /** Stops the timers (pending writes are dropped unless `close` is awaited instead). */
  stop(): void {
    clearInterval(this.pollTimer);
    clearInterval(this.refreshTimer);
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.polling = false;
  }

  /** Stops the timers and writes pending pre-signed responses; await it before closing the store. */
  async close(): Promise<void> {
    this.stop();
    const last = this.flush();
    this.closed = true;
    await last;
  }

  stats(): ResponderStats {
    return { ...this.counters, lruEntries: this.lru.size, pendingWrites: this.pending.size, lastPollOk: this.lastPollOkMs === null ? null : new Date(this.lastPollOkMs) };
  }
}
