/** A CRL as published. `scope` is 'shard-<n>', 'full' or 'full-delta' (src/crl/scope.ts). */
export interface CrlRecord {
  caId: string;
  scope: string;
  crlNumber: bigint;
  baseCrlNumber: bigint | null;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
  der: Buffer;
}

/** CRL storage. Implemented in `store/`. */
export interface CrlRepository {
  /**
   * Draws the next CRL number for a CA atomically (shared by every node): numbers
   * are never reused, even after a crash between drawing and publishing.
   */
  nextCrlNumber(caId: string): Promise<bigint>;
  /** Stores a published CRL; a duplicate (caId, scope, crlNumber) is a `conflict`. */
  insert(crl: CrlRecord): Promise<void>;
  /** The newest CRL of a scope (highest number), or null. */
  latest(caId: string, scope: string): Promise<CrlRecord | null>;
  /** Newest CRL metadata (no DER) for every scope of a CA. */
  latestAll(caId: string): Promise<Omit<CrlRecord, 'der'>[]>;
  /** Deletes all but the newest `keep` CRLs of each scope. */
  prune(caId: string, keep: number): Promise<number>;
}
