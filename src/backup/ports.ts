/** What backup and restore need of the database; implemented in `store/backup-tables.ts`. */

/** One row as the database client returns it (octets, dates and big integers as such). */
export type TableRow = Record<string, unknown>;

/** Reads one page of a table in primary-key order, after the row `after` (null: from the start). */
export type PageReader = (table: string, after: TableRow | null) => Promise<TableRow[]>;

/** Every table of the store, read and written row by row. */
export interface BackupTables {
  /** Every table, parents before the tables that refer to them. */
  readonly tables: readonly string[];
  /** Names of the migrations applied to the database, in order. */
  migrations(): Promise<string[]>;
  /** Applies this Trellis's pending migrations. */
  migrate(): Promise<void>;
  /** Runs `fn` over one consistent snapshot of the database (a read transaction). */
  snapshot<T>(fn: (read: PageReader) => Promise<T>): Promise<T>;
  /** Tables that hold at least one row (a table the database does not have yet holds none). */
  nonEmpty(): Promise<string[]>;
  /** Inserts rows as they were read (same ids). */
  insert(table: string, rows: TableRow[]): Promise<void>;
  /** After inserting with explicit ids: moves PostgreSQL's id sequences past them (SQLite does that itself). */
  afterInsert(): Promise<void>;
  /**
   * Raises a CA's CRL number sequence so the next number drawn is at least
   * `next`; returns the last number before and after.
   */
  raiseCrlSequence(caId: string, next: bigint): Promise<{ before: bigint | null; after: bigint }>;
  /** Deletes CRL publishing leases (transient, held by processes of the lost instance). */
  dropCrlLeases(): Promise<void>;
  close(): Promise<void>;
}
