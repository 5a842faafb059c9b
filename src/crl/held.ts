/**
 * The CRLs this node serves: the newest it has seen per CA and scope, made
 * here or loaded from the database (what other nodes published). A CRL is
 * only ever replaced by one with a higher number.
 *
 * Small CRLs (every shard at the sizing docs/crl.md recommends) are held
 * with their DER, and serving one is a map lookup. A CRL of more than
 * `heldEntries` revoked entries (a large CA's full CRL: 1 M entries are
 * ~40 MiB of DER) is held as metadata only, and its DER is read from the
 * database when it is asked for, then kept for a short while (derOf): every
 * serving process used to read it whole at start, which cost seconds of CPU
 * and 35–100 MiB per process (docs/performance.md, Scale), for a file that
 * certificates do not point at.
 */
import type { CrlRecord, CrlRepository, HeldCrl } from './ports.js';

/** A page of loadNewer: CRLs of at most this many entries in all (~4 MB of DER), unless one CRL has more. */
const pageEntries = 100_000;
/** A page of loadNewer: at most this many CRLs. */
const pageCrls = 256;
/**
 * Default of `heldEntries`: ~4 MiB of DER at ~40 octets an entry. A shard
 * sized as docs/crl.md recommends (~1,000 entries) is a hundred times under
 * it; so is the full CRL of a CA with under ~1 M certificates at 10 % revoked.
 */
export const defaultHeldEntries = 100_000;
/** How long the DER of a large CRL read on demand is kept after the read (requests in a burst share one read). */
const largeKeptMs = 30_000;
/** At most this many large CRLs' DER kept at once (a CA has one full CRL; a second CA, or a new number, may overlap). */
const largeKeptCount = 2;

/** Options of {@link HeldCrls}. */
export interface HeldCrlsOptions {
  /** CRLs with more revoked entries than this are held without their DER (default {@link defaultHeldEntries}). */
  heldEntries?: number;
}

/** The newest CRL held per `${caId}/${scope}`. */
export class HeldCrls {
  private readonly current = new Map<string, HeldCrl>();
  /** DER of large CRLs read on demand, by `${caId}/${scope}/${crlNumber}`; oldest first. */
  private readonly large = new Map<string, { der: Promise<Buffer | null> }>();
  private readonly heldEntries: number;

  constructor(
    private readonly crls: CrlRepository,
    o: HeldCrlsOptions = {},
  ) {
    this.heldEntries = o.heldEntries ?? defaultHeldEntries;
  }

  /** The CRL held for a scope, or undefined; its `der` is null when it is read on demand (derOf). */
  get(caId: string, scope: string): HeldCrl | undefined {
    return this.current.get(`${caId}/${scope}`);
  }

  /** Every CRL held, one per CA and scope. */
  all(): HeldCrl[] {
    return [...this.current.values()];
  }

  /** Holds `rec` unless a CRL with the same or a higher number is held for its scope; a large one without its DER. */
  remember(rec: CrlRecord | HeldCrl): void {
    const k = `${rec.caId}/${rec.scope}`;
    const have = this.current.get(k);
    if (have && have.crlNumber >= rec.crlNumber) return;
    if (rec.der && rec.entries <= this.heldEntries) this.current.set(k, rec);
    else {
      const { der, derBytes: _derBytes, ...meta } = rec as HeldCrl;
      const derBytes = der?.length ?? (rec as HeldCrl).derBytes;
      this.current.set(k, { ...meta, der: null, ...(derBytes !== undefined ? { derBytes } : {}) });
    }
    for (const key of this.large.keys()) if (key.startsWith(`${k}/`) && key !== `${k}/${rec.crlNumber}`) this.large.delete(key);
  }

  /**
   * The DER of a CRL held here: at once when it is held with it; otherwise
   * read from the database (a large CRL, in slices on PostgreSQL) and kept
   * for a short while, concurrent callers sharing one read. Null when the
   * database no longer has that number as the newest of its scope (a newer
   * one was published: loadNewer picks it up).
   */
  async derOf(crl: HeldCrl): Promise<Buffer | null> {
    if (crl.der) return crl.der;
    const k = `${crl.caId}/${crl.scope}/${crl.crlNumber}`;
    let kept = this.large.get(k);
    if (!kept) {
      while (this.large.size >= largeKeptCount) this.large.delete(this.large.keys().next().value!);
      const read = this.crls.loadMany(crl.caId, [{ scope: crl.scope, crlNumber: crl.crlNumber }]).then((rows) => rows.find((r) => r.scope === crl.scope && r.crlNumber === crl.crlNumber)?.der ?? null);
      const entry = { der: read };
      const forget = () => {
        if (this.large.get(k) === entry) this.large.delete(k);
      };
      this.large.set(k, entry);
      kept = entry;
      // Kept for largeKeptMs after the read; a failed or empty read not at all (the next request reads again).
      read.then((der) => (der ? setTimeout(forget, largeKeptMs).unref() : forget()), forget);
    }
    return kept.der;
  }

  /**
   * Loads from the database each scope of the CA whose newest CRL there is
   * newer than the one held (its DER only then, and only for a CRL held with
   * it), a page of scopes per query: at most `pageEntries` revoked entries
   * (~40 octets of DER each) or `pageCrls` CRLs.
   */
  async loadNewer(caId: string): Promise<void> {
    const wanted = (await this.crls.latestAll(caId)).filter((meta) => {
      const have = this.get(caId, meta.scope);
      return !have || have.crlNumber < meta.crlNumber;
    });
    let page: typeof wanted = [];
    let entries = 0;
    const load = async () => {
      if (page.length) for (const rec of await this.crls.loadMany(caId, page)) this.remember(rec);
      page = [];
      entries = 0;
    };
    for (const meta of wanted) {
      if (meta.entries > this.heldEntries) {
        this.remember({ ...meta, der: null });
        continue;
      }
      if (page.length && (entries + meta.entries > pageEntries || page.length === pageCrls)) await load();
      page.push(meta);
      entries += meta.entries;
    }
    await load();
  }
}
