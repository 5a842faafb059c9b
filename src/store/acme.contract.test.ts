/**
 * The ACME storage contract (src/ra/acme/ports.ts) for every database
 * flavour: SQLite (a temp file) always, and PostgreSQL whenever
 * TRELLIS_TEST_DATABASE_URL names a server (each run creates its own
 * database there and drops it afterwards). Without that variable the
 * PostgreSQL block is skipped loudly, or fails when TRELLIS_REQUIRE_INTEROP=1.
 *
 * Races run through one store and through a second store opened on the same
 * database (another process or node, as far as the database can tell).
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chainHash } from '../audit/audit-log.js';
import type { AuditBatch } from '../audit/ports.js';
import type { CertificateIntent } from '../ca/ports.js';
import { isPkiError } from '../errors/pki-error.js';
import type { AcmeAccountRecord, AcmeAuthorizationRecord, AcmeChallenge, AcmeOrderRecord } from '../ra/acme/ports.js';
import { countedAcmeOrders } from '../metrics/counted.js';
import { toAuthorization } from './acme-rows.js';
import type { Db } from './client.js';
import { openStore, openStoreInternals, parseDatabaseUrl, type Store } from './open.js';
import { contractFlavours, type Flavour, type FreshDatabase } from './testing/flavours.js';
import { testSealer } from './testing/test-sealer.js';

/**
 * Another connection inserts a used nonce in a transaction it keeps open
 * (holding the SQLite write lock, or the PostgreSQL row) until `end`.
 */
const holdNonce: Record<Flavour['name'], (url: string, nonce: string) => Promise<{ end(commit: boolean): Promise<void> }>> = {
  async sqlite(url, nonce) {
    const target = parseDatabaseUrl(url);
    if (target.kind !== 'sqlite') throw new Error(`not a SQLite URL: ${url}`);
    const db = new Database(target.file);
    db.exec('BEGIN IMMEDIATE');
    db.prepare('INSERT INTO "AcmeUsedNonce" ("nonce","expiresAt") VALUES (?, ?)').run(nonce, '2026-01-02T04:04:05.678+00:00');
    return {
      async end(commit) {
        db.exec(commit ? 'COMMIT' : 'ROLLBACK');
        db.close();
      },
    };
  },
  async postgres(url, nonce) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('BEGIN');
    await c.query(`INSERT INTO "AcmeUsedNonce" ("nonce","expiresAt") VALUES ($1, '2026-01-02 04:04:05.678')`, [nonce]);
    return {
      async end(commit) {
        await c.query(commit ? 'COMMIT' : 'ROLLBACK');
        await c.end();
      },
    };
  },
};

const flavours = contractFlavours('ACME store contract').map((f) => ({ ...f, holdNonce: holdNonce[f.name] }));

// ---- fixtures -------------------------------------------------------------

const t0 = new Date('2026-01-02T03:04:05.678Z');
const later = (seconds: number) => new Date(t0.getTime() + seconds * 1000);
const rid = () => randomBytes(12).toString('base64url');
const day = 86_400;

function account(over: Partial<AcmeAccountRecord> = {}): AcmeAccountRecord {
  return {
    id: rid(),
    thumbprint: randomBytes(32).toString('base64url'),
    jwk: JSON.stringify({ crv: 'P-256', kty: 'EC', x: rid(), y: rid() }),
    status: 'valid',
    contact: ['mailto:ops@example.test', 'mailto:pki@example.test'],
    termsAgreed: true,
    eabKeyId: null,
    createdAt: later(1),
    ...over,
  };
}

const challenge = (over: Partial<AcmeChallenge> = {}): AcmeChallenge => ({ type: 'http-01', token: randomBytes(16).toString('base64url'), status: 'pending', validated: null, error: null, ...over });

function authorization(accountId: string, over: Partial<AcmeAuthorizationRecord> = {}): AcmeAuthorizationRecord {
  return {
    id: rid(),
    accountId,
    identifier: { type: 'dns', value: 'device-1.example.test' },
    wildcard: false,
    status: 'pending',
    expires: later(7 * day),
    challenges: [challenge(), challenge({ type: 'tls-alpn-01' })],
    createdAt: later(2),
    ...over,
  };
}

function order(accountId: string, authorizations: AcmeAuthorizationRecord[], over: Partial<AcmeOrderRecord> = {}): AcmeOrderRecord {
  return {
    id: rid(),
    accountId,
    profile: 'device',
    status: 'pending',
    expires: later(day),
    identifiers: authorizations.map((a) => ({ ...a.identifier, value: a.wildcard ? `*.${a.identifier.value}` : a.identifier.value })),
    authorizationIds: authorizations.map((a) => a.id),
    notBefore: null,
    notAfter: null,
    error: null,
    issuerId: null,
    certificateSerial: null,
    replaces: null,
    createdAt: later(3),
    ...over,
  };
}

function intent(issuerId: string, over: Partial<CertificateIntent> = {}): CertificateIntent {
  return {
    issuerId,
    serialHex: randomBytes(16).toString('hex'),
    profile: 'device',
    subject: 'CN=device.example.test',
    sans: JSON.stringify([{ type: 'dns', value: 'device.example.test' }]),
    notBefore: t0,
    notAfter: later(90 * day),
    lintDer: randomBytes(64),
    crlShard: 0,
    requestedVia: 'acme',
    requestedBy: 'acct-1',
    keyId: null,
    ...over,
  };
}

async function rejectsWith(p: Promise<unknown>, type: 'conflict' | 'notFound'): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isPkiError(err, type), `expected a ${type} PkiError, got ${String(err)}`).toBe(true);
}

/** A completion that appends no audit event. */
const noAudit: AuditBatch = { drafts: [], chain: chainHash };

/** How many of `results` are true. */
const wins = (results: boolean[]) => results.filter(Boolean).length;

// ---- the contract ---------------------------------------------------------

