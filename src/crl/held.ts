/**
 * The CRLs this node serves: the newest it has seen per CA and scope, made
 * here or loaded from the database (what other nodes published). A CRL is
 * only ever replaced by one with a higher number.
 *
 * Every CRL's metadata is held (what readiness, metrics and the schedule
 * read); its DER only on demand. Each serving process used to read the DER
 * of every CRL at start: at 10 M certificates ~47 MiB of shard CRLs and a
 * 40 MiB full CRL, seconds of CPU and 100–200 MiB per process
 * (docs/performance.md, Scale). Now:
 *
 * - a CRL of at most `heldEntries` entries (every shard sized as docs/crl.md
 *   recommends) keeps its DER once made here or first asked for, the least
 *   recently served dropped beyond `heldBytes` in all; serving it is then a
 *   map lookup, and a miss one read from the database;
 * - a larger one (a large CA's full CRL) is read when asked for and kept
 *   30 s, concurrent requests sharing one read.
 */
import type { CrlRecord, CrlRepository, HeldCrl } from './ports.js';

/** A page of withDers: CRLs of at most this many entries in all (~4 MB of DER), unless one CRL has more. */
const pageEntries = 100_000;
/** A page of withDers: at most this many CRLs. */
const pageCrls = 256;
/**
 * Default of `heldEntries`: ~4 MiB of DER at ~40 octets an entry. A shard
 * sized as docs/crl.md recommends (~1,000 entries) is a hundred times under
 * it; so is the full CRL of a CA with under ~1 M certificates at 10 % revoked.
 */
export const defaultHeldEntries = 100_000;
/**
 * Default of `heldBytes`: the shard CRLs of 10 M certificates at 1,024
 * shards (~1,000 entries, ~47 MiB) fit, so the lease holder, which makes
 * each shard's next CRL from its previous one, never reads one back (a read
 * costs ~4 ms of CPU through Prisma). A worker that only serves holds what it
 * was asked for; HTTP caches hold each CRL until its nextUpdate (src/crl/http.ts).
 */
export const defaultHeldBytes = 64 * 1024 * 1024;
/** How long the DER of a large CRL read on demand is kept after the read (requests in a burst share one read). */
const largeKeptMs = 30_000;
/** At most this many large CRLs' DER kept at once (a CA has one full CRL; a second CA, or a new number, may overlap). */
const largeKeptCount = 2;

/** Options of {@link HeldCrls}. */
export interface HeldCrlsOptions {
  /** CRLs with more revoked entries than this are read from the store per request, kept 30 s (default {@link defaultHeldEntries}). */
  heldEntries?: number;
  /** The DER of smaller CRLs held in all, in octets (default {@link defaultHeldBytes}). */
  heldBytes?: number;
}

/** The newest CRL held per `${caId}/${scope}`. */
export class HeldCrls {
  private readonly current = new Map<string, HeldCrl>();
  /** Scopes whose held CRL carries its DER, least recently served first, with its length. */
  private readonly withDer = new Map<string, number>();
  private derBytes = 0;
  /** Reads of a DER under way or kept (large CRLs), by `${caId}/${scope}/${crlNumber}`. */
  private readonly reads = new Map<string, Promise<Buffer | null>>();
  /** Keys of `reads` that are large CRLs (kept after the read). */
  private readonly largeKeys = new Set<string>();
  private readonly heldEntries: number;
  private readonly heldBytes: number;

  constructor(
    private readonly crls: CrlRepository,
    o: HeldCrlsOptions = {},
  ) {
    this.heldEntries = o.heldEntries ?? defaultHeldEntries;
    this.heldBytes = o.heldBytes ?? defaultHeldBytes;
  }

  /** The CRL held for a scope, or undefined; its `der` is null when it is not in memory (derOf reads it). */
  get(caId: string, scope: string): HeldCrl | undefined {
    return this.current.get(`${caId}/${scope}`);
  }

  /** Every CRL held, one per CA and scope. */
  all(): HeldCrl[] {
    return [...this.current.values()];
  }

  /** Holds `rec` unless a CRL with the same or a higher number is held for its scope; its DER if it has one and it is small. */
  remember(rec: CrlRecord | HeldCrl): void {
    const k = `${rec.caId}/${rec.scope}`;
    const have = this.current.get(k);
    if (have && have.crlNumber >= rec.crlNumber) return;
    this.dropDer(k);
    if (rec.der && rec.entries <= this.heldEntries) this.holdDer(k, rec as HeldCrl & { der: Buffer });
    else {
      const { der, derBytes: _derBytes, ...meta } = rec as HeldCrl;
      const derBytes = der?.length ?? (rec as HeldCrl).derBytes;
      this.current.set(k, { ...meta, der: null, ...(derBytes !== undefined ? { derBytes } : {}) });
    }
    for (const key of this.reads.keys()) {
      if (key.startsWith(`${k}/`) && key !== `${k}/${rec.crlNumber}`) {
        this.reads.delete(key);
        this.largeKeys.delete(key);
      }
    }
  }

