/**
 * What the ACME registration authority needs from storage (RFC 8555 objects:
 * accounts, orders, authorizations with their challenges, used nonces, EAB
 * keys, and RFC 9773 renewal windows). Implemented in `store/acme-repository.ts`
 * for SQLite and PostgreSQL. Every state change is a compare-and-set on the
 * current status, so two nodes (or two concurrent requests) never both win.
 */

import type { AuditBatch } from '../../audit/ports.js';
import type { ErrorType } from '../../errors/pki-error.js';

/** RFC 8555 §7.1.6 account states. */
export type AccountStatus = 'valid' | 'deactivated' | 'revoked';

export interface AcmeAccountRecord {
  /** Random id, used in the `kid` URL (`/acme/acct/{id}`). */
  id: string;
  /** RFC 7638 JWK thumbprint (base64url SHA-256) of the account key; unique. */
  thumbprint: string;
  /** The public JWK as JSON text (only the required members, RFC 7638 order). */
  jwk: string;
  status: AccountStatus;
  /** mailto: URLs. */
  contact: string[];
  termsAgreed: boolean;
  /** Key id of the external account binding used at creation, if any. */
  eabKeyId: string | null;
  createdAt: Date;
}

export interface Identifier {
  /** `permanent-identifier` (draft-ietf-acme-device-attest): a device id of the device directory. */
  type: 'dns' | 'ip' | 'permanent-identifier';
  /** DNS names lower case without a trailing dot, wildcard prefix kept in orders (`*.example.com`); IPs in canonical text form; device ids as given. */
  value: string;
}

/**
 * Stored order states. `ready` is not stored: an order is ready when it is
 * `pending` and every authorization is valid; it is `invalid` when stored so
 * or when an authorization is invalid, deactivated, expired or revoked.
 */
export type StoredOrderStatus = 'pending' | 'processing' | 'valid' | 'invalid';

/** An RFC 8555 problem as stored on an order or a challenge. */
export interface StoredProblem {
  type: string;
  detail: string;
  status?: number;
}

export interface AcmeOrderRecord {
  id: string;
  accountId: string;
  /** Profile chosen by the directory the order came through. */
  profile: string;
  status: StoredOrderStatus;
  expires: Date;
  /** Sorted, as requested (wildcards kept). */
  identifiers: Identifier[];
  /** One per identifier, same order. */
  authorizationIds: string[];
  notBefore: Date | null;
  notAfter: Date | null;
  error: StoredProblem | null;
  /** Set when status is 'valid'. */
  issuerId: string | null;
  certificateSerial: string | null;
  /** RFC 9773 `replaces`: the ARI certificate id of the certificate this order replaces. */
  replaces: string | null;
  createdAt: Date;
}

export type AuthorizationStatus = 'pending' | 'valid' | 'invalid' | 'deactivated' | 'expired' | 'revoked';
export type ChallengeType = 'http-01' | 'tls-alpn-01' | 'device-attest-01';
export type ChallengeStatus = 'pending' | 'processing' | 'valid' | 'invalid';

export interface AcmeChallenge {
  type: ChallengeType;
  /** base64url, 128 bits of entropy at least (RFC 8555 §8.3). */
  token: string;
  status: ChallengeStatus;
  validated: Date | null;
  error: StoredProblem | null;
  /** device-attest-01: SubjectPublicKeyInfo (DER, base64) of the attested key, set when it validated; finalize needs this key. */
  attestedSpki?: string;
}

export interface AcmeAuthorizationRecord {
  id: string;
  accountId: string;
  /** The identifier to validate (for a wildcard order: the base name, `wildcard` true). */
  identifier: Identifier;
  wildcard: boolean;
  status: AuthorizationStatus;
  expires: Date;
  challenges: AcmeChallenge[];
  createdAt: Date;
}

