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
}
