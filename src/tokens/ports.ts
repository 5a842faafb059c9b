/** A role as stored in a token row: a role of roles.ts or one of its older aliases (normalise with canonicalRole). */
export type TokenRole = 'administrator' | 'officer' | 'auditor' | 'enrollment' | 'issuer' | 'admin';

export interface ApiTokenRecord {
  id: string;
  name: string | null;
  role: TokenRole;
  hashHex: string;
  /** Profiles the token may enroll for; null = every profile whose enrollment lists api. */
  profiles: string[] | null;
  createdAt: Date;
  /** null = never expires. */
  expiresAt: Date | null;
  /** Updated at most about once a minute per token (see TokenVerifier), not on every request. */
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** A token to store: the record without the times the store sets. */
export interface NewApiToken {
  id: string;
  name: string | null;
  role: TokenRole;
  hashHex: string;
  profiles?: string[] | null;
  expiresAt?: Date | null;
}

/** API tokens (only the SHA-256 of the secret is stored). Implemented in `store/`. */
export interface TokenRepository {
  insert(token: NewApiToken): Promise<void>;
  findByHash(hashHex: string): Promise<ApiTokenRecord | null>;
  /** Every token, oldest first. */
  list(): Promise<ApiTokenRecord[]>;
  /**
   * Marks the token revoked at `at`; a token already revoked keeps its first
   * revocation time (`alreadyRevoked` true). PkiError('notFound') for an unknown id.
   */
  revoke(id: string, at: Date): Promise<{ token: ApiTokenRecord; alreadyRevoked: boolean }>;
  /**
   * Sets lastUsedAt to `at` unless it is already later than `unlessAfter`, so
   * several processes sharing the database write it about once per interval.
   */
  touch(id: string, at: Date, unlessAfter: Date): Promise<void>;
}