/** ACME accounts. */
export interface AcmeAccountRepository {
  /**
   * Inserts the account unless one with the same thumbprint exists; returns the
   * stored account and whether it was created. Concurrent calls with one key
   * create one account.
   */
  createOrGet(account: AcmeAccountRecord): Promise<{ account: AcmeAccountRecord; created: boolean }>;
  findById(id: string): Promise<AcmeAccountRecord | null>;
  findByThumbprint(thumbprint: string): Promise<AcmeAccountRecord | null>;
  /** Updates contact and/or status of a 'valid' account; null when not found or not valid. */
  update(id: string, patch: { contact?: string[]; status?: AccountStatus }): Promise<AcmeAccountRecord | null>;
  /**
   * RFC 8555 §7.3.5 key rollover: replaces the key only if the account still has
   * `oldThumbprint`. 'conflict' when another account already uses the new key.
   */
  changeKey(id: string, oldThumbprint: string, next: { thumbprint: string; jwk: string }): Promise<'changed' | 'conflict' | 'notFound'>;
}

/**
 * How an order left in 'processing' is settled: 'valid' with the certificate
 * its finalize stored, or 'invalid' with a problem (RFC 8555 §7.4: the
 * client may retry with a new order).
 */
export type OrderSettlement =
  | { id: string; next: { status: 'valid'; issuerId: string; certificateSerial: string } }
  | { id: string; next: { status: 'invalid'; error: StoredProblem } };

/** Orders and authorizations. */
export interface AcmeOrderRepository {
  /** Inserts the order and its new authorizations (reused ones already exist) in one transaction. */
  createOrder(order: AcmeOrderRecord, newAuthorizations: AcmeAuthorizationRecord[]): Promise<void>;
  findOrder(id: string): Promise<AcmeOrderRecord | null>;
  /** Orders of an account, newest first, at most `limit` (RFC 8555 §7.1.2.1 orders list). */
  listOrders(accountId: string, limit: number): Promise<AcmeOrderRecord[]>;
  findAuthorization(id: string): Promise<AcmeAuthorizationRecord | null>;
  /** The authorizations with these ids, in the order of `ids`; unknown ids are left out. */
  findAuthorizations(ids: readonly string[]): Promise<AcmeAuthorizationRecord[]>;
  /**
   * A 'valid' (or, when `includePending`, 'pending') authorization of this
   * account for exactly this identifier and wildcard flag that expires after
   * `expiresAfter`; the latest-expiring one.
   */
  findReusableAuthorization(accountId: string, identifier: Identifier, wildcard: boolean, expiresAfter: Date, includePending: boolean): Promise<AcmeAuthorizationRecord | null>;
  /**
   * Compare-and-set: writes `next` (status, challenges, and `expires` when given) only if the stored
   * status is still `expected`. Returns false when another writer got there first. With `audit`, a
   * write that wins appends that batch in the same transaction (the move and its event commit
   * together, or neither does); one that loses appends nothing.
   */
  updateAuthorization(id: string, expected: AuthorizationStatus, next: { status: AuthorizationStatus; challenges: AcmeChallenge[]; expires?: Date }, audit?: AuditBatch): Promise<boolean>;
  /** Compare-and-set on the order's status; the patch fields are written together. */
  updateOrder(
    id: string,
    expected: StoredOrderStatus,
    next: { status: StoredOrderStatus; error?: StoredProblem | null; issuerId?: string; certificateSerial?: string },
  ): Promise<boolean>;
  /**
   * True when an order other than `exceptOrderId` that is not 'invalid' has this `replaces` value.
   * With `now`, a 'pending' order that expired at or before `now` no longer counts (it can never
   * become valid, and nothing may ever store it as invalid).
   */
  isReplaced(replaces: string, exceptOrderId?: string, now?: Date): Promise<boolean>;
  /**
   * Orders stored as 'processing' that were created before `createdBefore`,
   * oldest first, at most `limit` (crash leftovers). Status is not indexed:
   * a table scan, run at start.
   */
  listProcessing(createdBefore: Date, limit: number): Promise<AcmeOrderRecord[]>;
  /**
   * Moves each order that is still 'processing' to its settlement
   * (compare-and-set) and appends `audit(moved)` for those that moved, in one
   * transaction; returns them in the order given. Nothing is appended when
   * none moved.
   */
  settleProcessing(settlements: OrderSettlement[], audit: (moved: OrderSettlement[]) => AuditBatch): Promise<OrderSettlement[]>;
}

