/**
 * Crash leftovers (issue 9 item 12). A certificate becomes 'valid' only
 * together with its audit event; at start, `serve` settles what a stopped
 * process left half-done: intents still 'pending' after the grace period
 * become 'failed' (their serials stay used), and ACME orders stuck in
 * 'processing' become 'valid' when their certificate was stored, else
 * 'invalid'. Every settlement is audited. SQLite always; PostgreSQL when
 * TRELLIS_TEST_DATABASE_URL names a server (skips loudly otherwise).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CertificateIntent } from '../../src/ca/ports.js';
import { serve } from '../../src/cmd/server.js';
import { reconcileLeftovers } from '../../src/cmd/reconcile.js';
import { silentLogger } from '../../src/http/log.js';
import type { AcmeAccountRecord, AcmeAuthorizationRecord, AcmeOrderRecord } from '../../src/ra/acme/ports.js';
import { createToken } from '../../src/tokens/tokens.js';
import { makeCsr } from '../helpers/openssl.js';
import { freshPgDatabase, pgAvailable } from '../helpers/postgres.js';
import { testPassphrase, testPki, type TestPki } from '../helpers/test-pki.js';

const bin = path.join(import.meta.dirname, '../../bin/trellis.js');
const minutes = (n: number) => new Date(Date.now() - n * 60_000);

/** A database flavour: how to reach its rows from outside the store. */
interface Flavour {
  name: 'sqlite' | 'postgres';
  url(pki: TestPki): string;
  /** Runs one statement; returns its rows. */
  sql(pki: TestPki, text: string): Promise<Record<string, unknown>[]>;
  /** A time literal as the flavour stores it. */
  time(d: Date): string;
  /** A trigger that refuses audit events of `type`, and its removal. */
  refuse(type: string): string[];
  allow(): string[];
  databaseUrl?: string;
  drop?(): Promise<void>;
}

const sqlite: Flavour = {
  name: 'sqlite',
  url: (pki) => `file:${path.join(pki.dataDir, 'trellis.db')}`,
  async sql(pki, text) {
    const db = new Database(path.join(pki.dataDir, 'trellis.db'));
    try {
      const st = db.prepare(text);
      return st.reader ? (st.all() as Record<string, unknown>[]) : (st.run(), []);
    } finally {
      db.close();
    }
  },
  time: (d) => d.toISOString().replace('Z', '+00:00'),
  refuse: (type) => [`CREATE TRIGGER "test_refuse_audit" BEFORE INSERT ON "AuditEvent" WHEN NEW."type" = '${type}' BEGIN SELECT RAISE(ABORT, 'audit append refused by a test trigger'); END`],
  allow: () => ['DROP TRIGGER "test_refuse_audit"'],
};

function postgres(databaseUrl: string, drop: () => Promise<void>): Flavour {
  return {
    name: 'postgres',
    databaseUrl,
    drop,
    url: () => databaseUrl,
    async sql(_pki, text) {
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      try {
        return (await c.query(text)).rows as Record<string, unknown>[];
      } finally {
        await c.end();
      }
    },
    time: (d) => d.toISOString().replace('T', ' ').replace('Z', ''),
    refuse: (type) => [
      `CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW."type" = '${type}' THEN RAISE EXCEPTION 'audit append refused by a test trigger'; END IF; RETURN NEW; END $$`,
      `CREATE TRIGGER test_refuse_audit BEFORE INSERT ON "AuditEvent" FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()`,
    ],
    allow: () => ['DROP TRIGGER test_refuse_audit ON "AuditEvent"', 'DROP FUNCTION test_refuse_audit()'],
  };
}

const flavours: (() => Promise<Flavour>)[] = [async () => sqlite];
if (pgAvailable()) {
  flavours.push(async () => {
    const db = await freshPgDatabase();
    return postgres(db.url, db.drop);
  });
}

/** Audit events of `type`, parsed. */
async function events(pki: TestPki, type: string): Promise<{ actor: string; data: Record<string, unknown> }[]> {
  const all = await pki.instance.store.audit.range(1, 100_000);
  return all.filter((e) => e.type === type).map((e) => ({ actor: e.actor, data: JSON.parse(e.data) as Record<string, unknown> }));
}

