import type { KeyState } from './key-state.js';
import type { AuditBatch } from '../audit/ports.js';

/** One certificate authority record as stored. */
export interface CaRecord {
  id: string;
  name: string;
  role: 'root' | 'issuing';
  /** The key's state (NIST SP 800-57, key-state.ts). */
  keyState: KeyState;
  /** When the key entered it (null: when the CA was created). */
  keyStateAt: Date | null;
  parentId: string | null;
  certDer: Buffer;
  subject: string;
  skiHex: string;
  /** JSON key reference, e.g. {"type":"software","keyId":"…"}. */
  keyRef: string;
  notBefore: Date;
  notAfter: Date;
  createdAt: Date;
}

/** A CA record as a ceremony inserts it; its key starts active unless `keyState` says otherwise. */
export type NewCaRecord = Omit<CaRecord, 'createdAt' | 'keyState' | 'keyStateAt'> & { keyState?: KeyState };

/** One transition of a CA key's state. */
export interface KeyStateEventRecord {
  caId: string;
  from: KeyState | null;
  to: KeyState;
  at: Date;
  actor: string;
  reason: string | null;
}

/** CA records. Implemented in `store/`. */
export interface CaRepository {
  /** Inserts; an existing id or name is a `conflict` PkiError (a ceremony never overwrites a CA). */
  insert(ca: NewCaRecord): Promise<void>;
  findById(id: string): Promise<CaRecord | null>;
  findByName(name: string): Promise<CaRecord | null>;
  list(): Promise<CaRecord[]>;
  /**
   * Moves the CA's key from `from` to `to` (compare-and-set: false when it was
   * no longer in `from`) and records the transition, in one transaction.
   */
  transitionKey(id: string, from: KeyState, to: KeyState, event: { at: Date; actor: string; reason?: string }): Promise<boolean>;
  /** The key state of every CA (the CA reads it before it signs). */
  keyStates(): Promise<{ id: string; keyState: KeyState }[]>;
  /** A CA's key transitions, oldest first. */
  keyHistory(id: string): Promise<KeyStateEventRecord[]>;
  /**
   * Points the CA at a new certificate for the same key and subject (a
   * renewal, possibly under another parent); the old certificate stays in
   * the certificates of its issuer.
   */
  setCertificate(id: string, cert: { certDer: Buffer; parentId: string; notBefore: Date; notAfter: Date }): Promise<void>;
  /** Points the CA at another key reference (the same key moved to another keystore). */
  setKeyRef(id: string, keyRef: string): Promise<void>;
}

export type CertificateStatus = 'pending' | 'valid' | 'revoked' | 'failed';
export type RequestedVia = 'cli' | 'api' | 'acme' | 'ceremony' | 'est';

/** Everything known about a certificate before it is signed. */
export interface CertificateIntent {
  issuerId: string;
  serialHex: string;
  profile: string;
  subject: string;
  /** JSON array of {type, value}. */
  sans: string;
  notBefore: Date;
  notAfter: Date;
  /** The certificate as linted: the exact TBS that gets signed, with an empty signature value (ca/prepare.ts). */
  lintDer: Buffer;
  crlShard: number;
  requestedVia: RequestedVia;
  requestedBy: string | null;
  /** Keystore id of the private key when Trellis holds it (OCSP responder, its own TLS server). */
  keyId?: string | null;
  /** The registered device the certificate is issued to (device registry). */
  deviceId?: string | null;
}

export interface CertificateRecord extends CertificateIntent {
  id: number;
  status: CertificateStatus;
  der: Buffer | null;
  revokedAt: Date | null;
  revocationReason: number | null;
  invalidityDate: Date | null;
  revokedBy: string | null;
  holdReleasedAt: Date | null;
  createdAt: Date;
  issuedAt: Date | null;
}

/** One revoked certificate as a CRL or OCSP response needs it. */
export interface RevokedEntry {
  serialHex: string;
  revokedAt: Date;
  /** CRLReason code (RFC 5280 §5.3.1). */
  reason: number;
  invalidityDate: Date | null;
}

/** What OCSP needs to answer for one serial. */
export interface CertificateStatusRow {
  status: CertificateStatus;
  revokedAt: Date | null;
  revocationReason: number | null;
  notAfter: Date;
}

/** One certificate by issuer and serial. */
export interface CertificateRef {
  issuerId: string;
  serialHex: string;
}

/** A signed certificate completing its intent. */
export interface CompletedCertificate extends CertificateRef {
  der: Buffer;
  issuedAt: Date;
}

