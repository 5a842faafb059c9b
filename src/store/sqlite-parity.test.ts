/**
 * On SQLite, the store answers many repository methods through prepared
 * statements (sqlite-hot-path.ts, sqlite-serving.ts) instead of Prisma. The
 * store contract (store.contract.test.ts) runs each flavour through its own
 * path, so on SQLite the Prisma repositories those statements replace never
 * run. Here both read the same database file, case by case: the store's
 * statements, and the Prisma repositories over a client with no hot path.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PrismaClient } from '../generated/sqlite/client.js';
import type { CertificateRepository } from '../ca/ports.js';
import type { CrlRepository } from '../crl/ports.js';
import { isPkiError } from '../errors/pki-error.js';
import { acmeOrderRepository } from './acme-order-repository.js';
import { auditCheckpointRepository } from './audit-checkpoint-repository.js';
import { auditRepository } from './audit-repository.js';
import { caRepository } from './ca-repository.js';
import { certificateRepository } from './certificate-repository.js';
import type { Db } from './client.js';
import { crlRepository } from './crl-repository.js';
import { prismaSecretRows } from './instance-secret-repository.js';
import { keyBlobRepository } from './key-blob-repository.js';
import { ocspResponseRepository } from './ocsp-repository.js';
import { openStoreInternals, type Store } from './open.js';
import { sqliteDate } from './sqlite-date.js';
import { sqliteServing } from './sqlite-serving.js';
import { SerialQueue } from './sqlite-serial.js';
import { tokenRepository } from './token-repository.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-parity-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The Prisma repositories over a client of their own: no hot path is attached to it. */
function prismaRepos(db: Db) {
  return {
    cas: caRepository(db),
    certificates: certificateRepository(db),
    keyBlobs: keyBlobRepository(db),
    tokens: tokenRepository(db),
    audit: auditRepository(db),
    auditCheckpoints: auditCheckpointRepository(db, 'sqlite'),
    crls: crlRepository(db),
    ocspResponses: ocspResponseRepository(db),
    acmeOrders: acmeOrderRepository(db, {} as never),
    secrets: prismaSecretRows(db),
  };
}

interface Pair {
  file: string;
  store: Store;
  raw: Database.Database;
  prisma: Db;
  p: ReturnType<typeof prismaRepos>;
}

async function openPair(): Promise<Pair> {
  const file = path.join(dir, `${randomBytes(6).toString('hex')}.db`);
  const { store, raw } = await openStoreInternals(`file:${file}`);
  const prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: file, timeout: 5000 }) }) as unknown as Db;
  return { file, store, raw: raw!, prisma, p: prismaRepos(prisma) };
}

async function closePair(x: Pair): Promise<void> {
  await x.prisma.$disconnect();
  await x.store.close();
}

const t0 = new Date('2026-01-02T03:04:05.678Z');
const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);
const iso = (seconds: number) => sqliteDate(at(seconds));

function insertCa(raw: Database.Database, id: string, over: { keyStateAt?: string | null; parentId?: string | null } = {}): void {
  raw
    .prepare(`INSERT INTO "CertificateAuthority" ("id","name","role","parentId","certDer","subject","skiHex","keyRef","keyState","keyStateAt","notBefore","notAfter","createdAt","updatedAt") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
    .run(id, `${id} name`, 'issuing', over.parentId ?? null, Buffer.from(`cert ${id}`), `CN=${id}`, 'aa', '{}', 'active', over.keyStateAt ?? null, iso(0), iso(86_400 * 365), iso(0), iso(0));
}

type CertRow = {
  issuerId: string;
  serialHex: string;
  profile?: string;
  status: 'pending' | 'valid' | 'revoked' | 'failed';
  notAfter?: string;
  crlShard?: number;
  keyId?: string | null;
  deviceId?: string | null;
  requestedVia?: string;
  requestedBy?: string | null;
  revokedAt?: string | null;
  revocationReason?: number | null;
  invalidityDate?: string | null;
  holdReleasedAt?: string | null;
  createdAt?: string;
  der?: Buffer | null;
  lintDer?: Buffer | null;
};

function insertCert(raw: Database.Database, c: CertRow): void {
  raw
    .prepare(
      `INSERT INTO "Certificate" ("issuerId","serialHex","profile","subject","sans","notBefore","notAfter","status","lintDer","der","crlShard","requestedVia","requestedBy","keyId","deviceId","revokedAt","revocationReason","invalidityDate","holdReleasedAt","createdAt")
       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
    )
    .run(
      c.issuerId, c.serialHex, c.profile ?? 'server', 'CN=x', '[]', iso(0), c.notAfter ?? iso(86_400), c.status, c.lintDer === undefined ? Buffer.from('tbs') : c.lintDer, c.der === undefined ? Buffer.from('der') : c.der,
      c.crlShard ?? 0, c.requestedVia ?? 'api', c.requestedBy === undefined ? 'token-1' : c.requestedBy, c.keyId ?? null, c.deviceId ?? null,
      c.revokedAt ?? null, c.revocationReason ?? null, c.invalidityDate ?? null, c.holdReleasedAt ?? null, c.createdAt ?? iso(0),
    );
}