describe.each(flavours.map((make, i) => ({ make, name: i === 0 ? 'sqlite' : 'postgres' })))('crash leftovers: $name', ({ make }) => {
  let flavour: Flavour;
  let pki: TestPki;
  let issuerId: string;
  const status = async (serialHex: string) => (await pki.instance.store.certificates.findBySerial(issuerId, serialHex))?.status;

  beforeAll(async () => {
    flavour = await make();
    pki = await testPki(flavour.databaseUrl ? { databaseUrl: flavour.databaseUrl } : {});
    issuerId = pki.instance.cas.find((c) => c.role === 'issuing')!.id;
  }, 60_000);
  afterAll(async () => {
    await pki?.close();
    await flavour?.drop?.();
  });

  test('a completion whose audit append the database refuses leaves the certificate pending and fails the request', async () => {
    const { csrPem } = await makeCsr(pki.dir, 'refused', '/CN=refused.example.test', { sans: 'DNS:refused.example.test' });
    const count = (s: 'valid' | 'pending') => pki.instance.store.certificates.count({ issuerId, status: s });
    const [valid, pending, issuedEvents] = [await count('valid'), await count('pending'), (await events(pki, 'certificate.issued')).length];
    for (const q of flavour.refuse('certificate.issued')) await flavour.sql(pki, q);
    try {
      await expect(pki.ra.requestCertificate({ profile: 'server', csr: csrPem, requestedVia: 'api', requestedBy: 'test' })).rejects.toThrow();
    } finally {
      for (const q of flavour.allow()) await flavour.sql(pki, q);
    }
    // Signed, but neither stored as valid nor handed out: the intent waits for the start-up reconciliation.
    expect(await count('valid')).toBe(valid);
    expect(await count('pending')).toBe(pending + 1);
    expect((await events(pki, 'certificate.issued')).length).toBe(issuedEvents);
    const again = await pki.ra.requestCertificate({ profile: 'server', csr: csrPem, requestedVia: 'api', requestedBy: 'test' });
    expect(await status(again.serialHex)).toBe('valid');
  });

  test('serve settles stale intents and ACME orders stuck in processing, and audits both; recent ones are left to their signer', async () => {
    const store = pki.instance.store;
    const intent = (over: Partial<CertificateIntent> = {}): CertificateIntent => ({
      issuerId,
      serialHex: randomBytes(16).toString('hex'),
      profile: 'server',
      subject: 'CN=left.example.test',
      sans: JSON.stringify([{ type: 'dns', value: 'left.example.test' }]),
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 86_400_000),
      lintDer: randomBytes(300),
      crlShard: 0,
      requestedVia: 'api',
      requestedBy: 'test',
      keyId: null,
      ...over,
    });
    const backdate = (table: 'Certificate' | 'AcmeOrder', column: string, key: string, at: Date) =>
      flavour.sql(pki, `UPDATE "${table}" SET "createdAt" = '${flavour.time(at)}' WHERE "${column}" = '${key}'`);

    // Certificate intents: one left by a process that stopped an hour ago, one a live signer recorded just now.
    const stale = intent();
    const recent = intent();
    await store.certificates.insertIntents([stale, recent]);
    await backdate('Certificate', 'serialHex', stale.serialHex, minutes(60));

    // ACME: an account, and orders moved to processing by finalize calls that never finished.
    const account: AcmeAccountRecord = {
      id: randomBytes(12).toString('base64url'),
      thumbprint: randomBytes(32).toString('base64url'),
      jwk: '{"crv":"P-256","kty":"EC","x":"x","y":"y"}',
      status: 'valid',
      contact: [],
      termsAgreed: true,
      eabKeyId: null,
      createdAt: minutes(120),
    };
    await store.acmeAccounts.createOrGet(account);
    const processing = async (name: string, createdAt: Date): Promise<AcmeOrderRecord> => {
      const z: AcmeAuthorizationRecord = {
        id: randomBytes(12).toString('base64url'),
        accountId: account.id,
        identifier: { type: 'dns', value: name },
        wildcard: false,
        status: 'valid',
        expires: new Date(Date.now() + 86_400_000),
        challenges: [],
        createdAt,
      };
      const o: AcmeOrderRecord = {
        id: randomBytes(12).toString('base64url'),
        accountId: account.id,
        profile: 'server',
        status: 'processing',
        expires: new Date(Date.now() + 86_400_000),
        identifiers: [{ type: 'dns', value: name }],
        authorizationIds: [z.id],
        notBefore: null,
        notAfter: null,
        error: null,
        issuerId: null,
        certificateSerial: null,
        replaces: null,
        createdAt,
      };
      await store.acmeOrders.createOrder(o, [z]);
      return o;
    };
    // 1. Crashed after its certificate was stored, before the order moved to valid.
    const stored = await processing('stored.example.test', minutes(30));
    const { csrPem } = await makeCsr(pki.dir, 'stored', '/CN=stored.example.test', { sans: 'DNS:stored.example.test' });
    const cert = await pki.ra.requestCertificate({ profile: 'server', csr: csrPem, requestedVia: 'acme', requestedBy: account.id });
    // 2. Crashed before its certificate was stored (its intent, if any, was the stale kind above).
    const lost = await processing('lost.example.test', minutes(30));
    // 3. An old order another node is finalizing right now: its intent was recorded a moment ago.
    const live = await processing('live.example.test', minutes(30));
    const liveIntent = intent({ requestedVia: 'acme', requestedBy: account.id, subject: 'CN=live.example.test', sans: JSON.stringify([{ type: 'dns', value: 'live.example.test' }]) });
    await store.certificates.insertIntents([liveIntent]);
    // 4. Created and finalized a moment ago.
    const young = await processing('young.example.test', minutes(1));
    // The orders' rows say when they were created (createOrder wrote the times above); the stored certificate is newer than its order.

    const serving = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger, accessLog: false, ...(flavour.databaseUrl ? { databaseUrl: flavour.databaseUrl } : {}) });
    try {
      expect(await status(stale.serialHex)).toBe('failed');
      expect(await status(recent.serialHex)).toBe('pending');
      expect(await status(liveIntent.serialHex)).toBe('pending');
      expect(await store.acmeOrders.findOrder(stored.id)).toMatchObject({ status: 'valid', issuerId: cert.issuerId, certificateSerial: cert.serialHex });
      expect(await store.acmeOrders.findOrder(lost.id)).toMatchObject({ status: 'invalid', error: { type: 'urn:ietf:params:acme:error:serverInternal' } });
      expect((await store.acmeOrders.findOrder(live.id))?.status).toBe('processing');
      expect((await store.acmeOrders.findOrder(young.id))?.status).toBe('processing');
      // The serial stays used: the issuer can never sign it again.
      await expect(store.certificates.insertIntents([intent({ serialHex: stale.serialHex })])).rejects.toThrow(/already used/);

      const abandoned = await events(pki, 'certificate.intents_abandoned');
      expect(abandoned).toHaveLength(1);
      expect(abandoned[0]!.data.certificates).toEqual([{ issuer: issuerId, serialHex: stale.serialHex }]);
      const settled = await events(pki, 'acme.orders_settled');
      expect(settled).toHaveLength(1);
      expect(settled[0]!.data).toMatchObject({ valid: [{ order: stored.id, issuer: cert.issuerId, serialHex: cert.serialHex }], invalid: [lost.id] });
      expect(await pki.instance.audit.verify()).toMatchObject({ ok: true });
    } finally {
      await serving.close();
    }
    // A second start finds nothing more to settle (and audits nothing).
    const again = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger, accessLog: false, ...(flavour.databaseUrl ? { databaseUrl: flavour.databaseUrl } : {}) });
    await again.close();
    expect(await events(pki, 'certificate.intents_abandoned')).toHaveLength(1);
    expect(await events(pki, 'acme.orders_settled')).toHaveLength(1);
  });
  test('an order gets the certificate its finalize stored: same account, profile and names, recorded after the order, no other order\'s; the periodic pass looks at the accounts whose intents it failed', async () => {
    const store = pki.instance.store;
    const acct = async () => {
      const a: AcmeAccountRecord = { id: randomBytes(12).toString('base64url'), thumbprint: randomBytes(32).toString('base64url'), jwk: '{}', status: 'valid', contact: [], termsAgreed: true, eabKeyId: null, createdAt: minutes(300) };
      await store.acmeAccounts.createOrGet(a);
      return a.id;
    };
    const order = async (accountId: string, names: string[], createdAt: Date, over: Partial<AcmeOrderRecord> = {}) => {
      const zs: AcmeAuthorizationRecord[] = names.map((value) => ({ id: randomBytes(12).toString('base64url'), accountId, identifier: { type: 'dns', value }, wildcard: false, status: 'valid', expires: new Date(Date.now() + 86_400_000), challenges: [], createdAt }));
      const o: AcmeOrderRecord = {
        id: randomBytes(12).toString('base64url'), accountId, profile: 'server', status: 'processing', expires: new Date(Date.now() + 86_400_000),
        identifiers: names.map((value) => ({ type: 'dns', value })), authorizationIds: zs.map((z) => z.id), notBefore: null, notAfter: null, error: null,
        issuerId: null, certificateSerial: null, replaces: null, createdAt, ...over,
      };
      await store.acmeOrders.createOrder(o, zs);
      return o;
    };
    /** A certificate row as finalize would leave it (the DER is a stand-in: only the rows are matched). */
    const cert = async (requestedBy: string, names: string[], over: Partial<CertificateIntent> = {}, state: 'valid' | 'pending' = 'valid') => {
      const i: CertificateIntent = {
        issuerId, serialHex: randomBytes(16).toString('hex'), profile: 'server', subject: '', sans: JSON.stringify(names.map((value) => ({ type: 'dns', value }))),
        notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000), lintDer: randomBytes(100), crlShard: 0, requestedVia: 'acme', requestedBy, keyId: null, ...over,
      };
      await store.certificates.insertIntents([i]);
      if (state === 'valid') await store.certificates.completeMany({ issued: [{ issuerId, serialHex: i.serialHex, der: randomBytes(100), issuedAt: new Date() }], failed: [] }, { drafts: [], chain: () => '' });
      return i.serialHex;
    };
    const backdate = (serialHex: string, at: Date) => flavour.sql(pki, `UPDATE "Certificate" SET "createdAt" = '${flavour.time(at)}' WHERE "serialHex" = '${serialHex}'`);

    const a = await acct();
    const p = await order(a, ['x.example.test'], minutes(60));
    await cert(a, ['x.example.test'], { profile: 'device' }); // another profile
    await cert(a, ['x.example.test', 'y.example.test']); // other names
    await cert(a, ['x.example.test'], { requestedVia: 'api' }); // not through ACME
    await cert(randomBytes(6).toString('hex'), ['x.example.test']); // another account
    await backdate(await cert(a, ['x.example.test']), minutes(90)); // before the order existed
    const claimed = await cert(a, ['x.example.test']);
    await order(a, ['x.example.test'], minutes(50), { status: 'valid', issuerId, certificateSerial: claimed }); // another order's certificate
    const mine = await cert(a, ['x.example.test']);

    // The periodic pass: only accounts whose intents it failed (here b's), through the account index.
    const b = await acct();
    const q = await order(b, ['q.example.test'], minutes(60));
    await backdate(await cert(b, ['q.example.test'], {}, 'pending'), minutes(59));
    const periodic = await reconcileLeftovers(pki.instance, { orders: 'abandoned' });
    expect(periodic.orders.map((o) => o.id)).toEqual([q.id]);
    expect((await store.acmeOrders.findOrder(q.id))?.status).toBe('invalid');
    expect((await store.acmeOrders.findOrder(p.id))?.status).toBe('processing');

    // The start-up pass: every order in processing.
    await reconcileLeftovers(pki.instance, { orders: 'all' });
    expect(await store.acmeOrders.findOrder(p.id)).toMatchObject({ status: 'valid', issuerId, certificateSerial: mine });
  });
});

