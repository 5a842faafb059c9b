/**
 * Issue 9 item 5, as an operator runs Trellis (compiled CLI, umask 000, serve
 * with two workers): every file in the data directory is private, a
 * passphrase file others can read is refused, and the database never holds
 * an EAB HMAC key or the ACME nonce key in clear, neither in trellis.db nor
 * in its -wal, while a key stored in clear by an older version still works
 * and gets sealed.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { unlockIssuers, keystoreFor, openInstance } from '../../src/cmd/instance.js';
import { AcmeClient } from '../helpers/acme-client.js';
import { freePort } from '../helpers/lego.js';
import { tempDir } from '../helpers/openssl.js';

const bin = path.join(import.meta.dirname, '../../bin/trellis.js');
const tmp = tempDir('trellis-private-');
const data = path.join(tmp.dir, 'new', 'data');
const passphrase = 'private data online passphrase';
const rootPassphrase = 'private data root passphrase';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function trellis(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, TRELLIS_PASSPHRASE: passphrase, TRELLIS_DATA: data, ...env };
  for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: childEnv, encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** Every file and directory under `dir` with its permission bits, as octal text. */
function modesUnder(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out[path.relative(data, p) + (e.isDirectory() ? '/' : '')] = (fs.statSync(p).mode & 0o777).toString(8);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** The database's bytes as they are on disk now: the main file and the write-ahead log. */
const dbFiles = () => ['trellis.db', 'trellis.db-wal'].map((f) => ({ f, bytes: fs.readFileSync(path.join(data, f)) }));

/** A nonce straight from the server on a fresh connection (rr scheduling spreads them over the workers). */
function freshNonce(base: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/acme/new-nonce`, { method: 'HEAD', agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      const nonce = res.headers['replay-nonce'];
      if (typeof nonce === 'string') resolve(nonce);
      else reject(new Error(`no Replay-Nonce (status ${res.statusCode})`));
    });
    req.on('error', reject);
    req.end();
  });
}

let umask: number;
let server: ChildProcess;
let serverOutput = '';
let base: string;
beforeAll(async () => {
  // The loosest umask an operator could have: nothing Trellis writes may depend on it.
  umask = process.umask(0);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const init = await trellis(['init', '--yes', '--base-url', base], { TRELLIS_ROOT_PASSPHRASE: rootPassphrase });
  expect(init.stderr).toBe('');
  expect(init.code).toBe(0);
  const configPath = path.join(data, 'trellis.json');
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  fs.writeFileSync(configPath, JSON.stringify({ ...config, acme: { externalAccountRequired: ['server'] } }, null, 2));
  server = spawn(process.execPath, [bin, 'serve', '--port', String(port), '--workers', '2'], {
    env: { ...process.env, TRELLIS_PASSPHRASE: passphrase, TRELLIS_DATA: data, NODE_CLUSTER_SCHED_POLICY: 'rr', TRELLIS_ACCESS_LOG: 'off' },
  });
  server.stdout!.on('data', (d) => (serverOutput += d));
  await new Promise<void>((resolve, reject) => {
    server.stderr!.on('data', (d) => {
      serverOutput += d;
      if (/serving on/.test(serverOutput)) resolve();
    });
    server.once('exit', (code) => reject(new Error(`serve exited ${code}: ${serverOutput}`)));
  });
}, 120_000);
afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  process.umask(umask);
  tmp.cleanup();
});

describe('sealed secrets in the database', () => {
  test('an EAB key from `acme eab create` (beside the running server) works in either worker, and its bytes are nowhere in trellis.db or its -wal', async () => {
    const r = await trellis(['acme', 'eab', 'create', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const eab = JSON.parse(r.stdout) as { keyId: string; hmacKey: string };
    const hmac = Buffer.from(eab.hmacKey, 'base64url');
    expect(hmac.length).toBe(32);
    const c = await AcmeClient.create({ directoryUrl: `${base}/acme/directory` });
    const created = await c.newAccount({ eab: { kid: eab.keyId, hmacKey: eab.hmacKey } });
    c.close();
    expect(created.status, created.text).toBe(201);
    for (const { f, bytes } of dbFiles()) {
      expect(bytes.includes(hmac), `${f} holds the EAB HMAC key`).toBe(false);
      expect(bytes.includes(Buffer.from(eab.hmacKey)), `${f} holds the EAB HMAC key as text`).toBe(false);
    }
  });

  test('the ACME nonce key: every worker signs nonces with it, and its bytes are nowhere in trellis.db or its -wal', async () => {
    const nonces = await Promise.all(Array.from({ length: 6 }, () => freshNonce(base)));
    // The key as the online passphrase opens it, through the same code serve runs.
    const instance = await openInstance(data);
    let key: Buffer;
    try {
      await unlockIssuers(instance, keystoreFor(instance, passphrase));
      key = await instance.store.secrets.getOrCreate('acme-nonce-hmac', () => {
        throw new Error('serve should have created the nonce key');
      });
    } finally {
      await instance.close();
    }
    // Nonce = 16 octets of body, then HMAC-SHA-256(key, body)[0..16] (src/ra/acme/nonces.ts): this is the key serve uses.
    for (const n of nonces) {
      const raw = Buffer.from(n, 'base64url');
      expect(createHmac('sha256', key).update(raw.subarray(0, 16)).digest().subarray(0, 16).equals(raw.subarray(16))).toBe(true);
    }
    for (const { f, bytes } of dbFiles()) expect(bytes.includes(key), `${f} holds the nonce key`).toBe(false);
    expect(serverOutput).not.toMatch(/worker exited/);
  });

  test('an EAB key stored in clear by an older version still works, and is sealed in the database once the server has used it', async () => {
    const keyId = `kid-legacy-${randomBytes(4).toString('hex')}`;
    const hmac = randomBytes(32);
    const db = new Database(path.join(data, 'trellis.db'));
    try {
      db.prepare('INSERT INTO "AcmeEabKey" ("keyId","hmacKey","directory","createdAt") VALUES (?, ?, NULL, ?)').run(keyId, hmac, new Date().toISOString().replace('Z', '+00:00'));
      const c = await AcmeClient.create({ directoryUrl: `${base}/acme/directory` });
      const created = await c.newAccount({ eab: { kid: keyId, hmacKey: hmac } });
      c.close();
      expect(created.status, created.text).toBe(201);
      const stored = (db.prepare('SELECT "hmacKey" FROM "AcmeEabKey" WHERE "keyId" = ?').get(keyId) as { hmacKey: Buffer }).hmacKey;
      expect(stored.subarray(0, 8).toString('latin1')).toBe('TRLSSEC\x01');
      expect(stored.includes(hmac)).toBe(false);
    } finally {
      db.close();
    }
  });

  test('`acme eab list` needs no passphrase and shows no key; `acme eab create` needs the online passphrase and refuses a wrong one', async () => {
    expect((await trellis(['acme', 'eab', 'create'])).code).toBe(0);
    const list = await trellis(['acme', 'eab', 'list', '--json'], { TRELLIS_PASSPHRASE: undefined });
    expect(list.code, list.stderr).toBe(0);
    const keys = JSON.parse(list.stdout) as Record<string, unknown>[];
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) expect(Object.keys(k)).not.toContain('hmacKey');
    const none = await trellis(['acme', 'eab', 'create', '--json'], { TRELLIS_PASSPHRASE: undefined });
    expect([none.code, none.stderr]).toEqual([1, expect.stringMatching(/no CA key passphrase: set TRELLIS_PASSPHRASE/)]);
    const wrong = await trellis(['acme', 'eab', 'create', '--json'], { TRELLIS_PASSPHRASE: 'not the online passphrase' });
    expect([wrong.code, wrong.stderr]).toEqual([1, expect.stringMatching(/wrong online passphrase/)]);
    expect(JSON.parse((await trellis(['acme', 'eab', 'list', '--json'])).stdout)).toHaveLength(keys.length);
  });

  test('rejects: a sealed EAB key copied onto another key id does not verify there (no account)', async () => {
    const r = await trellis(['acme', 'eab', 'create', '--json']);
    const eab = JSON.parse(r.stdout) as { keyId: string; hmacKey: string };
    const db = new Database(path.join(data, 'trellis.db'));
    const moved = `kid-moved-${randomBytes(4).toString('hex')}`;
    try {
      db.prepare('INSERT INTO "AcmeEabKey" ("keyId","hmacKey","directory","createdAt") SELECT ?, "hmacKey", NULL, "createdAt" FROM "AcmeEabKey" WHERE "keyId" = ?').run(moved, eab.keyId);
    } finally {
      db.close();
    }
    const c = await AcmeClient.create({ directoryUrl: `${base}/acme/directory` });
    const res = await c.newAccount({ eab: { kid: moved, hmacKey: eab.hmacKey } });
    c.close();
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.location).toBeUndefined();
  });
});

describe('passphrase files', () => {
  test('rejects: a group-readable --passphrase-file, naming the file and chmod 600; the same file at 0600 works', async () => {
    const file = tmp.file('online.pass');
    fs.writeFileSync(file, `${passphrase}\n`);
    fs.chmodSync(file, 0o640);
    const refused = await trellis(['acme', 'eab', 'create', '--json', '--passphrase-file', file], { TRELLIS_PASSPHRASE: undefined });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`passphrase file ${file} is accessible by group or others (mode 0640)`);
    expect(refused.stderr).toContain(`chmod 600 ${file}`);
    fs.chmodSync(file, 0o600);
    const ok = await trellis(['acme', 'eab', 'create', '--json', '--passphrase-file', file], { TRELLIS_PASSPHRASE: undefined });
    expect(ok.code, ok.stderr).toBe(0);
  });

  test('rejects: a world-readable --root-passphrase-file', async () => {
    const file = tmp.file('root.pass');
    fs.writeFileSync(file, `${rootPassphrase}\n`);
    fs.chmodSync(file, 0o604);
    const refused = await trellis(['crl', 'publish', '--root', '--root-passphrase-file', file, '--out', tmp.file('crls')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`passphrase file ${file} is accessible by group or others (mode 0604)`);
  });
});

describe('file modes', () => {
  test('every file in the data directory is 0600 and every directory 0700, after init, serve, eab create and crl publish under umask 000', async () => {
    const crl = await trellis(['crl', 'publish']);
    expect(crl.code, crl.stderr).toBe(0);
    const modes = modesUnder(data);
    expect(Object.keys(modes)).toEqual(expect.arrayContaining(['trellis.json', 'trellis.db', 'trellis.db-wal', 'trellis.db-shm', 'trellis.db.migrate-lock', 'profiles/', 'crl/']));
    const wrong = Object.entries(modes).filter(([p, m]) => m !== (p.endsWith('/') ? '700' : '600'));
    expect(wrong).toEqual([]);
    expect((fs.statSync(data).mode & 0o777).toString(8)).toBe('700');
  });
});
