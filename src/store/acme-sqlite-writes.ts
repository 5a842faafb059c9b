/**
 * Group commit for the ACME hot path on SQLite. Every ACME request writes
 * (at least its nonce), and on a disk most of a small write's cost is its
 * commit: appending the changed pages to the WAL and, every thousand pages,
 * a checkpoint with fsync. Measured on ext4, a one-row INSERT took ~100 µs of
 * wall time per commit against ~20 µs on tmpfs. So writes that arrive while
 * the connection is busy are committed together, in one IMMEDIATE transaction;
 * each keeps its own result, and a write that fails takes only itself back.
 */
import type Database from 'better-sqlite3';
import { withWriteLock } from './sqlite-hot-path.js';
import type { SerialQueue } from './sqlite-serial.js';
import type { WalSync } from './wal-sync.js';

/**
 * Runs one write inside the group's transaction and resolves with its result
 * once that transaction has committed. `run` is synchronous; one of several
 * statements must be a better-sqlite3 `db.transaction` function, which runs
 * as a SAVEPOINT inside the group, so that its failure undoes only its own
 * statements.
 */
export type GroupWrite = <T>(run: () => T) => Promise<T>;

type Pending = { run: () => unknown; resolve: (value: unknown) => void; reject: (err: unknown) => void };
type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

/**
 * Group commit over `db` (busy_timeout 0). A group forms while the Prisma
 * connection's `queue` is busy (a Prisma query, the previous group, another
 * process's write lock) or within one turn of the event loop (every request
 * whose bytes arrived in it), and is taken as a whole when its turn comes; an
 * idle store commits a lone write in the next turn and never waits on a timer.
 * With 32 ACME clients this took bench:acme from 373 to 428 orders/s.
 */
export function groupCommit(db: Database.Database, queue: SerialQueue, wal?: WalSync): GroupWrite {
  let pending: Pending[] = [];

  const commitAll = db.transaction((group: Pending[]): Outcome[] =>
    group.map((w) => {
      try {
        return { ok: true, value: w.run() };
      } catch (err) {
        // A constraint error undoes only the failed statement (or savepoint);
        // an error that ended the transaction (I/O, disk full) fails the group.
        if (!db.inTransaction) throw err;
        return { ok: false, err };
      }
    }),
  );

  const flush = async () => {
    const group = pending;
    pending = [];
    let outcomes: Outcome[];
    try {
      outcomes = await withWriteLock(() => commitAll.immediate(group));
    } catch (err) {
      // Nothing of the group was committed.
      for (const w of group) w.reject(err);
      return;
    }
    // Results go out once the group's commit is on disk (wal-sync.ts); the queue is free meanwhile.
    if (wal) void wal.after(Promise.resolve()).then(() => settle(group, outcomes), (err: unknown) => group.forEach((w) => w.reject(err)));
    else settle(group, outcomes);
  };

  const settle = (group: Pending[], outcomes: Outcome[]) => {
    outcomes.forEach((o, i) => (o.ok ? group[i]!.resolve(o.value) : group[i]!.reject(o.err)));
  };

  return <T>(run: () => T) =>
    new Promise<T>((resolve, reject) => {
      pending.push({ run, resolve: resolve as (value: unknown) => void, reject });
      // The first write of a group schedules its flush after this turn of the
      // event loop, so the writes of every request handled in it (each ACME
      // request redeems a nonce) share one commit; later ones join it.
      if (pending.length === 1) setImmediate(() => void queue.run(flush));
    });
}