describe('SIGKILL mid-issuance (the trellis CLI)', () => {
  let pki: TestPki;
  let token: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    pki = await testPki();
    token = (await createToken(pki.instance.store.tokens, 'issuer', 'crash-test')).secret;
  }, 60_000);
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await pki?.close();
  });

  const startServe = () =>
    new Promise<{ child: ChildProcess; url: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [bin, 'serve', '--port', '0'], { env: { ...process.env, TRELLIS_PASSPHRASE: testPassphrase, TRELLIS_DATA: pki.dataDir, TRELLIS_ACCESS_LOG: 'off' } });
      children.push(child);
      let err = '';
      child.stderr!.on('data', (d) => {
        err += d;
        const m = /serving on (http:\/\/\S+)/.exec(err);
        if (m) resolve({ child, url: m[1]! });
      });
      child.on('exit', (code, signal) => reject(new Error(`serve exited (${code ?? signal}): ${err}`)));
    });

  test('killed with requests in flight: every answered certificate is valid and audited, none is valid without its event, and the next start fails what was left pending', async () => {
    const { csrPem } = await makeCsr(pki.dir, 'flight', '/CN=flight.example.test', { sans: 'DNS:flight.example.test' });
    const { child, url } = await startServe();
    const answered: string[] = [];
    let refused = 0;
    let refusing: Promise<unknown> | undefined;
    let killed = false;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const one = async () => {
      const res = await fetch(`${url}/api/v1/certificates`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ profile: 'server', csr: csrPem }) });
      if (res.status === 201) answered.push(res.headers.get('location')!.split('/').pop()!);
      else if (res.status === 500 && refusing) refused++;
      else throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      // After 40 certificates the database starts refusing their audit events, so completions fail and
      // intents are left pending for sure; after 10 such failures the server is killed with requests in flight.
      if (answered.length >= 40 && !refusing) refusing = sqlite.sql(pki, sqlite.refuse('certificate.issued')[0]!);
      if (refused >= 10 && !killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    const loop = async () => {
      while (!killed) await one().catch((err: unknown) => {
        if (!killed) throw err;
      });
    };
    await Promise.all(Array.from({ length: 24 }, loop));
    await exited;
    await refusing;
    for (const q of sqlite.allow()) await sqlite.sql(pki, q);
    expect(answered.length).toBeGreaterThanOrEqual(40);

    const store = pki.instance.store;
    const issuerId = pki.instance.cas.find((c) => c.role === 'issuing')!.id;
    const issuedEvents = new Set((await events(pki, 'certificate.issued')).map((e) => e.data.serialHex as string));
    // Nothing handed out was lost.
    for (const serialHex of answered) {
      expect((await store.certificates.findBySerial(issuerId, serialHex))?.status).toBe('valid');
      expect(issuedEvents.has(serialHex)).toBe(true);
    }
    // A row is valid only with its event.
    const rows = (await sqlite.sql(pki, `SELECT "serialHex", "status" FROM "Certificate" WHERE "requestedBy" IS NOT NULL AND "requestedVia" = 'api'`)) as { serialHex: string; status: string }[];
    for (const r of rows.filter((x) => x.status === 'valid')) expect(issuedEvents.has(r.serialHex)).toBe(true);

    // What the killed process left pending is settled by the next start once it is older than the grace period.
    const pending = rows.filter((r) => r.status === 'pending').map((r) => r.serialHex);
    expect(pending.length).toBeGreaterThanOrEqual(10);
    await sqlite.sql(pki, `UPDATE "Certificate" SET "createdAt" = '${sqlite.time(minutes(11))}' WHERE "status" = 'pending'`);
    const next = await startServe();
    // Answering proves the start finished (and its SIGTERM handler is in place: the line on stderr comes just before it).
    expect((await fetch(`${next.url}/healthz`)).status).toBe(200);
    const stopped = new Promise<number | null>((r) => next.child.once('exit', (code) => r(code)));
    next.child.kill('SIGTERM');
    expect(await stopped).toBe(0);
    expect(await store.certificates.count({ issuerId, status: 'pending' })).toBe(0);
    for (const serialHex of pending) expect((await store.certificates.findBySerial(issuerId, serialHex))?.status).toBe('failed');
    const abandoned = (await events(pki, 'certificate.intents_abandoned')).flatMap((e) => (e.data.certificates as { serialHex: string }[]).map((c) => c.serialHex));
    expect(abandoned.sort()).toEqual([...pending].sort());
    expect(await pki.instance.audit.verify()).toMatchObject({ ok: true });
  });
});
