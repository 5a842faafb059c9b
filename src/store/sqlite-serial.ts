/**
 * @prisma/adapter-better-sqlite3 has one connection. Its mutex orders
 * interactive transactions among themselves, but a plain query issued while
 * another request holds a transaction open runs on that same connection,
 * inside that transaction: its write is acknowledged, then rolled back with
 * the other request's work (dependencies.md §1c measured 200 of 200 writes
 * lost). This wrapper gives the connection one FIFO queue: a query waits
 * until any open transaction has committed or rolled back.
 */
import type { SqlDriverAdapter, SqlDriverAdapterFactory, SqlQuery, Transaction } from '@prisma/driver-adapter-utils';
import { isReadOnlySql, type WalSync } from './wal-sync.js';

/** A FIFO lock: one holder at a time, served in arrival order. */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();

  /** Resolves when it is the caller's turn, with the function that lets the next one go. */
  acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const prev = this.tail;
    this.tail = prev.then(() => held);
    return prev.then(() => release);
  }

  /** Runs `fn` alone. */
  async run<T>(fn: () => T | Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/**
 * Wraps a SQLite adapter factory so that every query and every transaction
 * of its connection takes `queue` for its whole duration. Code that must not
 * interleave with Prisma (the prepared-statement hot path) takes the same queue.
 * With `wal`, a write (any statement but a plain SELECT or PRAGMA, and every
 * COMMIT) resolves only once it is on disk; the fsync runs after the queue is
 * released, so it never holds up the next query.
 */
export function serializedSqlite(factory: SqlDriverAdapterFactory, queue: SerialQueue, wal?: WalSync): SqlDriverAdapterFactory {
  return {
    adapterName: factory.adapterName,
    provider: factory.provider,
    async connect(): Promise<SqlDriverAdapter> {
      const a = await factory.connect();
      const queued =
        <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
        (...args: A): Promise<R> =>
          queue.run(() => fn(...args));
      const queryRaw = queued(a.queryRaw.bind(a));
      const executeRaw = queued(a.executeRaw.bind(a));
      const executeScript = queued(a.executeScript.bind(a));
      a.queryRaw = (q: SqlQuery) => (wal && !isReadOnlySql(q.sql) ? wal.after(queryRaw(q)) : queryRaw(q));
      a.executeRaw = (q: SqlQuery) => (wal && !isReadOnlySql(q.sql) ? wal.after(executeRaw(q)) : executeRaw(q));
      a.executeScript = (script: string) => (wal ? wal.after(executeScript(script)) : executeScript(script));
      const start = a.startTransaction.bind(a);
      a.startTransaction = async (isolation?: Parameters<SqlDriverAdapter['startTransaction']>[0]): Promise<Transaction> => {
        // The queue is held from BEGIN until COMMIT or ROLLBACK; the
        // transaction's own queries go through `tx`, which is not queued.
        const release = await queue.acquire();
        try {
          const tx = await start(isolation);
          let done = false;
          const finish = () => {
            if (!done) {
              done = true;
              release();
            }
          };
          const commit = tx.commit.bind(tx);
          const rollback = tx.rollback.bind(tx);
          const committed = async () => {
            try {
              return await commit();
            } finally {
              finish();
            }
          };
          tx.commit = () => (wal ? wal.after(committed()) : committed());
          tx.rollback = async () => {
            try {
              return await rollback();
            } finally {
              finish();
            }
          };
          return tx;
        } catch (err) {
          release();
          throw err;
        }
      };
      return a;
    },
  };
}
