/**
 * The CRLs this node serves: the newest it has seen per CA and scope, made
 * here or loaded from the database (what other nodes published). Serving is
 * a map lookup; a CRL is only ever replaced by one with a higher number.
 */
import type { CrlRecord, CrlRepository } from './ports.js';

/** A page of loadNewer: CRLs of at most this many entries in all (~4 MB of DER), unless one CRL has more. */
const pageEntries = 100_000;
/** A page of loadNewer: at most this many CRLs. */
const pageCrls = 256;

/** The newest CRL held per `${caId}/${scope}`. */
export class HeldCrls {
  private readonly current = new Map<string, CrlRecord>();

  constructor(private readonly crls: CrlRepository) {}

  /** The CRL held for a scope, or undefined. */
  get(caId: string, scope: string): CrlRecord | undefined {
    return this.current.get(`${caId}/${scope}`);
  }

  /** Every CRL held, one per CA and scope. */
  all(): CrlRecord[] {
    return [...this.current.values()];
  }

  /** Holds `rec` unless a CRL with the same or a higher number is held for its scope. */
  remember(rec: CrlRecord): void {
    const k = `${rec.caId}/${rec.scope}`;
    const have = this.current.get(k);
    if (!have || have.crlNumber < rec.crlNumber) this.current.set(k, rec);
  }

  /**
   * Loads from the database each scope of the CA whose newest CRL there is
   * newer than the one held (its DER only then), a page of scopes per query:
   * at most `pageEntries` revoked entries (~40 octets of DER each) or `pageCrls` CRLs.
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
      if (page.length && (entries + meta.entries > pageEntries || page.length === pageCrls)) await load();
      page.push(meta);
      entries += meta.entries;
    }
    await load();
  }
}
