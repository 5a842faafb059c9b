export type TokenRole = 'issuer' | 'admin';

export interface ApiTokenRecord {
  id: string;
  name: string | null;
  role: TokenRole;
  hashHex: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** API tokens (only the SHA-256 of the secret is stored). Implemented in `store/`. */
export interface TokenRepository {
  insert(token: { id: string; name: string | null; role: TokenRole; hashHex: string }): Promise<void>;
  findByHash(hashHex: string): Promise<ApiTokenRecord | null>;
  list(): Promise<ApiTokenRecord[]>;
  revoke(id: string, at: Date): Promise<void>;
}