/** An intent that was never completed and has been marked 'failed', with who asked for it. */
export interface AbandonedIntent extends CertificateRef {
  requestedVia: RequestedVia;
  requestedBy: string | null;
}

/** Certificate records. Implemented in `store/`. Batch methods are atomic. */
export interface CertificateRepository {
  /**
   * Records intents with status 'pending', all or none. A serial already used by
   * the same issuer is a `conflict` PkiError and nothing is written.
   */
  insertIntents(intents: CertificateIntent[]): Promise<void>;
  /**
   * Step 5 of issuance, in one transaction: the pending certificates in
   * `issued` become 'valid' with their signed DER, the pending ones in
   * `failed` become 'failed' (signing failed after the intent was recorded),
   * and `audit` is appended to the audit chain. All or none: a certificate in
   * `issued` that is no longer pending is a `conflict`, and an append that
   * fails leaves every certificate pending; a crash leaves them pending too,
   * for {@link failStalePending}. Certificates in `failed` that are no longer
   * pending are left as they are. Resolves once the transaction is on disk,
   * or with `settles` 'committed' once it has committed (a store that commits
   * durably resolves then either way).
   */
  completeMany(batch: { issued: CompletedCertificate[]; failed: CertificateRef[] }, audit: AuditBatch, settles?: 'durable' | 'committed'): Promise<void>;
  /**
   * Crash leftovers: every certificate still 'pending' that was recorded
   * before `recordedBefore` becomes 'failed' (its serial stays used: the row
   * stays), and `audit(failed)` is appended, in one transaction. Returns
   * them; appends nothing when there are none.
   */
  failStalePending(recordedBefore: Date, audit: (failed: AbandonedIntent[]) => AuditBatch): Promise<AbandonedIntent[]>;
  /**
   * Certificates asked for through `via` by `requestedBy` (an ACME account,
   * a token) recorded at or after `since`, oldest first, at most `limit`.
   * Not indexed: for rare look-ups such as settling an ACME order left in
   * processing.
   */
  findRequestedBy(via: RequestedVia, requestedBy: string, since: Date, limit: number): Promise<CertificateRecord[]>;
  findBySerial(issuerId: string, serialHex: string): Promise<CertificateRecord | null>;
  /** Finds by serial across all issuers (serials are random 127-bit values). */
  findBySerialAnyIssuer(serialHex: string): Promise<CertificateRecord[]>;
  count(filter?: { issuerId?: string; status?: CertificateStatus }): Promise<number>;
  /** The valid certificate of `profile` from `issuerId` whose key Trellis holds, latest notAfter first (the OCSP responder). */
  latestHeld(issuerId: string, profile: string): Promise<CertificateRecord | null>;
  /** A device's 'valid' certificates whose notAfter is after `at` (reprovisioning policy), oldest first. */
  validForDevice(deviceId: string, at: Date): Promise<CertificateRecord[]>;

  /**
   * Revokes atomically: only a 'valid' certificate, or one on certificateHold
   * (to make the revocation final or change its reason), changes. Returns what
   * happened; nothing is written unless the result is 'revoked'.
   */
  revoke(issuerId: string, serialHex: string, r: { reason: number; revokedAt: Date; invalidityDate: Date | null; revokedBy: string }): Promise<'revoked' | 'alreadyRevoked' | 'notFound'>;
  /** Lifts a certificateHold: status back to 'valid', holdReleasedAt set. 'notOnHold' when it was not on hold. */
  releaseHold(issuerId: string, serialHex: string, at: Date): Promise<'released' | 'notOnHold' | 'notFound'>;
  /**
   * Streams revoked, unexpired certificates of an issuer (one shard, or all
   * when `shard` is null), ordered by serial, in pages of `pageSize`.
   */
  revokedEntries(issuerId: string, shard: number | null, opts: { notAfterAfter: Date; pageSize?: number }): AsyncIterable<RevokedEntry[]>;
  /** Delta CRL content: revocations after `since`, and holds lifted after `since`. */
  changedSince(issuerId: string, shard: number | null, since: Date): Promise<{ revoked: RevokedEntry[]; released: string[] }>;
  /**
   * Serials whose status changed (revoked or hold lifted) after `since`, across
   * issuers (OCSP cache invalidation on every node), ordered by change time. A
   * page never ends inside a run of equal times (it grows past `limit`
   * instead), so its last `at` is a cursor for the next page that skips nothing.
   */
  statusChangedSince(since: Date, limit: number): Promise<{ issuerId: string; serialHex: string; at: Date }[]>;
  /** OCSP status lookup by serial. */
  statusOf(issuerId: string, serialHex: string): Promise<CertificateStatusRow | null>;
}