describe.each(flavours)('ACME store contract: $name', (flavour) => {
  let fresh: FreshDatabase;
  let store: Store;
  /** A second store on the same database: its own connections, as another process would have. */
  let second: Store;
  let db: Db;

  beforeAll(async () => {
    fresh = await flavour.fresh();
    ({ store, db } = await openStoreInternals(fresh.url));
    second = await openStore(fresh.url, { migrate: false });
  });
  afterAll(async () => {
    await second?.close();
    await store?.close();
    await fresh?.drop();
  });

  describe('accounts', () => {
    test('round-trip every field, by id and by thumbprint', async () => {
      const a = account({ eabKeyId: 'kid-1', termsAgreed: false, contact: [] });
      expect(await store.acmeAccounts.createOrGet(a)).toEqual({ account: a, created: true });
      expect(await store.acmeAccounts.findById(a.id)).toEqual(a);
      expect(await store.acmeAccounts.findByThumbprint(a.thumbprint)).toEqual(a);
      expect(await second.acmeAccounts.findById(a.id)).toEqual(a);
      const b = account();
      await store.acmeAccounts.createOrGet(b);
      expect(await store.acmeAccounts.findById(b.id)).toEqual(b);
      expect(await store.acmeAccounts.findById('no-such-account')).toBeNull();
      expect(await store.acmeAccounts.findByThumbprint('no-such-thumbprint')).toBeNull();
    });

    test('createOrGet with a known key returns the stored account; a known id with a new key is a conflict', async () => {
      const a = account();
      await store.acmeAccounts.createOrGet(a);
      expect(await store.acmeAccounts.createOrGet({ ...account(), thumbprint: a.thumbprint })).toEqual({ account: a, created: false });
      await rejectsWith(store.acmeAccounts.createOrGet({ ...account(), id: a.id }), 'conflict');
      expect(await store.acmeAccounts.findById(a.id)).toEqual(a);
    });

    test('20 concurrent createOrGet with one key, through two stores, create exactly one account', async () => {
      const thumbprint = randomBytes(32).toString('base64url');
      const attempts = Array.from({ length: 20 }, (_, i) => (i % 2 ? second : store).acmeAccounts.createOrGet(account({ thumbprint })));
      const results = await Promise.all(attempts);
      expect(wins(results.map((r) => r.created))).toBe(1);
      const winner = results.find((r) => r.created)!.account;
      for (const r of results) expect(r.account).toEqual(winner);
      expect(await store.acmeAccounts.findByThumbprint(thumbprint)).toEqual(winner);
      expect(await db.acmeAccount.count({ where: { thumbprint } })).toBe(1);
    });

    test('update changes contact and status of a valid account only', async () => {
      const a = account();
      await store.acmeAccounts.createOrGet(a);
      const contact = ['mailto:new@example.test'];
      expect(await store.acmeAccounts.update(a.id, { contact })).toEqual({ ...a, contact });
      // Written by Prisma, read back by the hot path (SQLite) identically.
      expect(await store.acmeAccounts.findById(a.id)).toEqual({ ...a, contact });
      expect(await store.acmeAccounts.update(a.id, {})).toEqual({ ...a, contact });
      expect(await store.acmeAccounts.update(a.id, { status: 'deactivated' })).toEqual({ ...a, contact, status: 'deactivated' });
      // RFC 8555 §7.3.6: a deactivated account stays so.
      expect(await store.acmeAccounts.update(a.id, { status: 'valid' })).toBeNull();
      expect(await store.acmeAccounts.update(a.id, {})).toBeNull();
      expect((await store.acmeAccounts.findById(a.id))?.status).toBe('deactivated');
      expect(await store.acmeAccounts.update('no-such-account', { contact })).toBeNull();
    });

    test('changeKey: changed once, notFound on a stale old key, conflict on another account\'s key', async () => {
      const [a, b] = [account(), account()];
      await store.acmeAccounts.createOrGet(a);
      await store.acmeAccounts.createOrGet(b);
      const next = { thumbprint: randomBytes(32).toString('base64url'), jwk: '{"kty":"OKP"}' };
      expect(await store.acmeAccounts.changeKey(a.id, a.thumbprint, next)).toBe('changed');
      expect(await store.acmeAccounts.findByThumbprint(a.thumbprint)).toBeNull();
      expect(await store.acmeAccounts.findByThumbprint(next.thumbprint)).toEqual({ ...a, ...next });
      expect(await store.acmeAccounts.changeKey(a.id, a.thumbprint, { thumbprint: randomBytes(32).toString('base64url'), jwk: '{}' })).toBe('notFound');
      expect(await store.acmeAccounts.changeKey(a.id, next.thumbprint, { thumbprint: b.thumbprint, jwk: b.jwk })).toBe('conflict');
      expect(await store.acmeAccounts.findById(a.id)).toEqual({ ...a, ...next });
      expect(await store.acmeAccounts.findById(b.id)).toEqual(b);
      expect(await store.acmeAccounts.changeKey('no-such-account', a.thumbprint, next)).toBe('notFound');
    });
  });

  describe('orders and authorizations', () => {
    let acct: AcmeAccountRecord;
    beforeAll(async () => {
      acct = account();
      await store.acmeAccounts.createOrGet(acct);
    });

    test('round-trip every field of an order and its authorizations, challenges included', async () => {
      const za = authorization(acct.id, {
        status: 'valid',
        challenges: [
          challenge({ status: 'valid', validated: later(30) }),
          challenge({ type: 'tls-alpn-01', status: 'invalid', error: { type: 'urn:ietf:params:acme:error:tls', detail: 'handshake failed', status: 400 } }),
        ],
      });
      const zb = authorization(acct.id, { identifier: { type: 'ip', value: '2001:db8::1' } });
      const zw = authorization(acct.id, { identifier: { type: 'dns', value: 'example.test' }, wildcard: true });
      const o = order(acct.id, [za, zb, zw], {
        notBefore: later(60),
        notAfter: later(90 * day),
        error: { type: 'urn:ietf:params:acme:error:rejectedIdentifier', detail: 'no' },
        replaces: 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE',
      });
      await store.acmeOrders.createOrder(o, [za, zb, zw]);
      expect(await store.acmeOrders.findOrder(o.id)).toEqual(o);
      expect(await second.acmeOrders.findOrder(o.id)).toEqual(o);
      expect(await store.acmeOrders.findAuthorization(za.id)).toEqual(za);
      expect(await store.acmeOrders.findAuthorization(zw.id)).toEqual(zw);
      // In the order asked for; unknown ids are left out.
      expect(await store.acmeOrders.findAuthorizations([zw.id, 'nope', za.id, zb.id])).toEqual([zw, za, zb]);
      expect(await store.acmeOrders.findAuthorizations([])).toEqual([]);
      // Rows written through the SQLite hot path read back through Prisma identically.
      expect(toAuthorization(await db.acmeAuthorization.findUniqueOrThrow({ where: { id: za.id } }))).toEqual(za);
      expect(await store.acmeOrders.listOrders(acct.id, 10)).toContainEqual(o);
      expect(await store.acmeOrders.findOrder('no-such-order')).toBeNull();
      expect(await store.acmeOrders.findAuthorization('no-such-authz')).toBeNull();
    });

    test('an order may reuse authorizations; listOrders is newest first and bounded', async () => {
      const a = account();
      await store.acmeAccounts.createOrGet(a);
      const z = authorization(a.id, { status: 'valid' });
      const first = order(a.id, [z], { createdAt: later(10) });
      await store.acmeOrders.createOrder(first, [z]);
      const second_ = order(a.id, [z], { createdAt: later(20) });
      await store.acmeOrders.createOrder(second_, []);
      const third = order(a.id, [z], { createdAt: later(30) });
      await store.acmeOrders.createOrder(third, []);
      expect(await store.acmeOrders.listOrders(a.id, 10)).toEqual([third, second_, first]);
      expect(await store.acmeOrders.listOrders(a.id, 2)).toEqual([third, second_]);
      expect(await store.acmeOrders.listOrders('no-such-account', 10)).toEqual([]);
    });

    test('createOrder is all or nothing: a duplicate id is a conflict, an unknown account notFound', async () => {
      const z = authorization(acct.id);
      const o = order(acct.id, [z]);
      await store.acmeOrders.createOrder(o, [z]);
      const fresh1 = authorization(acct.id);
      await rejectsWith(store.acmeOrders.createOrder({ ...order(acct.id, [fresh1]), id: o.id }, [fresh1]), 'conflict');
      expect(await store.acmeOrders.findAuthorization(fresh1.id)).toBeNull();
      const fresh2 = authorization(acct.id);
      await rejectsWith(store.acmeOrders.createOrder(order(acct.id, [fresh2, z]), [fresh2, z]), 'conflict');
      expect(await store.acmeOrders.findAuthorization(fresh2.id)).toBeNull();
      const orphan = authorization('no-such-account');
      const lost = order('no-such-account', [orphan]);
      await rejectsWith(store.acmeOrders.createOrder(lost, [orphan]), 'notFound');
      expect(await store.acmeOrders.findOrder(lost.id)).toBeNull();
    });

    test('concurrent writes commit together, and a failing one takes back only its own rows', async () => {
      const taken = authorization(acct.id);
      const existing = order(acct.id, [taken]);
      await store.acmeOrders.createOrder(existing, [taken]);
      const doomedAuthz = authorization(acct.id);
      const okAuthz = authorization(acct.id);
      const ok = order(acct.id, [okAuthz]);
      const nonce = rid();
      const [dup, fine, redeemed] = await Promise.allSettled([
        store.acmeOrders.createOrder({ ...order(acct.id, [doomedAuthz]), id: existing.id }, [doomedAuthz]),
        store.acmeOrders.createOrder(ok, [okAuthz]),
        store.acmeNonces.redeem(nonce, later(3600)),
      ]);
      expect(dup.status === 'rejected' && isPkiError(dup.reason, 'conflict')).toBe(true);
      expect(fine).toEqual({ status: 'fulfilled', value: undefined });
      expect(redeemed).toEqual({ status: 'fulfilled', value: true });
      // The failed order's authorization, inserted before its order row failed, is gone.
      expect(await store.acmeOrders.findAuthorization(doomedAuthz.id)).toBeNull();
      expect(await store.acmeOrders.findOrder(ok.id)).toEqual(ok);
      expect(await store.acmeOrders.findAuthorization(okAuthz.id)).toEqual(okAuthz);
      expect(await store.acmeOrders.findOrder(existing.id)).toEqual(existing);
    });

    test('updateAuthorization is compare-and-set: of 20 concurrent writers through two stores, one wins', async () => {
      const z = authorization(acct.id);
      await store.acmeOrders.createOrder(order(acct.id, [z]), [z]);
      const attempts = Array.from({ length: 20 }, (_, i) => {
        const challenges = [{ ...z.challenges[0]!, status: 'valid' as const, validated: later(100 + i) }, z.challenges[1]!];
        return (i % 2 ? second : store).acmeOrders.updateAuthorization(z.id, 'pending', { status: 'valid', challenges }).then((won) => ({ won, challenges }));
      });
      const results = await Promise.all(attempts);
      expect(wins(results.map((r) => r.won))).toBe(1);
      const winner = results.find((r) => r.won)!;
      expect(await store.acmeOrders.findAuthorization(z.id)).toEqual({ ...z, status: 'valid', challenges: winner.challenges });
      // A stale expectation loses and changes nothing.
      expect(await store.acmeOrders.updateAuthorization(z.id, 'pending', { status: 'invalid', challenges: [] })).toBe(false);
      expect(await store.acmeOrders.updateAuthorization(z.id, 'valid', { status: 'deactivated', challenges: winner.challenges })).toBe(true);
      expect((await store.acmeOrders.findAuthorization(z.id))?.status).toBe('deactivated');
      expect(await store.acmeOrders.updateAuthorization('no-such-authz', 'pending', { status: 'valid', challenges: [] })).toBe(false);
    });

    test('updateAuthorization writes expires when given and keeps it otherwise', async () => {
      const z = authorization(acct.id);
      await store.acmeOrders.createOrder(order(acct.id, [z]), [z]);
      const longer = later(30 * 86400);
      expect(await store.acmeOrders.updateAuthorization(z.id, 'pending', { status: 'valid', challenges: z.challenges, expires: longer })).toBe(true);
      expect((await store.acmeOrders.findAuthorization(z.id))?.expires).toEqual(longer);
      expect(await store.acmeOrders.updateAuthorization(z.id, 'valid', { status: 'deactivated', challenges: z.challenges })).toBe(true);
      expect((await store.acmeOrders.findAuthorization(z.id))?.expires).toEqual(longer);
    });

    test('updateOrder is compare-and-set and writes its patch fields together', async () => {
      const z = authorization(acct.id, { status: 'valid' });
      const o = order(acct.id, [z]);
      await store.acmeOrders.createOrder(o, [z]);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? second : store).acmeOrders.updateOrder(o.id, 'pending', { status: 'processing' })));
      expect(wins(results)).toBe(1);
      expect(await store.acmeOrders.updateOrder(o.id, 'pending', { status: 'invalid' })).toBe(false);
      expect(await store.acmeOrders.findOrder(o.id)).toEqual({ ...o, status: 'processing' });
      expect(await store.acmeOrders.updateOrder(o.id, 'processing', { status: 'valid', issuerId: 'ca-1', certificateSerial: '0a0b0c' })).toBe(true);
      expect(await store.acmeOrders.findOrder(o.id)).toEqual({ ...o, status: 'valid', issuerId: 'ca-1', certificateSerial: '0a0b0c' });

      // error: absent keeps it, a problem sets it, null clears it.
      const p = order(acct.id, [z]);
      await store.acmeOrders.createOrder(p, []);
      const problem = { type: 'urn:ietf:params:acme:error:badCSR', detail: 'CSR names differ from the order', status: 400 };
      expect(await store.acmeOrders.updateOrder(p.id, 'pending', { status: 'processing', error: problem })).toBe(true);
      expect(await store.acmeOrders.updateOrder(p.id, 'processing', { status: 'pending' })).toBe(true);
      expect(await store.acmeOrders.findOrder(p.id)).toEqual({ ...p, error: problem });
      expect(await store.acmeOrders.updateOrder(p.id, 'pending', { status: 'invalid', error: null })).toBe(true);
      expect(await store.acmeOrders.findOrder(p.id)).toEqual({ ...p, status: 'invalid', error: null });
      expect(await store.acmeOrders.updateOrder('no-such-order', 'pending', { status: 'invalid' })).toBe(false);
    });

    test('findReusableAuthorization: same account, identifier and wildcard flag; valid (or pending when asked); unexpired; latest expiry', async () => {
      const a = account();
      const other = account();
      await store.acmeAccounts.createOrGet(a);
      await store.acmeAccounts.createOrGet(other);
      const id = { type: 'dns' as const, value: 'reuse.example.test' };
      const z = (over: Partial<AcmeAuthorizationRecord>) => authorization(a.id, { identifier: id, ...over });
      const validSoon = z({ status: 'valid', expires: later(2 * day) });
      const validLate = z({ status: 'valid', expires: later(5 * day) });
      const pendingLatest = z({ status: 'pending', expires: later(9 * day) });
      const invalidLatest = z({ status: 'invalid', expires: later(20 * day) });
      const deactivated = z({ status: 'deactivated', expires: later(20 * day) });
      const wildcard = z({ status: 'valid', wildcard: true, expires: later(3 * day) });
      const othersValid = authorization(other.id, { identifier: id, status: 'valid', expires: later(30 * day) });
      const ipValid = z({ identifier: { type: 'ip', value: 'reuse.example.test' }, status: 'valid', expires: later(30 * day) });
      const all = [validSoon, validLate, pendingLatest, invalidLatest, deactivated, wildcard, ipValid];
      await store.acmeOrders.createOrder(order(a.id, all), all);
      await store.acmeOrders.createOrder(order(other.id, [othersValid]), [othersValid]);

      const find = (over: { account?: string; wildcard?: boolean; after?: Date; pending?: boolean; value?: string } = {}) =>
        store.acmeOrders.findReusableAuthorization(over.account ?? a.id, { ...id, value: over.value ?? id.value }, over.wildcard ?? false, over.after ?? t0, over.pending ?? false);
      expect(await find()).toEqual(validLate);
      expect(await find({ pending: true })).toEqual(pendingLatest);
      expect(await find({ wildcard: true })).toEqual(wildcard);
      expect(await find({ wildcard: true, after: later(3 * day) })).toBeNull();
      // Expiring at or before expiresAfter does not count.
      expect(await find({ after: later(5 * day) })).toBeNull();
      expect(await find({ after: later(5 * day), pending: true })).toEqual(pendingLatest);
      expect(await find({ after: new Date(later(2 * day).getTime() - 1) })).toEqual(validLate);
      expect(await find({ account: other.id })).toEqual(othersValid);
      expect(await find({ value: 'other.example.test' })).toBeNull();
      expect(await find({ account: 'no-such-account' })).toBeNull();
    });

    test('isReplaced: another live order with the same replaces value', async () => {
      const z = authorization(acct.id, { status: 'valid' });
      const replaces = `${rid()}.${rid()}`;
      expect(await store.acmeOrders.isReplaced(replaces)).toBe(false);
      const pending = order(acct.id, [z], { replaces, expires: later(day) });
      await store.acmeOrders.createOrder(pending, [z]);
      expect(await store.acmeOrders.isReplaced(replaces)).toBe(true);
      expect(await store.acmeOrders.isReplaced(replaces, pending.id)).toBe(false);
      expect(await store.acmeOrders.isReplaced(replaces, 'another-order')).toBe(true);
      // A pending order that has expired no longer counts once `now` is given.
      expect(await store.acmeOrders.isReplaced(replaces, undefined, later(day - 1))).toBe(true);
      expect(await store.acmeOrders.isReplaced(replaces, undefined, later(day))).toBe(false);
      // An invalid one never counts; a valid one counts even past its expiry.
      expect(await store.acmeOrders.updateOrder(pending.id, 'pending', { status: 'invalid' })).toBe(true);
      expect(await store.acmeOrders.isReplaced(replaces)).toBe(false);
      const valid = order(acct.id, [z], { replaces, status: 'valid', expires: later(day) });
      await store.acmeOrders.createOrder(valid, []);
      expect(await store.acmeOrders.isReplaced(replaces, undefined, later(2 * day))).toBe(true);
      expect(await store.acmeOrders.isReplaced(replaces, valid.id)).toBe(false);
      expect(await store.acmeOrders.isReplaced(`${replaces}x`)).toBe(false);
    });
  });

  describe('nonces', () => {
    test('a nonce is redeemed once', async () => {
      const n = rid();
      expect(await store.acmeNonces.redeem(n, later(3600))).toBe(true);
      expect(await store.acmeNonces.redeem(n, later(3600))).toBe(false);
      expect(await second.acmeNonces.redeem(n, later(7200))).toBe(false);
    });

    test('20 concurrent redemptions of one nonce, through two stores, give exactly one true', async () => {
      for (let round = 0; round < 10; round++) {
        const n = rid();
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? second : store).acmeNonces.redeem(n, later(3600))));
        expect(wins(results)).toBe(1);
      }
    });

    test('redemptions wait for another writer of the same nonce: it commits, all lose; it rolls back, one wins', async () => {
      for (const commit of [true, false]) {
        const n = rid();
        const held = await flavour.holdNonce(fresh.url, n);
        const pending = Array.from({ length: 20 }, (_, i) => (i % 2 ? second : store).acmeNonces.redeem(n, later(3600)));
        await new Promise((r) => setTimeout(r, 50));
        await held.end(commit);
        expect(wins(await Promise.all(pending))).toBe(commit ? 0 : 1);
      }
    });

    test('redeemWith (SQLite): the nonce and the first write commit together; a replay writes nothing; a failed write leaves the nonce unused', async () => {
      const redeemWith = store.acmeNonces.redeemWith?.bind(store.acmeNonces);
      if (flavour.name === 'postgres') expect(redeemWith).toBeUndefined();
      if (!redeemWith) return;
      const acct = account();
      await store.acmeAccounts.createOrGet(acct);
      // Through the metrics wrapper serve puts around the repository: it must reach the store within the call.
      const orders = countedAcmeOrders(store.acmeOrders, { acmeOrderEntered: () => {} });
      const n = rid();
      const first = order(acct.id, []);
      const a = redeemWith(n, later(3600), () => orders.createOrder(first, []));
      await a.written;
      expect(await a.recorded).toBe('recorded');
      expect(await store.acmeOrders.findOrder(first.id)).not.toBeNull();
      expect(await store.acmeNonces.redeem(n, later(3600))).toBe(false);

      const replayed = order(acct.id, []);
      const b = redeemWith(n, later(3600), () => orders.createOrder(replayed, []));
      expect(isPkiError(await b.written.catch((e: unknown) => e), 'badNonce')).toBe(true);
      expect(await b.recorded).toBe('used');
      expect(await store.acmeOrders.findOrder(replayed.id)).toBeNull();
      // An order's compare-and-set too: a replay does not move it.
      const c = redeemWith(n, later(3600), () => orders.updateOrder(first.id, 'pending', { status: 'processing' }));
      expect(isPkiError(await c.written.catch((e: unknown) => e), 'badNonce')).toBe(true);
      expect((await store.acmeOrders.findOrder(first.id))?.status).toBe('pending');

      // A write that fails (a duplicate id) takes its nonce back with it.
      const m = rid();
      const d = redeemWith(m, later(3600), () => orders.createOrder({ ...order(acct.id, []), id: first.id }, []));
      await rejectsWith(d.written, 'conflict');
      expect(await d.recorded).toBe('undone');
      expect(await store.acmeNonces.redeem(m, later(3600))).toBe(true);

      // Only the first write made within the call takes the nonce; one made later is not guarded and says so.
      const late = redeemWith(rid(), later(3600), async () => {
        await Promise.resolve();
        return orders.createOrder(order(acct.id, []), []);
      });
      await late.written;
      expect(late.recorded).toBeUndefined();
    });

    test('prune forgets nonces that expired before the cut, in batches', async () => {
      // Only this test's rows: SQLite stops at the first row still live, and earlier tests left live ones.
      await db.acmeUsedNonce.deleteMany();
      // More rows than one prune step on SQLite (5,000 rowids); PostgreSQL steps by 128 heap pages (acme-nonce-prune.test.ts).
      const old = Array.from({ length: 10_050 }, () => rid());
      for (let i = 0; i < old.length; i += 500) await Promise.all(old.slice(i, i + 500).map((n, k) => store.acmeNonces.redeem(n, later(-100 - ((i + k) % 50)))));
      const keep = rid();
      await store.acmeNonces.redeem(keep, later(10));
      const edge = rid();
      await store.acmeNonces.redeem(edge, later(0));
      const before = await db.acmeUsedNonce.count();
      expect(await store.acmeNonces.prune(later(0))).toBe(old.length);
      expect(await db.acmeUsedNonce.count()).toBe(before - old.length);
      expect(await store.acmeNonces.prune(later(0))).toBe(0);
      // Still used: not expired before the cut.
      expect(await store.acmeNonces.redeem(keep, later(10))).toBe(false);
      expect(await store.acmeNonces.redeem(edge, later(0))).toBe(false);
      expect(await store.acmeNonces.prune(later(11))).toBe(2);
    }, 120_000);

    test('prune keeps a nonce redeemed after one still live at most until that one expires too', async () => {
      await db.acmeUsedNonce.deleteMany();
      const first = rid();
      await store.acmeNonces.redeem(first, later(-5));
      const live = rid();
      await store.acmeNonces.redeem(live, later(30));
      const behind = rid();
      await store.acmeNonces.redeem(behind, later(-5));
      // SQLite: `behind` waits behind `live`; PostgreSQL: gone at once. Neither ever drops `live`.
      expect(await store.acmeNonces.prune(later(0))).toBe(flavour.name === 'sqlite' ? 1 : 2);
      expect(await store.acmeNonces.redeem(live, later(30))).toBe(false);
      expect(await store.acmeNonces.prune(later(31))).toBe(flavour.name === 'sqlite' ? 2 : 1);
      expect(await db.acmeUsedNonce.count()).toBe(0);
    });
  });

  describe('EAB keys', () => {
    const sealer = testSealer();
    beforeAll(async () => {
      await store.sealSecrets(sealer);
      await second.sealSecrets(sealer);
    });
    const storedKey = async (keyId: string) => Buffer.from((await db.acmeEabKey.findUniqueOrThrow({ where: { keyId } })).hmacKey);

    test('round-trip, duplicate key id, bind once under concurrency, list (which never returns the HMAC key)', async () => {
      const k1 = { keyId: `kid-${rid()}`, hmacKey: randomBytes(32), directory: 'device', createdAt: later(1) };
      const k2 = { keyId: `kid-${rid()}`, hmacKey: randomBytes(32), directory: null, createdAt: later(2) };
      await store.acmeEabKeys.create(k1);
      await store.acmeEabKeys.create(k2);
      const found = await store.acmeEabKeys.find(k1.keyId);
      expect(found).toEqual({ ...k1, boundAccountId: null, boundAt: null });
      expect(Buffer.isBuffer(found!.hmacKey)).toBe(true);
      await rejectsWith(store.acmeEabKeys.create({ ...k1, hmacKey: randomBytes(32) }), 'conflict');
      expect((await store.acmeEabKeys.find(k1.keyId))?.hmacKey).toEqual(k1.hmacKey);

      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? second : store).acmeEabKeys.bind(k1.keyId, `acct-${i}`, later(10 + i))));
      expect(wins(results)).toBe(1);
      const winner = results.indexOf(true);
      expect(await store.acmeEabKeys.find(k1.keyId)).toEqual({ ...k1, boundAccountId: `acct-${winner}`, boundAt: later(10 + winner) });
      expect(await store.acmeEabKeys.bind(k1.keyId, 'acct-late', later(99))).toBe(false);
      expect(await store.acmeEabKeys.bind('no-such-key', 'acct-1', later(99))).toBe(false);
      const listed = (await store.acmeEabKeys.list()).filter((k) => k.keyId === k1.keyId || k.keyId === k2.keyId);
      expect(listed).toEqual([
        { ...k1, hmacKey: Buffer.alloc(0), boundAccountId: `acct-${winner}`, boundAt: later(10 + winner) },
        { ...k2, hmacKey: Buffer.alloc(0), boundAccountId: null, boundAt: null },
      ]);
      expect(await store.acmeEabKeys.find('no-such-key')).toBeNull();
    });

    test('the HMAC key column holds the sealed key (sealed for this key id), never the key', async () => {
      const k = { keyId: `kid-${rid()}`, hmacKey: randomBytes(32), directory: null, createdAt: later(3) };
      await store.acmeEabKeys.create(k);
      const stored = await storedKey(k.keyId);
      expect(sealer.isSealed(stored)).toBe(true);
      expect(stored.includes(k.hmacKey)).toBe(false);
      expect(sealer.open('acme-eab-hmac', k.keyId, stored)).toEqual(k.hmacKey);
    });

    test('a key stored in clear (older versions) still works, and is sealed in place when first read', async () => {
      const k = { keyId: `kid-${rid()}`, hmacKey: randomBytes(32) };
      await db.acmeEabKey.create({ data: { keyId: k.keyId, hmacKey: new Uint8Array(k.hmacKey), directory: null, createdAt: later(4) } });
      expect((await second.acmeEabKeys.find(k.keyId))?.hmacKey).toEqual(k.hmacKey);
      const stored = await storedKey(k.keyId);
      expect(sealer.isSealed(stored)).toBe(true);
      expect(sealer.open('acme-eab-hmac', k.keyId, stored)).toEqual(k.hmacKey);
      expect((await store.acmeEabKeys.find(k.keyId))?.hmacKey).toEqual(k.hmacKey);
    });

    test('sealSecrets seals every key still in clear and counts them; a second pass finds none', async () => {
      const clear = [randomBytes(32), randomBytes(32)];
      const ids = clear.map(() => `kid-${rid()}`);
      for (const [i, keyId] of ids.entries()) await db.acmeEabKey.create({ data: { keyId, hmacKey: new Uint8Array(clear[i]!), directory: null, createdAt: later(5) } });
      expect(await store.sealSecrets(sealer)).toBe(2);
      for (const [i, keyId] of ids.entries()) expect(sealer.open('acme-eab-hmac', keyId, await storedKey(keyId))).toEqual(clear[i]);
      expect(await second.sealSecrets(sealer)).toBe(0);
    });

    test('rejects: a sealed key copied onto another key id does not open there (keyIntegrity)', async () => {
      const [a, b] = [`kid-${rid()}`, `kid-${rid()}`];
      await store.acmeEabKeys.create({ keyId: a, hmacKey: randomBytes(32), directory: null, createdAt: later(6) });
      await store.acmeEabKeys.create({ keyId: b, hmacKey: randomBytes(32), directory: null, createdAt: later(6) });
      await db.acmeEabKey.update({ where: { keyId: b }, data: { hmacKey: new Uint8Array(await storedKey(a)) } });
      await expect(store.acmeEabKeys.find(b)).rejects.toMatchObject({ type: 'keyIntegrity' });
    });

    test('rejects: without a sealer, creating or opening a key (forbidden); listing still works', async () => {
      const unsealed = await openStore(fresh.url, { migrate: false });
      try {
        const k = { keyId: `kid-${rid()}`, hmacKey: randomBytes(32), directory: null, createdAt: later(7) };
        await expect(unsealed.acmeEabKeys.create(k)).rejects.toMatchObject({ type: 'forbidden' });
        await store.acmeEabKeys.create(k);
        await expect(unsealed.acmeEabKeys.find(k.keyId)).rejects.toMatchObject({ type: 'forbidden' });
        expect((await unsealed.acmeEabKeys.list()).map((x) => x.keyId)).toContain(k.keyId);
      } finally {
        await unsealed.close();
      }
    });
  });

  describe('instance secrets', () => {
    const sealer = testSealer();
    beforeAll(async () => {
      await store.sealSecrets(sealer);
      await second.sealSecrets(sealer);
    });
    const storedValue = async (name: string) => Buffer.from((await db.instanceSecret.findUniqueOrThrow({ where: { name } })).value);

    test('the first creator wins on every store; later calls do not create', async () => {
      const candidates = Array.from({ length: 10 }, () => randomBytes(32));
      const got = await Promise.all(candidates.map((c, i) => (i % 2 ? second : store).secrets.getOrCreate('nonce-hmac', () => c)));
      expect(candidates.some((c) => c.equals(got[0]!))).toBe(true);
      for (const g of got) expect(g).toEqual(got[0]);
      const never = () => {
        throw new Error('create must not be called for an existing secret');
      };
      expect(await store.secrets.getOrCreate('nonce-hmac', never)).toEqual(got[0]);
      expect(await second.secrets.getOrCreate('nonce-hmac', never)).toEqual(got[0]);
      const other = await store.secrets.getOrCreate('other', () => Buffer.from('x'));
      expect(other).toEqual(Buffer.from('x'));
      expect(Buffer.isBuffer(other)).toBe(true);
    });

    test('the value column holds the sealed secret (sealed for its name), never the secret', async () => {
      const secret = randomBytes(32);
      expect(await store.secrets.getOrCreate('sealed-one', () => secret)).toEqual(secret);
      const stored = await storedValue('sealed-one');
      expect(stored.includes(secret)).toBe(false);
      expect(sealer.open('instance-secret', 'sealed-one', stored)).toEqual(secret);
      await db.instanceSecret.create({ data: { name: 'moved', value: new Uint8Array(stored) } });
      await expect(store.secrets.getOrCreate('moved', () => randomBytes(32))).rejects.toMatchObject({ type: 'keyIntegrity' });
    });

    test('a secret stored in clear (older versions) keeps its value and is sealed in place when first read', async () => {
      const clear = randomBytes(32);
      await db.instanceSecret.create({ data: { name: 'legacy', value: new Uint8Array(clear) } });
      expect(await second.secrets.getOrCreate('legacy', () => randomBytes(32))).toEqual(clear);
      expect(sealer.open('instance-secret', 'legacy', await storedValue('legacy'))).toEqual(clear);
      expect(await store.secrets.getOrCreate('legacy', () => randomBytes(32))).toEqual(clear);
    });

    test('rejects: without a sealer (forbidden)', async () => {
      const unsealed = await openStore(fresh.url, { migrate: false });
      try {
        await expect(unsealed.secrets.getOrCreate('nonce-hmac', () => randomBytes(32))).rejects.toMatchObject({ type: 'forbidden' });
      } finally {
        await unsealed.close();
      }
    });
  });

  describe('renewal windows', () => {
    test('setWindow touches valid, unexpired certificates matching every given filter; windowOf reads it', async () => {
      const ca = `ari-${flavour.name}`;
      const otherCa = `ari-other-${flavour.name}`;
      for (const id of [ca, otherCa]) {
        await store.cas.insert({
          id,
          name: id,
          role: 'issuing',
          parentId: null,
          certDer: randomBytes(8),
          subject: `CN=${id}`,
          skiHex: randomBytes(20).toString('hex'),
          keyRef: '{}',
          notBefore: t0,
          notAfter: later(365 * day),
        });
      }
      const early = intent(ca);
      const lateIssued = intent(ca);
      const server = intent(ca, { profile: 'server' });
      const expired = intent(ca, { notAfter: later(10) });
      const pending = intent(ca);
      const revoked = intent(ca);
      const elsewhere = intent(otherCa);
      await store.certificates.insertIntents([early, lateIssued, server, expired, pending, revoked, elsewhere]);
      await store.certificates.completeMany({ issued: [early, server, expired, revoked, elsewhere].map((i) => ({ issuerId: i.issuerId, serialHex: i.serialHex, der: randomBytes(32), issuedAt: later(100) })), failed: [] }, noAudit);
      await store.certificates.completeMany({ issued: [{ issuerId: ca, serialHex: lateIssued.serialHex, der: randomBytes(32), issuedAt: later(200) }], failed: [] }, noAudit);
      await store.certificates.revoke(ca, revoked.serialHex, { reason: 1, revokedAt: later(300), invalidityDate: null, revokedBy: 'test' });

      const now = later(1000);
      const w1 = { start: later(2000), end: later(3000) };
      expect(await store.renewalWindows.setWindow({ issuerId: ca, profile: 'device', issuedBefore: later(150) }, w1, now)).toBe(1);
      expect(await store.renewalWindows.windowOf(ca, early.serialHex)).toEqual(w1);
      for (const i of [lateIssued, server, expired, pending, revoked]) expect(await store.renewalWindows.windowOf(ca, i.serialHex)).toBeNull();

      const w2 = { start: later(4000), end: later(5000) };
      // valid + unexpired of this CA: early, lateIssued, server (not expired, pending, revoked).
      expect(await store.renewalWindows.setWindow({ issuerId: ca }, w2, now)).toBe(3);
      for (const i of [early, lateIssued, server]) expect(await store.renewalWindows.windowOf(ca, i.serialHex)).toEqual(w2);
      for (const i of [expired, pending, revoked]) expect(await store.renewalWindows.windowOf(ca, i.serialHex)).toBeNull();
      expect(await store.renewalWindows.windowOf(otherCa, elsewhere.serialHex)).toBeNull();

      const w3 = { start: later(6000), end: later(7000) };
      const serials = [server.serialHex, expired.serialHex, elsewhere.serialHex, 'ffff', ...Array.from({ length: 2500 }, () => randomBytes(16).toString('hex'))];
      expect(await store.renewalWindows.setWindow({ serialHexes: serials }, w3, now)).toBe(2);
      expect(await store.renewalWindows.windowOf(ca, server.serialHex)).toEqual(w3);
      expect(await store.renewalWindows.windowOf(otherCa, elsewhere.serialHex)).toEqual(w3);
      expect(await store.renewalWindows.windowOf(ca, early.serialHex)).toEqual(w2);
      expect(await store.renewalWindows.setWindow({ serialHexes: [] }, w3, now)).toBe(0);
      expect(await store.renewalWindows.setWindow({ issuerId: 'no-such-ca' }, w3, now)).toBe(0);
      expect(await store.renewalWindows.windowOf(ca, 'no-such-serial')).toBeNull();
    });
  });

  describe('crash leftovers: orders stuck in processing', () => {
    let acct: AcmeAccountRecord;
    const longAgo = (minutes: number) => new Date(Date.UTC(2001, 0, 1) + minutes * 60_000);
    const cut = longAgo(600);
    const events = (type: string): AuditBatch => ({ drafts: [{ at: later(700), type, actor: 'test', data: {} }], chain: chainHash });
    const processing = async (createdAt: Date) => {
      const z = authorization(acct.id, { status: 'valid' });
      const o = order(acct.id, [z], { createdAt, status: 'processing' });
      await store.acmeOrders.createOrder(o, [z]);
      return o;
    };
    const problem = { type: 'urn:ietf:params:acme:error:serverInternal', detail: 'issuance was interrupted', status: 500 };

    beforeAll(async () => {
      acct = account();
      await store.acmeAccounts.createOrGet(acct);
      // The database itself refuses audit events of type 'test.refused', mid-transaction.
      const refuse =
        flavour.name === 'sqlite'
          ? [`CREATE TRIGGER "test_refuse_audit" BEFORE INSERT ON "AuditEvent" WHEN NEW."type" = 'test.refused' BEGIN SELECT RAISE(ABORT, 'audit append refused by a test trigger'); END`]
          : [
              `CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW."type" = 'test.refused' THEN RAISE EXCEPTION 'audit append refused by a test trigger'; END IF; RETURN NEW; END $$`,
              `CREATE TRIGGER test_refuse_audit BEFORE INSERT ON "AuditEvent" FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()`,
            ];
      for (const sql of refuse) await db.$executeRawUnsafe(sql);
    });

    test('listProcessing lists the orders in processing created before the cut-off, oldest first, bounded', async () => {
      const [a, b] = [await processing(longAgo(20)), await processing(longAgo(10))];
      await processing(longAgo(900)); // after the cut-off
      const z = authorization(acct.id);
      await store.acmeOrders.createOrder(order(acct.id, [z], { createdAt: longAgo(5) }), [z]); // pending
      expect(await store.acmeOrders.listProcessing(cut, 10)).toEqual([b, a]);
      expect(await store.acmeOrders.listProcessing(cut, 1)).toEqual([b]);
      expect(await store.acmeOrders.listProcessing(longAgo(0), 10)).toEqual([]);
      await store.acmeOrders.settleProcessing([a, b].map((o) => ({ id: o.id, next: { status: 'invalid' as const, error: problem } })), () => events('acme.orders_settled'));
    });

    test('settleProcessing moves each order still in processing, and appends the audit event for those, in one transaction', async () => {
      const [a, b, gone] = [await processing(longAgo(1)), await processing(longAgo(2)), await processing(longAgo(3))];
      expect(await store.acmeOrders.updateOrder(gone.id, 'processing', { status: 'valid', issuerId: 'ca-x', certificateSerial: '0abc' })).toBe(true);
      const before = await store.audit.last();
      let seen: unknown;
      const moved = await store.acmeOrders.settleProcessing(
        [
          { id: a.id, next: { status: 'valid', issuerId: 'ca-1', certificateSerial: '01ff' } },
          { id: b.id, next: { status: 'invalid', error: problem } },
          { id: gone.id, next: { status: 'invalid', error: problem } },
          { id: 'no-such-order', next: { status: 'invalid', error: problem } },
        ],
        (m) => {
          seen = m;
          return events('acme.orders_settled');
        },
      );
      expect(moved.map((m) => m.id)).toEqual([a.id, b.id]);
      expect(seen).toEqual(moved);
      expect(await store.acmeOrders.findOrder(a.id)).toEqual({ ...a, status: 'valid', issuerId: 'ca-1', certificateSerial: '01ff' });
      expect(await store.acmeOrders.findOrder(b.id)).toEqual({ ...b, status: 'invalid', error: problem });
      expect(await store.acmeOrders.findOrder(gone.id)).toEqual({ ...gone, status: 'valid', issuerId: 'ca-x', certificateSerial: '0abc' });
      const appended = await store.audit.range((before?.seq ?? 0) + 1, 10);
      expect(appended.map((r) => r.type)).toEqual(['acme.orders_settled']);
      // Nothing to move: no event.
      expect(await store.acmeOrders.settleProcessing([{ id: a.id, next: { status: 'invalid', error: problem } }], () => events('acme.orders_settled'))).toEqual([]);
      expect((await store.audit.last())?.seq).toBe(appended[0]!.seq);
    });

    test('settleProcessing whose audit append is refused moves nothing', async () => {
      const o = await processing(longAgo(4));
      const before = await store.audit.last();
      await expect(store.acmeOrders.settleProcessing([{ id: o.id, next: { status: 'invalid', error: problem } }], () => events('test.refused'))).rejects.toThrow();
      expect(await store.acmeOrders.findOrder(o.id)).toEqual(o);
      expect(await store.audit.last()).toEqual(before);
    });

    test('updateAuthorization with an audit batch appends it in the same transaction when it wins, and nothing when it loses', async () => {
      const z = authorization(acct.id);
      await store.acmeOrders.createOrder(order(acct.id, [z]), [z]);
      const before = await store.audit.last();
      const challenges = [{ ...z.challenges[0]!, status: 'valid' as const, validated: later(10) }, z.challenges[1]!];
      const moves = await Promise.all(
        Array.from({ length: 6 }, (_, i) => (i % 2 ? second : store).acmeOrders.updateAuthorization(z.id, 'pending', { status: 'valid', challenges, expires: later(86400) }, events('acme.authorization_valid'))),
      );
      expect(wins(moves)).toBe(1);
      expect(await store.acmeOrders.findAuthorization(z.id)).toEqual({ ...z, status: 'valid', challenges, expires: later(86400) });
      const appended = await store.audit.range((before?.seq ?? 0) + 1, 10);
      expect(appended.map((r) => r.type)).toEqual(['acme.authorization_valid']);
      expect(appended[0]!.prevHash).toBe(before?.hash ?? '0'.repeat(64));
    });

    test('updateAuthorization whose audit append is refused moves nothing', async () => {
      const z = authorization(acct.id);
      await store.acmeOrders.createOrder(order(acct.id, [z]), [z]);
      const before = await store.audit.last();
      await expect(store.acmeOrders.updateAuthorization(z.id, 'pending', { status: 'invalid', challenges: z.challenges }, events('test.refused'))).rejects.toThrow();
      expect(await store.acmeOrders.findAuthorization(z.id)).toEqual(z);
      expect(await store.audit.last()).toEqual(before);
    });

    test('certificates.findRequestedBy lists what one requester asked for since a time, oldest first', async () => {
      const ca = `requested-${flavour.name}`;
      await store.cas.insert({ id: ca, name: ca, role: 'issuing', parentId: null, certDer: randomBytes(8), subject: `CN=${ca}`, skiHex: randomBytes(20).toString('hex'), keyRef: '{}', notBefore: t0, notAfter: later(365 * day) });
      const mine = [intent(ca, { requestedBy: acct.id }), intent(ca, { requestedBy: acct.id })];
      await store.certificates.insertIntents([mine[0]!, intent(ca, { requestedBy: 'someone-else' }), intent(ca, { requestedBy: acct.id, requestedVia: 'api' })]);
      await store.certificates.insertIntents([mine[1]!]);
      await store.certificates.completeMany({ issued: [{ issuerId: ca, serialHex: mine[1]!.serialHex, der: randomBytes(32), issuedAt: later(5) }], failed: [] }, noAudit);
      const since = new Date(Date.now() - 60_000);
      const found = await store.certificates.findRequestedBy('acme', acct.id, since, 10);
      expect(found.map((c) => [c.serialHex, c.status])).toEqual([
        [mine[0]!.serialHex, 'pending'],
        [mine[1]!.serialHex, 'valid'],
      ]);
      expect(found[1]!.der).toBeInstanceOf(Buffer);
      expect((await store.certificates.findRequestedBy('acme', acct.id, since, 1)).map((c) => c.serialHex)).toEqual([mine[0]!.serialHex]);
      expect(await store.certificates.findRequestedBy('acme', acct.id, new Date(Date.now() + 60_000), 10)).toEqual([]);
    });
  });
});