/** Nonces are HMAC-checked statelessly; only redemption touches the database. */
export interface AcmeNonceRepository {
  /** Records `nonce` as used; false when it was used before (on any node). Atomic. */
  redeem(nonce: string, expiresAt: Date): Promise<boolean>;
  /**
   * Present where a redemption can share a transaction with a write (SQLite): calls `write` at once,
   * and the first store write it makes before it first yields records `nonce` in the same savepoint,
   * first: when the nonce was used before, that write is not made and rejects with `badNonce`.
   * `recorded` says how that ended once `written` has: 'recorded' (committed with the write), 'used'
   * (a replay), 'undone' (the write failed and took the redemption with it); it is undefined when
   * `write` made no store write within the call (the nonce is then not recorded).
   */
  redeemWith?<T>(nonce: string, expiresAt: Date, write: () => Promise<T>): { written: Promise<T>; recorded: Promise<'recorded' | 'used' | 'undone'> | undefined };
  /**
   * Present where redeem, createOrder, updateAuthorization and updateOrder
   * resolve once committed but before their commit is on disk (SQLite's group
   * commit): resolves once every commit the store made before the call is on
   * disk, and rejects when that cannot be ensured. Absent where those writes
   * resolve only once durable (PostgreSQL).
   */
  durable?(): Promise<void>;
  /**
   * Forgets used nonces that expired before `before` (they fail the expiry check anyway). A store may
   * keep some until a later call: SQLite keeps those redeemed after a nonce that is still live.
   */
  prune(before: Date): Promise<number>;
}

/** External account binding keys (RFC 8555 §7.3.4), created by `trellis acme eab create`. */
export interface AcmeEabKeyRecord {
  keyId: string;
  /** The HMAC key (shown to the operator once; needed to verify bindings). */
  hmacKey: Buffer;
  /** Directory (profile name) it is valid for; null for every directory. */
  directory: string | null;
  createdAt: Date;
  boundAccountId: string | null;
  boundAt: Date | null;
}

export interface AcmeEabKeyRepository {
  /** A duplicate key id is a `conflict` PkiError. */
  create(key: Omit<AcmeEabKeyRecord, 'boundAccountId' | 'boundAt'>): Promise<void>;
  find(keyId: string): Promise<AcmeEabKeyRecord | null>;
  /** Binds an unbound key to an account (once); false when already bound. */
  bind(keyId: string, accountId: string, at: Date): Promise<boolean>;
  list(): Promise<AcmeEabKeyRecord[]>;
}

/** Secrets of this instance shared by every node (e.g. the nonce HMAC key). */
export interface InstanceSecretRepository {
  /** The secret called `name`; the first caller's `create()` wins on every node. */
  getOrCreate(name: string, create: () => Buffer): Promise<Buffer>;
}

/** RFC 9773 renewal windows an operator pulled forward; absent = computed from validity. */
export interface RenewalWindowRepository {
  /** Window set for one certificate, or null. */
  windowOf(issuerId: string, serialHex: string): Promise<{ start: Date; end: Date } | null>;
  /**
   * Sets the window of every valid certificate unexpired at `now` (default:
   * the store's clock) matching the filter (all given fields must match;
   * `issuedBefore` compares the issuance time); returns how many changed.
   */
  setWindow(filter: { issuerId?: string; serialHexes?: string[]; profile?: string; issuedBefore?: Date }, window: { start: Date; end: Date }, now?: Date): Promise<number>;
}

/** What the RA asks the validation authority (src/va) to check. */
export interface ValidationRequest {
  type: ChallengeType;
  identifier: Identifier;
  token: string;
  /** RFC 8555 §8.1: token "." base64url(JWK thumbprint). */
  keyAuthorization: string;
}

/** The validation authority's verdict; remote failures are verdicts, not exceptions. */
export type ValidationVerdict = { status: 'valid' } | { status: 'invalid'; error: { type: ErrorType; detail: string } };

/** The validation authority as the RA uses it (only the RA calls it). */
export interface ChallengeValidator {
  validate(req: ValidationRequest): Promise<ValidationVerdict>;
}
