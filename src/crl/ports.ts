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

/**
 * A CRL as a node holds it to serve (src/crl/held.ts): a CrlRecord, or for
 * a large CRL its metadata with `der` null (read from the store when asked
 * for) and `derBytes` its length when known (made here).
 */
export interface HeldCrl extends Omit<CrlRecord, 'der'> {
  der: Buffer | null;
  derBytes?: number;
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
  /**
   * The CRLs of a CA named by (scope, number), with their DER: the newest of
   * each scope, as `latestAll` names them; a pair not stored, or no longer
   * the newest of its scope, may be left out. One query on PostgreSQL, where
   * a query per scope costs a round trip each (a CA with 1,024 shards).
   */
  loadMany(caId: string, wanted: readonly { scope: string; crlNumber: bigint }[]): Promise<CrlRecord[]>;
  /** Deletes all but the newest `keep` CRLs of each scope. */
  prune(caId: string, keep: number): Promise<number>;
  /**
   * Takes or renews the lease on publishing a CA's CRLs, shared by every
   * process on the database, for `holder` (a positive integer below 2^21)
   * until `until`: atomically, true when the lease was free, had expired at
   * `now`, or was already `holder`'s. Times are the caller's clock.
   */
  acquireLease(caId: string, holder: number, now: Date, until: Date): Promise<boolean>;
  /** Gives the lease up at once if `holder` holds it (a clean shutdown: another process takes over at its next pass). */
  releaseLease(caId: string, holder: number): Promise<void>;
}

/** Holder ids of {@link CrlRepository.acquireLease} are below this. */
export const leaseHolderLimit = 2 ** 21;
