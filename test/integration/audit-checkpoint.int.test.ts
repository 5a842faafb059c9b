/**
 * Signed audit checkpoints (docs/audit.md): whatever is done to the audit
 * log in the database after a checkpoint (an event edited, deleted, inserted
 * or reordered, the tail cut, the chain recomputed), `trellis audit verify`
 * fails and names the event; a forged checkpoint is refused; OpenSSL alone
 * verifies a checkpoint file the way the docs say.
 */
import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { chainHash, genesisHash } from '../../src/audit/audit-log.js';
import { decodeCheckpointFile, encodeCheckpointFile, eventDigest, formatCheckpoint, parseCheckpoint } from '../../src/audit/checkpoint.js';
import { currentAuditSigner } from '../../src/cmd/audit-signer.js';
import { serve, type Serving } from '../../src/cmd/server.js';
import { openInstance } from '../../src/cmd/instance.js';
import { silentLogger } from '../../src/http/log.js';
import { derFromPemOrDer } from '../../src/pki/pem.js';
import { cliFor } from '../helpers/cli.js';
import { openssl, tempDir } from '../helpers/openssl.js';
import { testPassphrase, testPki, testRootPassphrase, type TestPki } from '../helpers/test-pki.js';

let base: TestPki | undefined;
let server: Serving | undefined;
const clones: { cleanup(): void }[] = [];
afterEach(async () => {
  await server?.close();
  server = undefined;
  for (const c of clones.splice(0)) c.cleanup();
});
afterAll(async () => {
  await base?.close();
});

/**
 * One test instance with an audit signer and 20 more events, made once. The
 * one place the root is unlocked: `trellis audit signer create` with the root
 * passphrase, unless init already made the signer.
 */
beforeAll(async () => {
  base = await testPki();
  if (!(await currentAuditSigner(base.instance))) {
    const r = await cliFor(base.dataDir, testPassphrase)(['audit', 'signer', 'create'], { TRELLIS_ROOT_PASSPHRASE: testRootPassphrase });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  }
  for (let i = 0; i < 20; i++) await base.instance.audit.record('test.event', 'test', { i });
  // Closed (WAL folded into the file) so that each test can copy the data directory.
  await base.instance.close();
});

type Trellis = ReturnType<typeof cliFor>;
interface Clone {
  dir: string;
  dataDir: string;
  rootPemPath: string;
  trellis: Trellis;
  file(name: string): string;
  /** Appends events through the audit log, as the server would. */
  record(n: number): Promise<void>;
}

/** A private copy of the base instance for one test to tamper with. */
function audited(): Clone {
  const tmp = tempDir();
  clones.push(tmp);
  const dataDir = path.join(tmp.dir, 'data');
  fs.cpSync(base!.dataDir, dataDir, { recursive: true });
  fs.copyFileSync(base!.rootPemPath, tmp.file('root.pem'));
  return {
    dir: tmp.dir,
    dataDir,
    rootPemPath: tmp.file('root.pem'),
    trellis: cliFor(dataDir, testPassphrase),
    file: tmp.file,
    async record(n) {
      const instance = await openInstance(dataDir);
      try {
        for (let i = 0; i < n; i++) await instance.audit.record('test.event', 'test', { more: i });
      } finally {
        await instance.close();
      }
    },
  };
}

/** Runs `fn` on the instance's SQLite database, as anyone who can write the file could. */
function tamper(p: { dataDir: string }, fn: (db: Database.Database) => void): void {
  const db = new Database(path.join(p.dataDir, 'trellis.db'));
  try {
    db.transaction(() => fn(db))();
  } finally {
    db.close();
  }
}

interface Row {
  seq: number;
  at: string;
  type: string;
  actor: string;
  data: string;
}

