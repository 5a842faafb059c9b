/** A stored, encrypted private key envelope (JSON text; never a key in clear). */
export interface KeyBlobRecord {
  id: string;
  algorithm: string;
  envelope: string;
  state: string;
  createdAt: Date;
}

/** What the software keystore needs from storage. Implemented in `store/`. */
export interface KeyBlobRepository {
  /** Inserts a new blob; an existing id is a `conflict` PkiError (never overwritten). */
  insert(blob: { id: string; algorithm: string; envelope: string }): Promise<void>;
  find(id: string): Promise<KeyBlobRecord | null>;
  setState(id: string, state: string): Promise<void>;
  /** Overwrites the envelope with nothing and marks the key `destroyed`: no secret opens it again. `notFound` for an unknown id. */
  destroy(id: string): Promise<void>;
}

/**
 * Seals small secrets other modules store (ACME EAB HMAC keys, the ACME nonce
 * key) under the online keystore, the way CA keys are stored. Implemented in
 * `keys/` (secret-sealer.ts); `store` receives it from `cmd`.
 */
export interface SecretSealer {
  /** True when `stored` is a sealed value (it has the versioned header); a legacy value stored in clear has none. */
  isSealed(stored: Uint8Array): boolean;
  /** The stored form of `secret` for one row: `purpose` and `id` are authenticated, so it opens only there. */
  seal(purpose: string, id: string, secret: Uint8Array): Buffer;
  /** The secret back; `keyIntegrity` when it does not authenticate (edited, or copied from another row or purpose). */
  open(purpose: string, id: string, stored: Uint8Array): Buffer;
}
