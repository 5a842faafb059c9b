/**
 * The CRLs this node serves: the newest it has seen per CA and scope, made
 * here or loaded from the database (what other nodes published). Serving is
 * a map lookup; a CRL is only ever replaced by one with a higher number.
 */
import type { CrlRecord, CrlRepository } from './ports.js';

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

  /** Loads from the database each scope of the CA whose newest CRL there is newer than the one held (its DER only then). */
  async loadNewer(caId: string): Promise<void> {
    for (const meta of await this.crls.latestAll(caId)) {
      const have = this.get(caId, meta.scope);
      if (have && have.crlNumber >= meta.crlNumber) continue;
      const rec = await this.crls.latest(caId, meta.scope);
      if (rec) this.remember(rec);
    }
  }
}
