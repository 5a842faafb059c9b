/** An audit event before it is chained. `data` must never hold key material. */
export interface AuditDraft {
  at: Date;
  type: string;
  actor: string;
  data: Record<string, unknown>;
}

/** An audit event as stored: `hash` = SHA-256 over (prevHash, seq, at, type, actor, data). */
export interface AuditRecord {
  seq: number;
  at: Date;
  type: string;
  actor: string;
  /** JSON text. */
  data: string;
  prevHash: string;
  hash: string;
}

/** Computes a record's hash from the previous hash, its seq and the draft (`chainHash` in audit-log.ts). */
export type AuditChain = (prevHash: string, seq: number, draft: AuditDraft, dataJson: string) => string;

/**
 * Audit events that a repository appends inside the transaction of the change
 * they record, so the change and its events commit or roll back together.
 */
export interface AuditBatch {
  drafts: AuditDraft[];
  chain: AuditChain;
}

/** Append-only audit storage. Implemented in `store/`. */
export interface AuditRepository {
  /**
   * Appends drafts atomically after the current last event, serialised across
   * processes and nodes (SQLite: one writer; PostgreSQL: advisory lock).
   * `chain` computes each record's hash from the previous hash, its seq and the draft.
   */
  append(drafts: AuditDraft[], chain: AuditChain): Promise<AuditRecord[]>;
  /** Events with seq in [fromSeq, fromSeq+limit), in order. */
  range(fromSeq: number, limit: number): Promise<AuditRecord[]>;
  last(): Promise<AuditRecord | null>;
}
