/**
 * Durable SQLite commits without blocking the event loop.
 *
 * `synchronous = FULL` makes SQLite fsync the write-ahead log inside every
 * COMMIT, and better-sqlite3 runs COMMIT on the event loop: each fsync (3-4 ms
 * on the development VM) stalls every request of the process, and bench:issue
 * fell from 1,071 to 568 certs/s. Instead, connections run `synchronous =
 * NORMAL` (a commit appends its frames to the WAL and returns) and every write
 * the store makes resolves only after the WAL file was fdatasync'ed in the
 * thread pool, after that commit. One fdatasync covers every frame written
 * before it started, so concurrent writers share it: a commit that lands while
 * a sync runs waits for the next one, which serves all of them.
 *
 * This is what FULL promises for the commits of this process (a result is
 * handed out only once its commit is on disk), at one fsync per burst of
 * commits instead of one per commit on the event loop. Checkpoints keep
 * NORMAL's own ordering: SQLite syncs the WAL before a checkpoint and the
 * database file after it, so a frame that moved into the database file is
 * already durable.
 */
import fs from 'node:fs/promises';

/**
 * fdatasync of the WAL through one handle kept open (opening and closing it
 * for every sync cost 7 % of a server's CPU in bench:enroll's profile). An
 * absent file is nothing to sync (no WAL yet). The WAL keeps its inode while
 * the store's connections are open (SQLite deletes it only when the last
 * connection closes; checkpoints truncate it), so the handle stays the file's.
 */
class HeldFile {
  #handle: Promise<fs.FileHandle | null> | undefined;

  constructor(private readonly file: string) {}

  async sync(): Promise<void> {
    this.#handle ??= fs.open(this.file, 'r').catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    });
    const opening = this.#handle;
    let handle: fs.FileHandle | null;
    try {
      handle = await opening;
    } catch (err) {
      if (this.#handle === opening) this.#handle = undefined;
      throw err;
    }
    if (!handle) {
      if (this.#handle === opening) this.#handle = undefined;
      return;
    }
    await handle.datasync();
  }

  async close(): Promise<void> {
    const opening = this.#handle;
    this.#handle = undefined;
    await (await opening?.catch(() => null))?.close();
  }
}

export class WalSync {
  /** Commits noted so far, and how many of them a finished sync covered. */
  #written = 0;
  #synced = 0;
  #running: Promise<void> | undefined;

  readonly #held: HeldFile;
  private readonly syncFile: (file: string) => Promise<void>;

  constructor(
    private readonly walFile: string,
    syncFile?: (file: string) => Promise<void>,
  ) {
    this.#held = new HeldFile(walFile);
    this.syncFile = syncFile ?? (() => this.#held.sync());
  }

  /** Closes the WAL handle (the store is closing; call after its last write). */
  close(): Promise<void> {
    return this.#held.close();
  }

  /** Resolves once every commit that completed before this call is on disk. */
  durable(): Promise<void> {
    return this.durableUpTo(this.#written);
  }

  /**
   * Notes a commit that has just completed; returns its ticket for
   * {@link durableUpTo}. Call it before anyone learns of the commit's result.
   */
  committed(): number {
    return ++this.#written;
  }

  /** Resolves once the commit with this ticket, and every one before it, is on disk. */
  async durableUpTo(ticket: number): Promise<void> {
    while (this.#synced < ticket) {
      // A sync that started before the commit does not cover it: wait for it, then start (or join) the next.
      if (!this.#running) this.#running = this.#sync().finally(() => (this.#running = undefined));
      await this.#running;
    }
  }

  /**
   * `commit` resolves when a write has committed; the result resolves with
   * its value once that commit is on disk. A failed write is passed on as is.
   */
  async after<T>(commit: Promise<T>): Promise<T> {
    const value = await commit;
    await this.durableUpTo(this.committed());
    return value;
  }

  async #sync(): Promise<void> {
    const upTo = this.#written;
    await this.syncFile(this.walFile);
    this.#synced = Math.max(this.#synced, upTo);
  }
}

/** SQL that Prisma sends to read only: its reads start with SELECT or PRAGMA (BEGIN/COMMIT come through the transaction calls). */
export const isReadOnlySql = (sql: string): boolean => /^\s*(SELECT|PRAGMA)\b/i.test(sql) && !/\bRETURNING\b/i.test(sql);
