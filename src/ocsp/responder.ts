/**
 * The OCSP responder (RFC 6960, RFC 5019 profile). Responses are signed by
 * each issuing CA's delegated responder certificate. A single-certificate
 * request without a nonce (the RFC 5019 case, and every GET) is answered from
 * a bounded in-memory cache of pre-signed responses, so it costs a lookup;
 * a status change drops the entry at once on this node, and within
 * `pollSeconds` on every other node sharing the database.
 */
import { createHash } from 'node:crypto';
import type { CertificateRepository } from '../ca/ports.js';
import type { Clock } from '../clock/clock.js';
import { parseOcspRequest, MalformedOcspRequest, type CertId, type CertIdHash } from './request.js';
import { errorResponse, signedResponse, type ResponderSigner, type SingleResponseInput, type SingleStatus } from './response.js';

/** An issuing CA this responder answers for. */
export interface ResponderCa {
  id: string;
  /** Issuer's subject Name DER and subjectPublicKey bits, for the CertID hashes. */
  subjectDer: Buffer;
  subjectPublicKey: Buffer;
  signer: ResponderSigner;
}

export interface OcspResult {
  der: Buffer;
  /** Set for a cacheable (nonce-less, single, successful) response. */
  cache: { thisUpdate: Date; nextUpdate: Date } | null;
}

export interface ResponderOptions {
  certificates: CertificateRepository;
  clock: Clock;
  validitySeconds: number;
  pollSeconds: number;
  cacheEntries?: number;
  log?: (e: Record<string, unknown>) => void;
}

interface Cached {
  der: Buffer;
  issuerId: string;
  serialHex: string;
  thisUpdate: Date;
  nextUpdate: Date;
}

export class OcspResponder {
  private readonly byHashes = new Map<string, ResponderCa>();
  private readonly cache = new Map<string, Cached>();
  /** `${issuerId}:${serial}` → cache keys (one per CertID hash algorithm). */
  private readonly keysOf = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | undefined;
  private polledAt: Date;

  constructor(private readonly o: ResponderOptions) {
    this.polledAt = o.clock.now();
  }

  /** Adds or replaces (after a responder certificate renewal) the CA and its signer. */
  setCa(ca: ResponderCa): void {
    for (const hash of ['sha1', 'sha256'] as const) {
      const key = (b: Buffer) => createHash(hash).update(b).digest('hex');
      this.byHashes.set(`${hash}:${key(ca.subjectDer)}:${key(ca.subjectPublicKey)}`, ca);
    }
    // Responses signed by a replaced responder certificate stay valid, but new ones use the new key.
    for (const [k, v] of this.cache) if (v.issuerId === ca.id) this.cache.delete(k);
  }

  /** Drops cached responses of a certificate (revoked, or hold lifted). */
  statusChanged(issuerId: string, serialHex: string): void {
    const id = `${issuerId}:${serialHex}`;
    for (const k of this.keysOf.get(id) ?? []) this.cache.delete(k);
    this.keysOf.delete(id);
  }

  private caFor(c: CertId): ResponderCa | undefined {
    return this.byHashes.get(`${c.hash as CertIdHash}:${c.issuerNameHash.toString('hex')}:${c.issuerKeyHash.toString('hex')}`);
  }

  private async statusOf(ca: ResponderCa, serialHex: string): Promise<SingleStatus> {
    const row = await this.o.certificates.statusOf(ca.id, serialHex);
    if (!row || row.status === 'pending' || row.status === 'failed') return { status: 'unknown' };
    if (row.status === 'revoked') return { status: 'revoked', revokedAt: row.revokedAt!, reason: row.revocationReason };
    return { status: 'good' };
  }

  /** Answers any request body; never throws (errors become OCSP error statuses). */
  async respond(requestDer: Buffer): Promise<OcspResult> {
    try {
      const req = parseOcspRequest(requestDer);
      const cas = req.certIds.map((c) => this.caFor(c));
      const first = cas[0];
      // Every CertID must name a CA we serve, and one response has one signer.
      if (!first || cas.some((ca) => ca !== first)) return { der: errorResponse('unauthorized'), cache: null };
      const now = this.o.clock.now();
      const cacheKey = req.certIds.length === 1 && !req.nonce ? req.certIds[0]!.der.toString('base64') : null;
      if (cacheKey) {
        const hit = this.cache.get(cacheKey);
        // RFC 5019 §6.1: refresh well before nextUpdate (here at half-life).
        if (hit && now.getTime() < (hit.thisUpdate.getTime() + hit.nextUpdate.getTime()) / 2) {
          this.cache.delete(cacheKey);
          this.cache.set(cacheKey, hit);
          return { der: hit.der, cache: hit };
        }
      }
      const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
      const nextUpdate = new Date(thisUpdate.getTime() + this.o.validitySeconds * 1000);
      const singles: SingleResponseInput[] = [];
      for (const c of req.certIds) singles.push({ certIdDer: c.der, status: await this.statusOf(first, c.serialHex), thisUpdate, nextUpdate });
      const der = await signedResponse(first.signer, thisUpdate, singles, req.nonce);
      if (!cacheKey) return { der, cache: null };
      const serialHex = req.certIds[0]!.serialHex;
      this.remember(cacheKey, { der, issuerId: first.id, serialHex, thisUpdate, nextUpdate });
      return { der, cache: { thisUpdate, nextUpdate } };
    } catch (err) {
      if (err instanceof MalformedOcspRequest) return { der: errorResponse('malformedRequest'), cache: null };
      this.o.log?.({ level: 'error', msg: 'OCSP internal error', error: String((err as Error)?.stack ?? err) });
      return { der: errorResponse('internalError'), cache: null };
    }
  }

  private remember(key: string, entry: Cached): void {
    const max = this.o.cacheEntries ?? 100_000;
    if (this.cache.size >= max) {
      const oldest = this.cache.keys().next().value as string;
      const old = this.cache.get(oldest)!;
      this.cache.delete(oldest);
      this.keysOf.get(`${old.issuerId}:${old.serialHex}`)?.delete(oldest);
    }
    this.cache.set(key, entry);
    const id = `${entry.issuerId}:${entry.serialHex}`;
    const set = this.keysOf.get(id) ?? new Set<string>();
    set.add(key);
    this.keysOf.set(id, set);
  }

  /** Polls the database for status changes made on other nodes. */
  async poll(): Promise<void> {
    const now = this.o.clock.now();
    // Overlap the window by a second: a change committed while we read is seen next time.
    const since = new Date(this.polledAt.getTime() - 1000);
    for (const c of await this.o.certificates.statusChangedSince(since, 10_000)) this.statusChanged(c.issuerId, c.serialHex);
    this.polledAt = now;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.poll().catch((err) => this.o.log?.({ level: 'error', msg: 'OCSP status poll failed', error: String(err) }));
    }, this.o.pollSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
