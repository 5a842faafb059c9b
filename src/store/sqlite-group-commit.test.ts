/** Group commit: writes of one turn share a commit; 'committed' writes resolve before the fsync, 'durable' ones after. */
import Database from 'better-sqlite3';
import { expect, test } from 'vitest';
import { groupCommit } from './sqlite-group-commit.js';
import { SerialQueue } from './sqlite-serial.js';
import { WalSync } from './wal-sync.js';

const turns = async (n = 10) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

function setup() {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY)');
  const syncs: (() => void)[] = [];
  const wal = new WalSync('x-wal', () => new Promise<void>((r) => syncs.push(r)));
  const insert = db.prepare('INSERT INTO t (k) VALUES (?)');
  return { db, syncs, write: groupCommit(db, new SerialQueue(), wal), insert };
}

test('a committed write resolves once its group has committed; a durable one of the same group waits for the fsync', async () => {
  const { db, syncs, write, insert } = setup();
  const done: string[] = [];
  void write(() => insert.run('a').changes, 'committed').then(() => done.push('committed'));
  void write(() => insert.run('b').changes).then(() => done.push('durable'));
  await turns();
  expect(done).toEqual(['committed']);
  expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 2 });
  expect(syncs).toHaveLength(1);
  syncs.shift()!();
  await turns();
  expect(done).toEqual(['committed', 'durable']);
});

test('a group of committed writes starts no fsync; a failed write takes only itself back', async () => {
  const { db, syncs, write, insert } = setup();
  const results = await Promise.allSettled([write(() => insert.run('a').changes, 'committed'), write(() => insert.run('a').changes, 'committed'), write(() => insert.run('c').changes, 'committed')]);
  expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  expect(db.prepare('SELECT k FROM t ORDER BY k').all()).toEqual([{ k: 'a' }, { k: 'c' }]);
  expect(syncs).toHaveLength(0);
});

test('one group per connection: the writes of two hot paths made in one turn share one commit and one fsync', async () => {
  const { db, syncs, write, insert } = setup();
  const other = groupCommit(db, new SerialQueue(), new WalSync('y-wal', () => Promise.reject(new Error('not this one'))));
  expect(other).toBe(write);
  const done = Promise.all([write(() => insert.run('a').changes), other(() => insert.run('b').changes)]);
  await turns();
  expect(syncs).toHaveLength(1);
  syncs.shift()!();
  await expect(done).resolves.toEqual([1, 1]);
  expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 2 });
});
