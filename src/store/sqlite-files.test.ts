/**
 * The SQLite files of a store: private whatever the umask, no clear copy of
 * a secret left behind once it is sealed (issue 9 item 5), and durable
 * commits on every connection the store opens (item 6).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { openStore, openStoreInternals } from './open.js';
import { testSealer } from './testing/test-sealer.js';

const mode = (p: string) => fs.statSync(p).mode & 0o777;
/** Every file in `dir` (not below) with its mode. */
const modes = (dir: string) => Object.fromEntries(fs.readdirSync(dir).map((f) => [f, mode(path.join(dir, f))]));

let tmp: string;
let umask: number;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-sqlite-files-'));
  umask = process.umask(0);
});
afterAll(() => {
  process.umask(umask);
  fs.rmSync(tmp, { recursive: true, force: true });
});
afterEach(() => vi.restoreAllMocks());

describe('file modes', () => {
  test('a new database under umask 000: its directory 0700, the database, -wal, -shm and the migration lock 0600', async () => {
    const dir = path.join(tmp, 'fresh', 'data');
    const store = await openStore(`file:${path.join(dir, 'trellis.db')}`);
    try {
      // A write, so the -wal and -shm files exist.
      await store.acmeNonces.redeem('a-nonce', new Date(Date.now() + 60_000));
      expect(mode(dir)).toBe(0o700);
      expect(mode(path.dirname(dir))).toBe(0o700);
      const files = modes(dir);
      expect(Object.keys(files).sort()).toEqual(expect.arrayContaining(['trellis.db', 'trellis.db-shm', 'trellis.db-wal', 'trellis.db.migrate-lock']));
      for (const [f, m] of Object.entries(files)) expect([f, m.toString(8)]).toEqual([f, '600']);
    } finally {
      await store.close();
    }
  });

  test('an existing 0644 database with 0644 -wal and -shm in a 0755 directory: files set to 0600 at open, the directory kept and warned about once', async () => {
    const dir = path.join(tmp, 'reported');
    fs.mkdirSync(dir, { mode: 0o755 });
    const file = path.join(dir, 'trellis.db');
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    // An older Trellis (or a copy) left the files readable by everyone; a connection keeps -wal and -shm present.
    await (await openStore(`file:${file}`)).close();
    const old = new Database(file);
    old.exec('INSERT INTO "AcmeUsedNonce" ("nonce","expiresAt") VALUES (\'n\', \'2030-01-01T00:00:00.000+00:00\')');
    for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
    const store = await openStore(`file:${file}`);
    const again = await openStore(`file:${file}`, { migrate: false });
    try {
      for (const [f, m] of Object.entries(modes(dir))) expect([f, m.toString(8)]).toEqual([f, '600']);
      expect(mode(dir)).toBe(0o755);
      const warnings = stderr.mock.calls.map((c) => String(c[0])).filter((l) => l.includes(dir));
      expect(warnings).toEqual([`warning: database directory ${dir} is accessible by group or others (mode 0755); its files are private, but consider chmod 700 ${dir}\n`]);
    } finally {
      await again.close();
      await store.close();
      old.close();
    }
  });
});

