/**
 * @prisma/adapter-better-sqlite3 runs plain queries on its single connection
 * even while another request holds an interactive transaction open, so those
 * writes land inside (and roll back with) someone else's transaction. This
 * wrapper gives the connection one queue: a query waits until any open
 * transaction has committed or rolled back.
 */
import type { SqlDriverAdapter, SqlDriverAdapterFactory, Transaction } from '@prisma/driver-adapter-utils';

export function serializedSqlite(factory: SqlDriverAdapterFactory): SqlDriverAdapterFactory {
  let tail: Promise<void> = Promise.resolve();
  /** Resolves when it is our turn; call the returned function to let the next one go. */
  const lock = (): Promise<() => void> => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const prev = tail;
    tail = prev.then(() => held);
    return prev.then(() => release);
  };
  return {
    adapterName: factory.adapterName,
    provider: factory.provider,
    async connect(): Promise<SqlDriverAdapter> {
      const a = await factory.connect();
      const queued = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
        async (...args: A): Promise<R> => {
          const release = await lock();
          try {
            return await fn(...args);
          } finally {
            release();
          }
        };
      a.queryRaw = queued(a.queryRaw.bind(a));
      a.executeRaw = queued(a.executeRaw.bind(a));
      a.executeScript = queued(a.executeScript.bind(a));
      const start = a.startTransaction.bind(a);
      a.startTransaction = async (isolation?: Parameters<SqlDriverAdapter['startTransaction']>[0]): Promise<Transaction> => {
        const release = await lock();
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
          tx.commit = async () => {
            try {
              return await commit();
            } finally {
              finish();
            }
          };
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
