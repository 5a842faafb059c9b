/** Storage of signed audit checkpoints (docs/audit.md). Implemented in `store/`. */
/** A signed checkpoint as stored (docs/audit.md): `body` is the exact signed text. */
export interface AuditCheckpointRecord {
  id: number;
  /** Events covered: the seq of the last one. */
  eventCount: number;
  /** Chain hash of that event (hex). */
  headHash: string;
  at: Date;
  body: string;
  /** DER ECDSA-Sig-Value over `body`. */
  signature: Buffer;
  /** Serial of the audit signing certificate (issued by the root, profile audit-signer). */
  signerSerialHex: string;
}

/** Checkpoint storage. Implemented in `store/`. */
export interface AuditCheckpointRepository {
  /**
   * Stores `cp` only if the newest stored checkpoint covers exactly
   * `baseEvents` events (0: there is none), atomically across processes and
   * nodes, so checkpoint windows tile the log. Returns the stored record, or
   * null when another process stored one first.
   */
  addAfter(baseEvents: number, cp: Omit<AuditCheckpointRecord, 'id'>): Promise<AuditCheckpointRecord | null>;
  /** The checkpoint covering the most events (newest first among equals). */
  latest(): Promise<AuditCheckpointRecord | null>;
  /** Up to `limit` checkpoints after `after` in (eventCount, id) order; all from the start when `after` is null. */
  page(after: { eventCount: number; id: number } | null, limit: number): Promise<AuditCheckpointRecord[]>;
  findById(id: number): Promise<AuditCheckpointRecord | null>;
}
