/** WalSync: a write resolves after a sync that started after its commit; concurrent writes share syncs. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { isReadOnlySql, WalSync } from './wal-sync.js';

/** A sync function whose calls are held until released, one by one. */
function heldSyncs() {
  const calls: (() => void)[] = [];
  return {
    calls,
    sync: () => new Promise<void>((r) => calls.push(r)),
    releaseNext: async () => {
      calls.shift()!();
      for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    },
  };
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

describe('WalSync', () => {
  test('one sync at a time: a commit made while a sync runs waits for the next sync; writes in one burst share it', async () => {
    const h = heldSyncs();
    const wal = new WalSync('x-wal', h.sync, 1);
    const done: string[] = [];
    void wal.after(Promise.resolve('a')).then((v) => done.push(v));
    await flush();
    expect(h.calls).toHaveLength(1);
    // b and c commit while a's sync runs: it does not cover them.
    void wal.after(Promise.resolve('b')).then((v) => done.push(v));
    void wal.after(Promise.resolve('c')).then((v) => done.push(v));
    await flush();
    expect(h.calls).toHaveLength(1);
    await h.releaseNext();
    expect(done).toEqual(['a']);
    // One more sync serves both.
    expect(h.calls).toHaveLength(1);
    await h.releaseNext();
    expect(done.sort()).toEqual(['a', 'b', 'c']);
    expect(h.calls).toHaveLength(0);
  });

  test('two syncs at a time: a commit made while a sync runs starts the second at once; a third waits for the newest, then starts one', async () => {
    const h = heldSyncs();
    const wal = new WalSync('x-wal', h.sync, 2);
    const done: string[] = [];
    void wal.after(Promise.resolve('a')).then((v) => done.push(v));
    await flush();
    void wal.after(Promise.resolve('b')).then((v) => done.push(v));
    await flush();
    expect(h.calls).toHaveLength(2);
    void wal.after(Promise.resolve('c')).then((v) => done.push(v));
    await flush();
    expect(h.calls).toHaveLength(2);
    // The newer sync (b's) ends first: it covers a and b, not c, which starts its own.
    h.calls.splice(1, 1)[0]!();
    await flush();
    expect(done).toEqual(['a', 'b']);
    expect(h.calls).toHaveLength(2);
    await h.releaseNext();
    expect(done).toEqual(['a', 'b']);
    await h.releaseNext();
    expect(done).toEqual(['a', 'b', 'c']);
  });

  test('a failed sync also fails a commit that waited for it without being covered', async () => {
    const h = heldSyncs();
    let fail = true;
    const wal = new WalSync('x-wal', () => (fail ? Promise.reject(new Error('EIO')) : h.sync()), 1);
    const a = wal.after(Promise.resolve('a'));
    const b = wal.after(Promise.resolve('b'));
    await expect(a).rejects.toThrow('EIO');
    await expect(b).rejects.toThrow('EIO');
    fail = false;
    const c = wal.after(Promise.resolve('c'));
    await flush();
    await h.releaseNext();
    await expect(c).resolves.toBe('c');
  });

  test('a commit noted with committed() is durable after the next sync that starts after it; durable() covers every commit noted before it', async () => {
    const h = heldSyncs();
    const wal = new WalSync('x-wal', h.sync, 1);
    const done: string[] = [];
    const a = wal.committed();
    void wal.durableUpTo(a).then(() => done.push('a'));
    await flush();
    expect(h.calls).toHaveLength(1);
    // b commits while a's sync runs; the barrier taken after it waits for the sync after that one.
    wal.committed();
    void wal.durable().then(() => done.push('barrier'));
    await h.releaseNext();
    expect(done).toEqual(['a']);
    // a's ticket is covered already: no wait, no new sync.
    await wal.durableUpTo(a);
    await h.releaseNext();
    expect(done).toEqual(['a', 'barrier']);
    expect(h.calls).toHaveLength(0);
  });

  test('nothing written, nothing synced; a failed write is passed on without a sync', async () => {
    const h = heldSyncs();
    const wal = new WalSync('x-wal', h.sync);
    await wal.durable();
    await expect(wal.after(Promise.reject(new Error('constraint')))).rejects.toThrow('constraint');
    expect(h.calls).toHaveLength(0);
  });

  test('a failed sync fails the writes waiting for it, and the next write syncs again', async () => {
    let fail = true;
    const wal = new WalSync('x-wal', async () => {
      if (fail) throw new Error('EIO');
    });
    await expect(wal.after(Promise.resolve(1))).rejects.toThrow('EIO');
    fail = false;
    await expect(wal.after(Promise.resolve(2))).resolves.toBe(2);
  });

  test('only plain SELECT and PRAGMA count as reads', () => {
    expect(isReadOnlySql('SELECT 1')).toBe(true);
    expect(isReadOnlySql('  pragma synchronous')).toBe(true);
    expect(isReadOnlySql('INSERT INTO t VALUES (1) RETURNING id')).toBe(false);
    expect(isReadOnlySql('UPDATE t SET a = 1')).toBe(false);
    expect(isReadOnlySql('WITH x AS (SELECT 1) DELETE FROM t')).toBe(false);
  });
});

describe('WalSync on a real file', () => {
  test('no WAL yet is nothing to sync; once it exists the held handle syncs it; close, then a new handle', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-wal-'));
    try {
      const file = path.join(dir, 'db-wal');
      const wal = new WalSync(file);
      await expect(wal.after(Promise.resolve(1))).resolves.toBe(1);
      fs.writeFileSync(file, 'frames');
      await expect(wal.after(Promise.resolve(2))).resolves.toBe(2);
      await expect(wal.after(Promise.resolve(3))).resolves.toBe(3);
      await wal.close();
      await expect(wal.after(Promise.resolve(4))).resolves.toBe(4);
      await wal.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