  /**
   * The DER of a CRL got from get() or all(): at once when held with it;
   * otherwise read from the database (a large CRL in slices on PostgreSQL),
   * concurrent callers sharing one read, and held (a small CRL, while it is
   * the newest of its scope) or kept 30 s (a large one). Null when the
   * database no longer has that CRL (pruned after newer ones: loadNewer picks
   * those up).
   */
  async derOf(crl: HeldCrl): Promise<Buffer | null> {
    const scopeKey = `${crl.caId}/${crl.scope}`;
    if (crl.der) {
      // Served: the most recently used now.
      if (this.withDer.has(scopeKey) && this.current.get(scopeKey) === crl) {
        this.withDer.delete(scopeKey);
        this.withDer.set(scopeKey, crl.der.length);
      }
      return crl.der;
    }
    const held = this.current.get(scopeKey);
    if (held?.der && held.crlNumber === crl.crlNumber) return this.derOf(held);
    const k = `${scopeKey}/${crl.crlNumber}`;
    const reading = this.reads.get(k);
    if (reading) return reading;
    const large = crl.entries > this.heldEntries;
    if (large) {
      const keptLarge = [...this.reads.keys()].filter((key) => this.largeKeys.has(key));
      while (keptLarge.length >= largeKeptCount) this.reads.delete(keptLarge.shift()!);
      this.largeKeys.add(k);
    }
    const read = this.crls.loadMany(crl.caId, [{ scope: crl.scope, crlNumber: crl.crlNumber }]).then((rows) => rows.find((r) => r.scope === crl.scope && r.crlNumber === crl.crlNumber)?.der ?? null);
    this.reads.set(k, read);
    const forget = () => {
      if (this.reads.get(k) !== read) return;
      this.reads.delete(k);
      this.largeKeys.delete(k);
    };
    // A large CRL's DER is kept largeKeptMs after the read; a small one is held
    // instead (below); a failed or empty read is not kept (the next request reads again).
    read.then((der) => (der && large ? setTimeout(forget, largeKeptMs).unref() : forget()), forget);
    const der = await read;
    const now = this.current.get(scopeKey);
    if (der && !large && now && !now.der && now.crlNumber === crl.crlNumber) this.holdDer(scopeKey, { ...now, der });
    return der;
  }

  /**
   * Each of `crls` with its DER (null where the store no longer has it), in
   * their order but for those read from the store: a page of them per query
   * (at most `pageEntries` entries or `pageCrls` CRLs of one CA), as
   * `crl publish` writes every CRL. What is read here is not held.
   */
  async *withDers(crls: readonly HeldCrl[]): AsyncGenerator<[HeldCrl, Buffer | null]> {
    let page: HeldCrl[] = [];
    let entries = 0;
    const read = async (): Promise<[HeldCrl, Buffer | null][]> => {
      const rows = await this.crls.loadMany(page[0]!.caId, page);
      const out = page.map((c): [HeldCrl, Buffer | null] => [c, rows.find((r) => r.scope === c.scope && r.crlNumber === c.crlNumber)?.der ?? null]);
      page = [];
      entries = 0;
      return out;
    };
    for (const crl of crls) {
      if (crl.der || crl.entries > this.heldEntries) {
        yield [crl, await this.derOf(crl)];
        continue;
      }
      if (page.length && (page[0]!.caId !== crl.caId || entries + crl.entries > pageEntries || page.length === pageCrls)) yield* await read();
      page.push(crl);
      entries += crl.entries;
    }
    if (page.length) yield* await read();
  }

  /** Loads from the database the metadata of each scope of the CA whose newest CRL there is newer than the one held (its DER on demand). */
  async loadNewer(caId: string): Promise<void> {
    for (const meta of await this.crls.latestAll(caId)) {
      const have = this.get(caId, meta.scope);
      if (!have || have.crlNumber < meta.crlNumber) this.remember({ ...meta, der: null });
    }
  }

  /** Holds `crl` with its DER, dropping the DER of the least recently served beyond heldBytes. */
  private holdDer(k: string, crl: HeldCrl & { der: Buffer }): void {
    this.dropDer(k);
    this.current.set(k, crl);
    this.withDer.set(k, crl.der.length);
    this.derBytes += crl.der.length;
    for (const [old] of this.withDer) {
      if (this.derBytes <= this.heldBytes || old === k) break;
      this.dropDer(old);
    }
  }

  /** Keeps the metadata of the CRL held for scope `k`, not its DER. */
  private dropDer(k: string): void {
    const bytes = this.withDer.get(k);
    if (bytes === undefined) return;
    this.withDer.delete(k);
    this.derBytes -= bytes;
    const { der: _der, ...meta } = this.current.get(k)!;
    this.current.set(k, { ...meta, der: null, derBytes: bytes });
  }
}
