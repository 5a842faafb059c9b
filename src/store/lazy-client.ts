/**
 * A Prisma client made on its first query. Importing the generated client
 * and its runtime, and compiling the query compiler's WebAssembly on the
 * first query, cost a process ~25-40 MB of RSS that it keeps to its end
 * (docs/performance.md, Memory); a SQLite serving process whose queries all
 * go through prepared statements (sqlite-hot-path.ts, sqlite-serving.ts)
 * then never pays it.
 *
 * What the store's code calls on a client works the same on this one:
 * `db.<model>.<method>(args)` and `db.$queryRaw`/`$executeRaw` (tagged or
 * Unsafe) return a lazy thenable, run when awaited, like Prisma's own
 * PrismaPromise, so that `db.$transaction([...])` gets them unstarted;
 * `$transaction(fn)` hands `fn` the real transaction client; `$disconnect()`
 * of a client never made does nothing. Any other `$` member is refused until
 * the client is made, then read from it.
 */
import type { Db } from './client.js';

/** A call on the client, started when first awaited (or given to `$transaction([...])`). */
class Deferred<T> implements PromiseLike<T> {
  private started?: Promise<T>;
  constructor(
    private readonly client: () => Promise<Db>,
    private readonly call: (db: Db) => PromiseLike<T>,
  ) {}
  /** The real Prisma call on `db`, not yet started (Prisma's calls run when awaited). */
  on(db: Db): PromiseLike<T> {
    return this.call(db);
  }
  private start(): Promise<T> {
    return (this.started ??= this.client().then((db) => this.call(db)));
  }
  then<A = T, B = never>(ok?: ((v: T) => A | PromiseLike<A>) | null, bad?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.start().then(ok, bad);
  }
  catch<B = never>(bad?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.start().catch(bad);
  }
  finally(f?: (() => void) | null): Promise<T> {
    return this.start().finally(f);
  }
}

const rawMethods = new Set(['$queryRaw', '$executeRaw', '$queryRawUnsafe', '$executeRawUnsafe']);

/** Whether each lazy client's Prisma client was made (for tests: a serving process must never make it). */
const madeOf = new WeakMap<object, () => boolean>();

/** Whether the Prisma client behind `db` was made; undefined when `db` is not a {@link lazyClient}. */
export function lazyClientMade(db: object): boolean | undefined {
  return madeOf.get(db)?.();
}

/** A {@link Db} that calls `make` on its first query and forwards to the client it returns. */
export function lazyClient(make: () => Promise<Db>): Db {
  let made: Promise<Db> | undefined;
  let real: Db | undefined;
  const client = () =>
    (made ??= make().then(
      (db) => (real = db),
      (err: unknown) => {
        made = undefined; // the next query tries again
        throw err;
      },
    ));
  const models = new Map<string, object>();
  const model = (name: string) => {
    let m = models.get(name);
    if (!m) {
      m = new Proxy(
        {},
        {
          get: (_t, method) =>
            typeof method !== 'string' || method === 'then'
              ? undefined
              : (...args: unknown[]) => new Deferred(client, (db) => (db as unknown as Record<string, Record<string, (...a: unknown[]) => PromiseLike<unknown>>>)[name]![method]!(...args)),
        },
      );
      models.set(name, m);
    }
    return m;
  };
  const fns: Record<string, unknown> = {
    async $transaction(arg: unknown, opts?: unknown) {
      const db = await client();
      const run = db.$transaction as (a: unknown, o?: unknown) => Promise<unknown>;
      if (Array.isArray(arg)) return run.call(db, arg.map((d) => (d instanceof Deferred ? d.on(db) : d)), opts);
      return run.call(db, arg, opts);
    },
    $disconnect: async () => {
      // A client still being made is waited for, so that it is disconnected too.
      if (made) await (await made.catch(() => undefined))?.$disconnect();
    },
  };
  const proxy = new Proxy({} as Db, {
    get(_t, p) {
      if (typeof p !== 'string' || p === 'then') return undefined;
      if (p in fns) return fns[p];
      if (rawMethods.has(p)) return (...args: unknown[]) => new Deferred(client, (db) => (db as unknown as Record<string, (...a: unknown[]) => PromiseLike<unknown>>)[p]!(...args));
      if (p.startsWith('$')) {
        if (real) return (real as unknown as Record<string, unknown>)[p];
        throw new Error(`lazy Prisma client: ${p} is not supported before the first query`);
      }
      return model(p);
    },
  });
  madeOf.set(proxy, () => made !== undefined);
  return proxy;
}
