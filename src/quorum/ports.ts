/**
 * Storage the quorum needs; `store/` implements it over Prisma (models
 * Custodian, QuorumRequest, QuorumApproval).
 */

/** A custodian as stored; `credential` is JSON (see credential.ts). */
export interface CustodianRow {
  name: string;
  credential: string;
  createdAt: Date;
  /** Set once the custodian was removed; their approvals no longer count. */
  removedAt: Date | null;
}

/** Custodians. Names are never reused: a removed custodian's name stays taken. */
export interface CustodianRepository {
  /** PkiError('conflict') when the name exists (active or removed). */
  insert(row: Omit<CustodianRow, 'removedAt'>): Promise<void>;
  find(name: string): Promise<CustodianRow | null>;
  /** Every custodian, removed ones included, oldest first. */
  list(): Promise<CustodianRow[]>;
  /** Sets removedAt unless already set; false when it was. PkiError('notFound') for an unknown name. */
  remove(name: string, at: Date): Promise<boolean>;
}

/** One custodian's approval of one request. */
export interface QuorumApprovalRow {
  custodian: string;
  approvedAt: Date;
  /** Base64 signature over the approval message when approved with a key; null for a passphrase. */
  signature: string | null;
}

/** A request for a quorum, with its approvals (oldest first). */
export interface QuorumRequestRow {
  id: string;
  /** Canonical JSON of `{ op, params }`. */
  operation: string;
  /** SHA-256 (hex) of `operation`. */
  hash: string;
  createdAt: Date;
  expiresAt: Date;
  /** Set when the operation ran; a request is used once. */
  usedAt: Date | null;
  approvals: QuorumApprovalRow[];
}

/** Quorum requests and approvals. */
export interface QuorumRepository {
  /** PkiError('conflict') on an existing id. */
  insertRequest(row: Omit<QuorumRequestRow, 'usedAt' | 'approvals'>): Promise<void>;
  find(id: string): Promise<QuorumRequestRow | null>;
  /** PkiError('conflict') when this custodian already approved it, 'notFound' when there is no such request. */
  insertApproval(requestId: string, approval: QuorumApprovalRow): Promise<void>;
  /** Compare-and-set: marks the request used at `at` if it is unused and expires after `at`; true when this call did. */
  markUsed(id: string, at: Date): Promise<boolean>;
}