const sorted = <T>(xs: T[], key: (x: T) => string) => [...xs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
async function collect(it: AsyncIterable<unknown[]>): Promise<unknown[][]> {
  const pages: unknown[][] = [];
  for await (const p of it) pages.push(p);
  return pages;
}

describe('reads: the store\'s statements and the Prisma repositories agree on one file', () => {
  let x: Pair;
  beforeAll(async () => {
    x = await openPair();
    const raw = x.raw;
    insertCa(raw, 'ca-b', { keyStateAt: iso(5) });
    insertCa(raw, 'ca-a', { parentId: 'ca-b' });
    insertCa(raw, 'ca-a-1');
    // Certificates: every status, shards, holds, devices, held keys with equal notAfter, and a burst of revocations in one millisecond.
    insertCert(raw, { issuerId: 'ca-a', serialHex: '01', status: 'valid', deviceId: 'dev-1', keyId: 'k1', profile: 'ocsp-responder', notAfter: iso(500) });
    insertCert(raw, { issuerId: 'ca-a', serialHex: '02', status: 'valid', deviceId: 'dev-1', keyId: 'k2', profile: 'ocsp-responder', notAfter: iso(500) });
    insertCert(raw, { issuerId: 'ca-a', serialHex: '03', status: 'valid', deviceId: 'dev-1', notAfter: iso(-1) });
    insertCert(raw, { issuerId: 'ca-a', serialHex: '04', status: 'pending', der: null, createdAt: iso(10) });
    insertCert(raw, { issuerId: 'ca-a', serialHex: '05', status: 'failed', der: null, lintDer: null, createdAt: iso(10) });
    for (let i = 0; i < 6; i++) insertCert(raw, { issuerId: 'ca-a', serialHex: `1${i}`, status: 'revoked', crlShard: i % 2, revokedAt: iso(20), revocationReason: i === 0 ? null : 1, createdAt: iso(i) });
    insertCert(raw, { issuerId: 'ca-a', serialHex: '20', status: 'revoked', revokedAt: iso(30), revocationReason: 6, invalidityDate: iso(25), notAfter: iso(-5) });
    insertCert(raw, { issuerId: 'ca-a', serialHex: '21', status: 'valid', holdReleasedAt: iso(20), crlShard: 1 });
    insertCert(raw, { issuerId: 'ca-b', serialHex: '10', status: 'revoked', revokedAt: iso(40), revocationReason: 0 });
    insertCert(raw, { issuerId: 'ca-b', serialHex: '22', status: 'valid', holdReleasedAt: iso(40), requestedVia: 'acme', requestedBy: 'acct-1', createdAt: iso(3) });
    insertCert(raw, { issuerId: 'ca-b', serialHex: '23', status: 'valid', requestedVia: 'acme', requestedBy: 'acct-1', createdAt: iso(3) });
    insertCert(raw, { issuerId: 'ca-b', serialHex: '24', status: 'valid', requestedVia: 'acme', requestedBy: 'acct-1', createdAt: iso(2) });
  });
  afterAll(() => closePair(x));

  test('CAs: list and key states', async () => {
    expect(await x.store.cas.list()).toEqual(await x.p.cas.list());
    expect(await x.store.cas.keyStates()).toEqual(await x.p.cas.keyStates());
  });

  test('certificates: by serial, status, device, requester, held key', async () => {
    const s: CertificateRepository = x.store.certificates;
    const p = x.p.certificates;
    for (const [issuer, serialHex] of [['ca-a', '01'], ['ca-a', '04'], ['ca-a', '05'], ['ca-a', '20'], ['ca-b', '10'], ['ca-a', 'ff']] as const) {
      expect(await s.findBySerial(issuer, serialHex)).toEqual(await p.findBySerial(issuer, serialHex));
      expect(await s.statusOf(issuer, serialHex)).toEqual(await p.statusOf(issuer, serialHex));
    }
    for (const when of [at(-10), at(0), at(500)]) expect(await s.validForDevice('dev-1', when)).toEqual(await p.validForDevice('dev-1', when));
    for (const [since, limit] of [[at(0), 10], [at(2), 1], [at(3), 10], [at(4), 10]] as const) {
      expect(await s.findRequestedBy('acme', 'acct-1', since, limit)).toEqual(await p.findRequestedBy('acme', 'acct-1', since, limit));
    }
    expect(await s.latestHeld('ca-a', 'ocsp-responder')).toEqual(await p.latestHeld('ca-a', 'ocsp-responder'));
    expect(await s.latestHeld('ca-a', 'server')).toEqual(await p.latestHeld('ca-a', 'server'));
  });

  test('certificates: revoked entries and changes, per shard and whole', async () => {
    const s = x.store.certificates;
    const p = x.p.certificates;
    for (const shard of [null, 0, 1, 7]) {
      for (const pageSize of [1, 4, 10_000]) {
        expect(await collect(s.revokedEntries('ca-a', shard, { notAfterAfter: at(0), pageSize }))).toEqual(await collect(p.revokedEntries('ca-a', shard, { notAfterAfter: at(0), pageSize })));
      }
      for (const since of [at(0), at(20), at(25)]) expect(await s.changedSince('ca-a', shard, since)).toEqual(await p.changedSince('ca-a', shard, since));
    }
    for (const since of [new Date(0), at(20), at(30), at(40)]) {
      for (const limit of [1, 2, 7, 100]) {
        const key = (c: { issuerId: string; serialHex: string; at: Date }) => `${c.at.toISOString()}/${c.issuerId}/${c.serialHex}`;
        expect(sorted(await s.statusChangedSince(since, limit), key)).toEqual(sorted(await p.statusChangedSince(since, limit), key));
      }
    }
  });
});

describe('audit events, ACME orders in processing: the statements and Prisma agree on one file', () => {
  let x: Pair;
  beforeAll(async () => {
    x = await openPair();
    const raw = x.raw;
    for (let seq = 1; seq <= 5; seq++) raw.prepare(`INSERT INTO "AuditEvent" ("seq","at","type","actor","data","prevHash","hash") VALUES (?,?,?,?,?,?,?)`).run(seq === 4 ? 7 : seq, iso(seq), 't', 'a', `{"n":${seq}}`, `p${seq}`, `h${seq}`);
    raw.prepare(`INSERT INTO "AcmeAccount" ("id","thumbprint","jwk","status","contact","termsAgreed","createdAt") VALUES ('acct','tp','{}','valid','[]',1,?)`).run(iso(0));
    const order = raw.prepare(`INSERT INTO "AcmeOrder" ("id","accountId","profile","status","expires","identifiers","authorizationIds","notBefore","error","createdAt") VALUES (?,'acct','server',?,?,'[{"type":"dns","value":"a.test"}]','["z1"]',?,?,?)`);
    // Equal creation times are ordered by id.
    for (const [id, status, created] of [['o3', 'processing', 5], ['o1', 'processing', 5], ['o2', 'processing', 1], ['o4', 'valid', 1], ['o5', 'processing', 9]] as const) {
      order.run(id, status, iso(3600), id === 'o1' ? iso(0) : null, id === 'o2' ? '{"type":"urn:ietf:params:acme:error:serverInternal","detail":"x"}' : null, iso(created));
    }
  });
  afterAll(() => closePair(x));

  test('audit range and last, across a gap in seq', async () => {
    for (const [from, limit] of [[1, 10], [1, 2], [4, 1], [6, 5], [8, 5]] as const) expect(await x.store.audit.range(from, limit)).toEqual(await x.p.audit.range(from, limit));
    expect(await x.store.audit.last()).toEqual(await x.p.audit.last());
  });

  test('ACME orders in processing, oldest first, bounded', async () => {
    for (const [before, limit] of [[at(10), 10], [at(10), 2], [at(5), 10], [at(1), 10]] as const) expect(await x.store.acmeOrders.listProcessing(before, limit)).toEqual(await x.p.acmeOrders.listProcessing(before, limit));
  });
});

describe('CRLs: the store\'s statements and the Prisma repository agree on one file', () => {
  let x: Pair;
  const big = 2n ** 60n;
  beforeAll(async () => {
    x = await openPair();
    const row = (scope: string, crlNumber: bigint, baseCrlNumber: bigint | null = null) => ({ caId: 'ca-a', scope, crlNumber, baseCrlNumber, thisUpdate: at(Number(crlNumber % 1000n)), nextUpdate: at(3600), entries: 2, der: Buffer.from(`crl ${scope} ${crlNumber}`) });
    for (const r of [row('full', 1n), row('full', 4n), row('delta', 5n, 4n), row('shard-1', 2n), row('shard-1', 6n), row('full', big + 1n), row('delta', big + 2n, big + 1n)]) await x.store.crls.insert(r);
    await x.store.crls.insert({ ...row('full', 3n), caId: 'ca-b' });
  });
  afterAll(() => closePair(x));

  test('latest, latestAll and loadMany', async () => {
    const s: CrlRepository = x.store.crls;
    const p = x.p.crls;
    for (const [caId, scope] of [['ca-a', 'full'], ['ca-a', 'delta'], ['ca-a', 'shard-1'], ['ca-a', 'shard-2'], ['ca-b', 'full'], ['ca-c', 'full']] as const) {
      expect(await s.latest(caId, scope)).toEqual(await p.latest(caId, scope));
    }
    for (const caId of ['ca-a', 'ca-b', 'ca-c']) expect(await s.latestAll(caId)).toEqual(await p.latestAll(caId));
    const wanted = [
      { scope: 'full', crlNumber: 4n },
      { scope: 'full', crlNumber: big + 1n },
      { scope: 'delta', crlNumber: 4n },
      { scope: 'shard-1', crlNumber: 2n },
      { scope: 'full', crlNumber: 99n },
    ];
    const key = (c: { scope: string; crlNumber: bigint }) => `${c.scope}/${c.crlNumber}`;
    expect(sorted(await s.loadMany('ca-a', wanted), key)).toEqual(sorted(await p.loadMany('ca-a', wanted), key));
    expect(await s.loadMany('ca-a', [])).toEqual(await p.loadMany('ca-a', []));
  });
});

/** What a run of writes returned: values, or the PkiError type (or message) it threw. */
async function outcome(p: Promise<unknown>): Promise<unknown> {
  try {
    return { ok: await p };
  } catch (err) {
    return { threw: isPkiError(err) ? err.type : String(err) };
  }
}

/** Every row of `table` with the columns a write's own clock sets left out, in a stable order. */
function dump(raw: Database.Database, table: string, order: string): unknown[] {
  return (raw.prepare(`SELECT * FROM "${table}" ORDER BY ${order}`).safeIntegers(true).all() as Record<string, unknown>[]).map(({ createdAt: _c, ...r }) => r);
}

describe('writes: the same calls through the statements and through Prisma leave the same rows', () => {
  let fast: Pair;
  let slow: Pair;
  beforeAll(async () => {
    [fast, slow] = await Promise.all([openPair(), openPair()]);
  });
  afterAll(() => Promise.all([closePair(fast), closePair(slow)]));

  test('CRL numbers, leases, inserts and pruning', async () => {
    const run = async (crls: CrlRepository, raw: Database.Database) => {
      const out: unknown[] = [];
      for (let i = 0; i < 3; i++) out.push(await outcome(crls.nextCrlNumber('ca-a')));
      raw.prepare(`UPDATE "CrlSequence" SET "last"=? WHERE "caId"='ca-a'`).run(2n ** 53n + 5n);
      out.push(await outcome(crls.nextCrlNumber('ca-a')));
      const until = at(60);
      out.push(await outcome(crls.acquireLease('ca-a', 1, at(0), until)));
      out.push(await outcome(crls.acquireLease('ca-a', 2, at(1), until)));
      out.push(await outcome(crls.acquireLease('ca-a', 1, at(2), at(120))));
      out.push(await outcome(crls.releaseLease('ca-a', 2)));
      out.push(await outcome(crls.acquireLease('ca-a', 2, at(121), at(180))));
      out.push(await outcome(crls.releaseLease('ca-a', 2)));
      out.push(await outcome(crls.acquireLease('ca-a', 3, at(122), at(180))));
      out.push(await outcome(crls.acquireLease('ca-a', 0, at(122), at(180))));
      out.push(await outcome(crls.releaseLease('ca-a', 2 ** 21)));
      const crl = (scope: string, crlNumber: bigint) => ({ caId: 'ca-a', scope, crlNumber, baseCrlNumber: null, thisUpdate: at(0), nextUpdate: at(1), entries: 0, der: Buffer.from(`${scope}${crlNumber}`) });
      for (const [scope, n] of [['full', 1n], ['full', 2n], ['full', 3n], ['delta', 4n], ['delta', 5n], ['shard-0', 6n]] as const) out.push(await outcome(crls.insert(crl(scope, n))));
      out.push(await outcome(crls.insert(crl('full', 2n))));
      out.push(await outcome(crls.prune('ca-a', 2)));
      out.push(await outcome(crls.prune('ca-a', 1)));
      out.push(await outcome(crls.prune('ca-b', 1)));
      return { out, crls: dump(raw, 'Crl', '"id"'), seq: dump(raw, 'CrlSequence', '"caId"') };
    };
    const a = await run(fast.store.crls, fast.raw);
    expect(a).toEqual(await run(slow.p.crls, slow.raw));
  });

  test('tokens, OCSP responses, checkpoints, key blobs and instance secrets', async () => {
    type Side = Pick<Store, 'tokens' | 'ocspResponses' | 'auditCheckpoints' | 'keyBlobs'> & { secrets: ReturnType<typeof prismaSecretRows> };
    const run = async (side: Side, raw: Database.Database) => {
      const out: unknown[] = [];
      raw.prepare(`INSERT INTO "ApiToken" ("id","name","role","hashHex","profiles","createdAt") VALUES ('t1',NULL,'officer','aa','["server"]',?)`).run(iso(0));
      for (const [when, unlessAfter] of [[5, 0], [10, 5], [7, 8], [12, 9], [12, 12]] as const) {
        out.push(await outcome(side.tokens.touch('t1', at(when), at(unlessAfter))));
        out.push(await outcome(side.tokens.findByHash('aa')));
      }
      out.push(await outcome(side.tokens.touch('nobody', at(1), at(1))));
      const responses = Array.from({ length: 40 }, (_, i) => ({ issuerId: 'ca-a', serialHex: (i % 35).toString(16).padStart(2, '0'), der: Buffer.from(`ocsp ${i}`), thisUpdate: at(i), nextUpdate: at(i + 60) }));
      out.push(await outcome(side.ocspResponses.putMany(responses)));
      out.push(await outcome(side.ocspResponses.putMany([])));
      for (const serialHex of ['00', '04', '22', '99']) out.push(await outcome(side.ocspResponses.get('ca-a', serialHex)));
      const cp = (eventCount: number, body: string) => ({ eventCount, headHash: `h${eventCount}`, at: at(eventCount), body, signature: Buffer.from(body), signerSerialHex: '01' });
      out.push(await outcome(side.auditCheckpoints.latest()));
      out.push(await outcome(side.auditCheckpoints.addAfter(0, cp(3, 'a'))));
      out.push(await outcome(side.auditCheckpoints.addAfter(0, cp(4, 'b'))));
      out.push(await outcome(side.auditCheckpoints.addAfter(3, cp(3, 'c'))));
      out.push(await outcome(side.auditCheckpoints.addAfter(3, cp(9, 'd'))));
      out.push(await outcome(side.auditCheckpoints.latest()));
      out.push(await outcome(side.keyBlobs.insert({ id: 'k1', algorithm: 'P-256', envelope: '{}' })));
      out.push(await outcome(side.keyBlobs.insert({ id: 'k1', algorithm: 'P-384', envelope: '{"x":1}' })));
      out.push(await outcome(side.keyBlobs.find('k1').then((b) => b && { ...b, createdAt: typeof b.createdAt })));
      out.push(await outcome(side.keyBlobs.find('k2')));
      const [v1, v2, v3] = [Buffer.from('one'), Buffer.from('two'), Buffer.alloc(0)];
      out.push(await outcome(side.secrets.insertIfAbsent('s', v1)));
      out.push(await outcome(side.secrets.insertIfAbsent('s', v2)));
      out.push(await outcome(side.secrets.insertIfAbsent('empty', v3)));
      out.push(await outcome(side.secrets.replace('s', v2, v3)));
      out.push(await outcome(side.secrets.replace('s', v2, v1)));
      out.push(await outcome(side.secrets.replace('none', v2, v1)));
      out.push(await outcome(side.secrets.find('s')));
      out.push(await outcome(side.secrets.find('empty')));
      out.push(await outcome(side.secrets.find('none')));
      out.push(await outcome(side.secrets.all().then((all) => sorted(all, (r) => r.name))));
      return { out, tokens: dump(raw, 'ApiToken', '"id"'), ocsp: dump(raw, 'OcspResponse', '"issuerId","serialHex"'), cps: dump(raw, 'AuditCheckpoint', '"id"'), blobs: dump(raw, 'KeyBlob', '"id"'), secrets: dump(raw, 'InstanceSecret', '"name"') };
    };
    const serving = sqliteServing(fast.raw, new SerialQueue());
    const a = await run({ ...fast.store, secrets: serving.secrets }, fast.raw);
    expect(a).toEqual(await run(slow.p, slow.raw));
  });
});

/**
 * DateTime text Trellis never writes itself (every write uses sqliteDate's
 * form), but SQLite's own functions and column defaults do (CURRENT_TIMESTAMP,
 * datetime()), and so may a row edited by hand: Prisma reads text without a
 * zone as UTC. Run in a zone other than UTC, where local time would show.
 */
describe('DateTime text in other forms reads the same through the statements as through Prisma', () => {
  const forms: [string, string | number][] = [
    ['SQLite\'s CURRENT_TIMESTAMP form', '2026-01-02 03:04:05'],
    ['a space and milliseconds', '2026-01-02 03:04:05.678'],
    ['a T, no zone', '2026-01-02T03:04:05.678'],
    ['Z', '2026-01-02T03:04:05.678Z'],
    ['another offset', '2026-01-02T03:04:05.678+05:30'],
    ['an offset in hours', '2026-01-02T03:04:05-02'],
    ['a date alone', '2026-01-02'],
    ['milliseconds since 1970 (an integer)', 1767323045678],
  ];
  let x: Pair;
  let tz: string | undefined;
  beforeAll(async () => {
    tz = process.env.TZ;
    process.env.TZ = 'Asia/Kolkata';
    x = await openPair();
  });
  afterAll(async () => {
    await closePair(x);
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });

  test.each(forms)('%s', async (_name, stored) => {
    expect(new Date(2026, 0, 2).getTimezoneOffset()).toBe(-330);
    const raw = x.raw;
    for (const table of ['Certificate', 'CertificateAuthority', 'Crl', 'ApiToken', 'AuditCheckpoint', 'OcspResponse', 'KeyBlob', 'AuditEvent']) raw.prepare(`DELETE FROM "${table}"`).run();
    insertCa(raw, 'ca-a');
    raw.prepare(`UPDATE "CertificateAuthority" SET "createdAt"=?, "notBefore"=?, "keyStateAt"=?`).run(stored, stored, stored);
    insertCert(raw, { issuerId: 'ca-a', serialHex: '01', status: 'revoked', revokedAt: iso(1), revocationReason: 1, invalidityDate: iso(1), notAfter: iso(86_400) });
    raw.prepare(`UPDATE "Certificate" SET "revokedAt"=?, "invalidityDate"=?`).run(stored, stored);
    await x.store.crls.insert({ caId: 'ca-a', scope: 'full', crlNumber: 1n, baseCrlNumber: null, thisUpdate: at(0), nextUpdate: at(1), entries: 1, der: Buffer.from('crl') });
    raw.prepare(`UPDATE "Crl" SET "thisUpdate"=?, "nextUpdate"=?`).run(stored, stored);
    raw.prepare(`INSERT INTO "ApiToken" ("id","name","role","hashHex","createdAt","expiresAt","lastUsedAt","revokedAt") VALUES ('t1',NULL,'officer','aa',?,?,?,?)`).run(stored, stored, stored, stored);
    raw.prepare(`INSERT INTO "AuditCheckpoint" ("eventCount","headHash","at","body","signature","signerSerialHex") VALUES (1,'h',?,'b',x'00','01')`).run(stored);
    raw.prepare(`INSERT INTO "OcspResponse" ("issuerId","serialHex","der","thisUpdate","nextUpdate") VALUES ('ca-a','01',x'00',?,?)`).run(stored, stored);
    raw.prepare(`INSERT INTO "KeyBlob" ("id","algorithm","envelope","createdAt") VALUES ('k1','P-256','{}',?)`).run(stored);
    raw.prepare(`INSERT INTO "AuditEvent" ("seq","at","type","actor","data","prevHash","hash") VALUES (1,?,'t','a','{}','p','h')`).run(stored);

    const s = x.store;
    const p = x.p;
    expect(await s.cas.list()).toEqual(await p.cas.list());
    expect(await s.certificates.statusOf('ca-a', '01')).toEqual(await p.certificates.statusOf('ca-a', '01'));
    const changed = await p.certificates.changedSince('ca-a', null, new Date(0));
    expect(await s.certificates.changedSince('ca-a', null, new Date(0))).toEqual(changed);
    // The Prisma revokedEntries is raw SQL written for PostgreSQL, and Prisma's raw queries parse SQLite text as `new Date` does; its model queries are the reference.
    const cert = (await p.certificates.findBySerial('ca-a', '01'))!;
    expect(await collect(s.certificates.revokedEntries('ca-a', null, { notAfterAfter: at(0) }))).toEqual([[{ serialHex: '01', revokedAt: cert.revokedAt, reason: 1, invalidityDate: cert.invalidityDate }]]);
    expect(await s.certificates.statusChangedSince(new Date(0), 10)).toEqual(await p.certificates.statusChangedSince(new Date(0), 10));
    expect(await s.crls.latest('ca-a', 'full')).toEqual(await p.crls.latest('ca-a', 'full'));
    expect(await s.crls.loadMany('ca-a', [{ scope: 'full', crlNumber: 1n }])).toEqual(await p.crls.loadMany('ca-a', [{ scope: 'full', crlNumber: 1n }]));
    expect(await s.crls.latestAll('ca-a')).toEqual(await p.crls.latestAll('ca-a'));
    expect(await s.tokens.findByHash('aa')).toEqual(await p.tokens.findByHash('aa'));
    expect(await s.auditCheckpoints.latest()).toEqual(await p.auditCheckpoints.latest());
    expect(await s.ocspResponses.get('ca-a', '01')).toEqual(await p.ocspResponses.get('ca-a', '01'));
    expect(await s.keyBlobs.find('k1')).toEqual(await p.keyBlobs.find('k1'));
    expect(await s.audit.range(1, 10)).toEqual(await p.audit.range(1, 10));
    expect(await s.audit.last()).toEqual(await p.audit.last());
    // Whole certificate rows (fromSqliteRow: the hot path's findBySerial, validForDevice, findRequestedBy).
    expect(await s.certificates.findBySerial('ca-a', '01')).toEqual(cert);
  });
});