/** Rewrites the whole chain over `rows` (renumbered 1..n), as an attacker who knows the formula would. */
function rewriteChain(db: Database.Database, rows: Row[]): void {
  db.prepare('DELETE FROM "AuditEvent"').run();
  const insert = db.prepare('INSERT INTO "AuditEvent" ("seq","at","type","actor","data","prevHash","hash") VALUES (?,?,?,?,?,?,?)');
  let prev = genesisHash;
  rows.forEach((r, i) => {
    const hash = chainHash(prev, i + 1, { at: new Date(r.at), type: r.type, actor: r.actor }, r.data);
    insert.run(i + 1, r.at, r.type, r.actor, r.data, prev, hash);
    prev = hash;
  });
}

const allRows = (db: Database.Database) => db.prepare('SELECT "seq","at","type","actor","data" FROM "AuditEvent" ORDER BY "seq"').all() as Row[];
const lastSeq = (p: { dataDir: string }) => {
  const db = new Database(path.join(p.dataDir, 'trellis.db'), { readonly: true });
  try {
    return (db.prepare('SELECT MAX("seq") AS n FROM "AuditEvent"').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

async function verifyJson(trellis: Trellis, args: string[] = []) {
  const r = await trellis(['audit', 'verify', '--json', ...args]);
  return { ...r, result: JSON.parse(r.stdout) as { ok: boolean; events: number; first: { seq: number; change: string; by: string; detail: string } | null; findings: { seq: number | null; change: string; by: string; detail: string }[] } };
}

describe('an intact log', () => {
  test('verifies with its checkpoints, and says so', async () => {
    const { trellis, file } = audited();
    expect((await trellis(['audit', 'checkpoint', '--out', file('cp.pem')])).code).toBe(0);
    const r = await trellis(['audit', 'verify', '--checkpoint', file('cp.pem')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^audit log intact: \d+ events; 2 checkpoints verified and extended/);
  });

  test('without any checkpoint verifies with a warning that the tail is unprotected', async () => {
    const { trellis } = audited();
    const r = await trellis(['audit', 'verify']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^warning: no signed checkpoint yet/);
  });
});

// Each case edits the database after a checkpoint over events 1..n (n = init's events + 20) was taken.
const k = 7;
const cases: [string, (db: Database.Database, n: number) => void, { seq: (n: number) => number; change: string; chainAlone: boolean }][] = [
  ['an edited event (chain not recomputed)', (db) => db.prepare(`UPDATE "AuditEvent" SET "data" = '{"forged":true}' WHERE "seq" = ?`).run(k), { seq: () => k, change: 'changed', chainAlone: true }],
  ['a deleted middle event', (db) => db.prepare('DELETE FROM "AuditEvent" WHERE "seq" = ?').run(k), { seq: () => k, change: 'removed', chainAlone: true }],
  [
    'two events swapped',
    (db) => {
      const move = db.prepare('UPDATE "AuditEvent" SET "seq" = ? WHERE "seq" = ?');
      move.run(-1, k);
      move.run(k, k + 1);
      move.run(k + 1, -1);
    },
    { seq: () => k, change: 'reordered', chainAlone: true },
  ],
  ['the newest events deleted', (db, n) => db.prepare('DELETE FROM "AuditEvent" WHERE "seq" > ?').run(n - 3), { seq: (n) => n - 2, change: 'cut', chainAlone: false }],
  ['events dropped and the whole chain recomputed', (db) => rewriteChain(db, allRows(db).filter((r) => r.seq !== k && r.seq !== k + 1)), { seq: () => k, change: 'removed', chainAlone: false }],
  ['an event edited and the whole chain recomputed', (db) => rewriteChain(db, allRows(db).map((r) => (r.seq === k ? { ...r, data: '{"forged":true}' } : r))), { seq: () => k, change: 'changed', chainAlone: false }],
  [
    'an event inserted and the whole chain recomputed',
    (db) => {
      const rows = allRows(db);
      rewriteChain(db, [...rows.slice(0, k - 1), { ...rows[k - 1]!, type: 'certificate.issued', data: '{"serialHex":"0bad"}' }, ...rows.slice(k - 1)]);
    },
    { seq: () => k, change: 'inserted', chainAlone: false },
  ],
  [
    'two events swapped and the whole chain recomputed',
    (db) => {
      const rows = allRows(db);
      rewriteChain(db, [...rows.slice(0, k - 1), rows[k]!, rows[k - 1]!, ...rows.slice(k + 1)]);
    },
    { seq: () => k, change: 'reordered', chainAlone: false },
  ],
];

describe.each(cases)('after a checkpoint, %s', (_name, edit, expected) => {
  test('is named by the stored checkpoints, and by the checkpoint file once those are deleted too', async () => {
    const p = audited();
    const { trellis, file } = p;
    expect((await trellis(['audit', 'checkpoint', '--out', file('before.pem')])).code).toBe(0);
    const n = lastSeq(p);
    tamper(p, (db) => edit(db, n));

    const stored = await verifyJson(trellis);
    expect(stored.code).toBe(1);
    expect(stored.result.ok).toBe(false);
    expect(stored.result.first).toMatchObject({ seq: expected.seq(n), change: expected.change });
    expect(stored.stderr.split('\n')[0]).toMatch(new RegExp(`^audit log broken at event ${expected.seq(n)}: `));
    if (!expected.chainAlone) expect(stored.result.findings.some((f) => f.by === 'chain')).toBe(false);

    // Whoever rewrote the log deletes the stored checkpoints as well: the file kept elsewhere still names the event.
    tamper(p, (db) => db.prepare('DELETE FROM "AuditCheckpoint"').run());
    const withFile = await verifyJson(trellis, ['--checkpoint', file('before.pem')]);
    expect(withFile.code).toBe(1);
    expect(withFile.result.first).toMatchObject({ seq: expected.seq(n), change: expected.change });
    if (!expected.chainAlone) expect((await trellis(['audit', 'verify'])).code).toBe(0); // why checkpoint files must live elsewhere
  });
});

describe('checkpoints that cannot be trusted', () => {
  test('a stored checkpoint whose text was changed after signing is refused', async () => {
    const p = audited();
    const { trellis } = p;
    expect((await trellis(['audit', 'checkpoint'])).code).toBe(0);
    tamper(p, (db) => {
      const row = db.prepare('SELECT "id","body" FROM "AuditCheckpoint" ORDER BY "id" DESC LIMIT 1').get() as { id: number; body: string };
      const s = parseCheckpoint(row.body);
      db.prepare('UPDATE "AuditCheckpoint" SET "body" = ? WHERE "id" = ?').run(formatCheckpoint({ ...s, time: new Date(s.time.getTime() + 1) }), row.id);
    });
    const r = await verifyJson(trellis);
    expect(r.code).toBe(1);
    expect(r.result.findings).toContainEqual(expect.objectContaining({ seq: null, change: 'badCheckpoint', detail: expect.stringMatching(/the signature does not verify with the audit certificate/) }));
    expect(r.stderr).toMatch(/^audit checkpoint problem: checkpoint #\d+: the signature does not verify/m);
  });

  test('a checkpoint file signed by a key the root never certified is refused', async () => {
    const p = audited();
    const { trellis, file } = p;
    expect((await trellis(['audit', 'checkpoint', '--out', file('real.pem')])).code).toBe(0);
    // The forger cuts the last 3 events and signs a matching checkpoint with a self-made "audit signer".
    tamper(p, (db) => rewriteChain(db, allRows(db).slice(0, -3)));
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=Trellis Audit Signer', '-days', '30', '-keyout', file('forger.key'), '-out', file('forger.pem'));
    const real = parseCheckpoint(decodeCheckpointFile(fs.readFileSync(file('real.pem'), 'utf8')).body);
    const db = new Database(path.join(p.dataDir, 'trellis.db'), { readonly: true });
    const rows = db.prepare('SELECT "at","type","actor","data","hash" FROM "AuditEvent" ORDER BY "seq"').all() as (Row & { hash: string })[];
    db.close();
    const body = formatCheckpoint({ events: rows.length, head: rows.at(-1)!.hash, time: real.time, base: 0, baseHash: genesisHash, digests: rows.map((r) => eventDigest({ ...r, at: new Date(r.at) })) });
    fs.writeFileSync(file('forged-body.txt'), body);
    await openssl('dgst', '-sha256', '-sign', file('forger.key'), '-out', file('forged.sig'), file('forged-body.txt'));
    fs.writeFileSync(file('forged.pem'), encodeCheckpointFile({ body, signature: fs.readFileSync(file('forged.sig')), certDer: derFromPemOrDer(fs.readFileSync(file('forger.pem')), ['CERTIFICATE'], 'certificate') }));
    tamper(p, (d) => d.prepare('DELETE FROM "AuditCheckpoint"').run());

    const r = await verifyJson(trellis, ['--checkpoint', file('forged.pem')]);
    expect(r.code).toBe(1);
    expect(r.result.findings).toEqual([expect.objectContaining({ change: 'badCheckpoint', by: file('forged.pem'), detail: expect.stringMatching(/is not signed by the root/) })]);
    // The real checkpoint, kept elsewhere, names the cut.
    const real2 = await verifyJson(trellis, ['--checkpoint', file('real.pem')]);
    expect(real2.result.first).toMatchObject({ change: 'cut' });
  });

  test('a deleted stored checkpoint leaves a gap that verify reports', async () => {
    const p = audited();
    const { trellis } = p;
    for (let i = 0; i < 3; i++) {
      await p.record(1);
      expect((await trellis(['audit', 'checkpoint'])).code).toBe(0);
    }
    tamper(p, (db) => db.prepare('DELETE FROM "AuditCheckpoint" WHERE "id" = (SELECT "id" FROM "AuditCheckpoint" ORDER BY "eventCount" LIMIT 1 OFFSET 1)').run());
    const r = await verifyJson(trellis);
    expect(r.code).toBe(1);
    expect(r.result.findings).toEqual([expect.objectContaining({ seq: null, change: 'missingCheckpoint', detail: expect.stringMatching(/^no stored checkpoint covers events \d+\.\.\d+/) })]);
  });
});

describe('checkpoint files', () => {
  test('verify by hand with OpenSSL exactly as docs/audit.md says', async () => {
    const p = audited();
    const { trellis, file } = p;
    const made = await trellis(['audit', 'checkpoint', '--out', file('checkpoint.pem')]);
    expect(made.stdout).toMatch(/^checkpoint over \d+ events \(head [0-9a-f]{64}\) written to /);
    const docs = fs.readFileSync(path.join(import.meta.dirname, '../../docs/audit.md'), 'utf8');
    const script = /```sh\n(openssl verify[\s\S]*?)```/.exec(docs)![1]!;
    const run = await sh(script, p.dir);
    expect(run.stdout + run.stderr).toMatch(/checkpoint\.pem: OK/);
    expect(run.stdout + run.stderr).toMatch(/Verified OK/);
    expect(run.code).toBe(0);

    const body = fs.readFileSync(file('body.txt'), 'utf8');
    const s = parseCheckpoint(body);
    const db = new Database(path.join(p.dataDir, 'trellis.db'), { readonly: true });
    const head = db.prepare('SELECT "seq","hash" FROM "AuditEvent" ORDER BY "seq" DESC LIMIT 1').get() as { seq: number; hash: string };
    db.close();
    expect(s).toMatchObject({ events: head.seq, head: head.hash, base: 0 });
    const text = await openssl('x509', '-in', file('checkpoint.pem'), '-noout', '-text');
    expect(text).toMatch(/Digital Signature, Non Repudiation/);
    expect(text).not.toMatch(/Extended Key Usage/);
    expect(text).toMatch(/Issuer: O ?= ?Trellis, CN ?= ?Trellis Root CA/);

    // One changed byte of the body and OpenSSL refuses it.
    fs.writeFileSync(file('body.txt'), body.replace(`events ${s.events}`, `events ${s.events + 1}`));
    const tampered = await sh('openssl dgst -sha256 -verify audit-pub.pem -signature sig.der body.txt', p.dir);
    expect(tampered.code).not.toBe(0);
    expect(tampered.stdout + tampered.stderr).toMatch(/Verification failure/);
  });

  test('audit checkpoint never overwrites a file, and prints the file without --out', async () => {
    const { trellis, file } = audited();
    fs.writeFileSync(file('exists.pem'), 'keep me');
    const r = await trellis(['audit', 'checkpoint', '--out', file('exists.pem')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/exists; checkpoint files are never overwritten/);
    expect(fs.readFileSync(file('exists.pem'), 'utf8')).toBe('keep me');
    const printed = await trellis(['audit', 'checkpoint']);
    expect(printed.code).toBe(0);
    expect(decodeCheckpointFile(printed.stdout).body).toMatch(/^trellis-audit-checkpoint v1\n/);
  });
});

describe('serve', () => {
  test('signs a checkpoint when it starts and serves the newest at GET /audit/checkpoint, 404 when there is none', async () => {
    const p = audited();
    const { trellis, file } = p;
    server = await serve({ dataDir: p.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger, accessLog: false });
    const res = await fetch(`${server.url}/audit/checkpoint`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-pem-file');
    const text = await res.text();
    const cp = decodeCheckpointFile(text);
    expect(parseCheckpoint(cp.body).events).toBe(lastSeq(p));
    fs.writeFileSync(file('served.pem'), text);
    expect((await openssl('verify', '-CAfile', p.rootPemPath, file('served.pem'))).trim()).toMatch(/served\.pem: OK$/);
    const r = await trellis(['audit', 'verify', '--checkpoint', file('served.pem')]);
    expect(r.code).toBe(0);

    tamper(p, (db) => db.prepare('DELETE FROM "AuditCheckpoint"').run());
    const none = await fetch(`${server.url}/audit/checkpoint`);
    expect(none.status).toBe(404);
    expect(none.headers.get('content-type')).toBe('application/problem+json');
    expect(await none.json()).toMatchObject({ status: 404, detail: 'no audit checkpoint has been signed yet' });
  });
});

describe('audit signer', () => {
  test('is certified by the root; a second one needs --rotate, and old checkpoints still verify', async () => {
    const p = audited();
    const { trellis } = p;
    const instance = await openInstance(p.dataDir);
    const first = await currentAuditSigner(instance).finally(() => instance.close());
    expect(first).toMatchObject({ issuerId: 'root', profile: 'audit-signer', status: 'valid' });
    expect(first!.keyId).toBeTruthy();
    expect((await trellis(['audit', 'checkpoint'])).code).toBe(0);

    const again = await trellis(['audit', 'signer', 'create'], { TRELLIS_ROOT_PASSPHRASE: testRootPassphrase });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/an audit signing certificate exists .*pass --rotate/);
    const wrongRoot = await trellis(['audit', 'signer', 'create', '--rotate'], { TRELLIS_ROOT_PASSPHRASE: 'not the root passphrase' });
    expect(wrongRoot.code).toBe(1);
    expect(wrongRoot.stderr).toMatch(/wrong root passphrase/);
    const rotated = await trellis(['audit', 'signer', 'create', '--rotate', '--json'], { TRELLIS_ROOT_PASSPHRASE: testRootPassphrase });
    expect(rotated.code).toBe(0);
    const { serialHex } = JSON.parse(rotated.stdout) as { serialHex: string };
    expect(serialHex).not.toBe(first!.serialHex);

    await p.record(1);
    const cp = await trellis(['audit', 'checkpoint', '--json']);
    expect(JSON.parse(cp.stdout)).toMatchObject({ signerSerialHex: serialHex });
    const r = await verifyJson(trellis);
    expect(r.code).toBe(0);
    expect(r.result).toMatchObject({ ok: true, checkpoints: { stored: 2, valid: 2, extended: 2 } });
  });
});

function sh(script: string, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('sh', ['-ec', script], { cwd, encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}