describe('durable commits', () => {
  test('every connection the store opens runs synchronous = NORMAL (1) in WAL mode: the store syncs the WAL itself', async () => {
    const url = `file:${path.join(tmp, 'durable', 'trellis.db')}`;
    const { store, db, raw } = await openStoreInternals(url);
    const second = await openStoreInternals(url, { migrate: false });
    try {
      for (const s of [{ db, raw }, second]) {
        // Prisma's connection (repositories) and the raw one (issuance, ACME and audit hot paths).
        const viaPrisma = await s.db.$queryRawUnsafe<{ synchronous: number | bigint }[]>('PRAGMA synchronous');
        expect(Number(viaPrisma[0]!.synchronous)).toBe(1);
        expect(s.raw!.pragma('synchronous', { simple: true })).toBe(1);
        expect(s.raw!.pragma('journal_mode', { simple: true })).toBe('wal');
      }
    } finally {
      await second.store.close();
      await store.close();
    }
  });

  test('a write resolves only after the WAL was fdatasync-ed, on every write path; a read syncs nothing', async () => {
    const file = path.join(tmp, 'fsync', 'trellis.db');
    const store = await openStore(`file:${file}`);
    // Watch FileHandle.datasync: which file, and hold it until released.
    const probe = await fs.promises.open(file, 'r');
    const proto = Object.getPrototypeOf(probe) as { datasync(this: fs.promises.FileHandle): Promise<void> };
    await probe.close();
    const original = proto.datasync;
    const synced: string[] = [];
    let release: () => void = () => {};
    let called: () => void = () => {};
    proto.datasync = async function (this: fs.promises.FileHandle) {
      synced.push(fs.readlinkSync(`/proc/self/fd/${this.fd}`));
      called();
      await new Promise<void>((r) => (release = r));
      return original.call(this);
    };
    /** Whether `p` settled by the time the sync it needs is held open (the sync must come first). */
    const settledBeforeSync = async <T>(p: Promise<T>) => {
      let done = false;
      void p.then(() => (done = true), () => (done = true));
      await new Promise<void>((r) => (called = r));
      return done;
    };
    try {
      const writes: [string, () => Promise<unknown>][] = [
        ['Prisma (tokens.insert)', () => store.tokens.insert({ id: 'tok_1', name: null, role: 'issuer', hashHex: 'ab'.repeat(32), profiles: null, expiresAt: null })],
        ['hot path (audit.append)', () => store.audit.append([{ at: new Date(), type: 't', actor: 'a', data: {} }], (prev, seq) => `${prev}${seq}`.padEnd(64, '0').slice(0, 64))],
        // ACME's writes resolve once committed; the ACME dispatcher holds each answer until durable() (acme/dispatch.ts).
        ['ACME group commit (nonces.redeem, then durable())', () => store.acmeNonces.redeem('nonce-1', new Date(Date.now() + 60_000)).then(() => store.acmeNonces.durable!())],
      ];
      for (const [what, write] of writes) {
        synced.length = 0;
        const p = write();
        expect([what, await settledBeforeSync(p)]).toEqual([what, false]);
        for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
        expect([what, 'still waiting', await Promise.race([p.then(() => true), new Promise((r) => setImmediate(() => r(false)))])]).toEqual([what, 'still waiting', false]);
        expect(synced).toEqual([`${file}-wal`]);
        release();
        await p;
      }
      synced.length = 0;
      await store.tokens.list();
      expect(synced).toEqual([]);
    } finally {
      proto.datasync = original;
      release();
      await store.close();
    }
  });
});

describe('sealing secrets stored in clear', () => {
  test('leaves no clear copy in trellis.db or its -wal (the old cell space is zeroed, the WAL checkpointed)', async () => {
    const file = path.join(tmp, 'legacy', 'trellis.db');
    const hmac = Buffer.from('an EAB key stored in clear by v1');
    const nonceKey = Buffer.from('the nonce key stored in clear v1');
    const { store, db } = await openStoreInternals(`file:${file}`);
    try {
      await db.acmeEabKey.create({ data: { keyId: 'kid-old', hmacKey: new Uint8Array(hmac), directory: null, createdAt: new Date() } });
      await db.instanceSecret.create({ data: { name: 'acme-nonce-hmac', value: new Uint8Array(nonceKey) } });
      const onDisk = () => Buffer.concat(['', '-wal'].filter((s) => fs.existsSync(file + s)).map((s) => fs.readFileSync(file + s)));
      expect(onDisk().includes(hmac) && onDisk().includes(nonceKey)).toBe(true);
      expect(await store.sealSecrets(testSealer())).toBe(2);
      expect(onDisk().includes(hmac)).toBe(false);
      expect(onDisk().includes(nonceKey)).toBe(false);
    } finally {
      await store.close();
    }
  });
});
