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
 * a sync runs starts another at once (two at most; a third waits for the
 * newest), and that one serves every commit made before it started.
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

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** fdatasyncs of the WAL that may run at once (each holds a libuv thread-pool thread, of 4 by default). */
const defaultConcurrentSyncs = 2;

export class WalSync {
  /** Commits noted so far, and how many of them a finished sync covered. */
  #written = 0;
  #synced = 0;
  /** Running syncs, oldest first, each with the commits it covers. */
  readonly #running: { upTo: number; done: Promise<void> }[] = [];
  /** Resolves when the next sync ends well. */
  #advanced = signal();

  readonly #held: HeldFile;
  private readonly syncFile: (file: string) => Promise<void>;

  /**
   * `concurrentSyncs`: a commit that no running sync covers starts a sync of
   * its own while fewer than this many run, instead of waiting for the
   * running one to end and then for the next (1.5 syncs on average). With 16
   * writers on the development VM (5 alternating 3 s runs, load 32), a
   * write's wait went from p50 4.9–12.7 ms, p90 18.6–24.0 ms with 1 to p50
   * 0.6–6.0 ms, p90 8.5–16.2 ms with 2. Each fdatasync makes durable
   * everything written before it started.
   */
  constructor(
    private readonly walFile: string,
    syncFile?: (file: string) => Promise<void>,
    private readonly concurrentSyncs = defaultConcurrentSyncs,
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
      // A sync that started before the commit does not cover it: join those
      // that started after it, else start one, else wait for the newest (whose
      // failure fails this wait too, as it may have lost this commit's pages)
      // and look again.
      let covering = this.#running.filter((s) => s.upTo >= ticket);
      if (covering.length === 0 && this.#running.length < this.concurrentSyncs) covering = [this.#start()];
      // A newer sync may end first and cover this commit too: any sync's end is a reason to look again.
      if (covering.length) await Promise.race([...covering.map((s) => s.done), this.#advanced.promise]);
      else await this.#running[this.#running.length - 1]!.done;
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

  #start(): { upTo: number; done: Promise<void> } {
    const upTo = this.#written;
    const sync = {
      upTo,
      done: this.syncFile(this.walFile)
        .then(() => {
          this.#synced = Math.max(this.#synced, upTo);
          this.#advanced.resolve();
          this.#advanced = signal();
        })
        .finally(() => this.#running.splice(this.#running.indexOf(sync), 1)),
    };
    this.#running.push(sync);
    return sync;
  }
}

/** SQL that Prisma sends to read only: its reads start with SELECT or PRAGMA (BEGIN/COMMIT come through the transaction calls). */
export const isReadOnlySql = (sql: string): boolean => /^\s*(SELECT|PRAGMA)\b/i.test(sql) && !/\bRETURNING\b/i.test(sql);
