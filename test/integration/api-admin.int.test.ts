/**
 * The read side of /api/v1 and its token management over real HTTP (SQLite):
 * CAs and their key history, CRL freshness, tokens (the secret once, never a
 * hash, audited), ACME accounts and orders (a thumbprint, never a key), the
 * audit log (pages, NDJSON export, verification) and issuance per day.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { createToken } from '../../src/tokens/tokens.js';
import { makeCsr } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let server: Serving;
let admin: { id: string; secret: string };
let auditor: string;
let officer: string;

beforeAll(async () => {
  pki = await testPki();
  admin = await createToken(pki.instance.store.tokens, 'administrator', 'admin');
  auditor = (await createToken(pki.instance.store.tokens, 'auditor', 'auditor')).secret;
  officer = (await createToken(pki.instance.store.tokens, 'officer', 'officer')).secret;
  server = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger });
});
afterAll(async () => {
  await server?.close();
  await pki?.close();
});

const get = (p: string, token = auditor) => fetch(`${server.url}${p}`, { headers: { authorization: `Bearer ${token}` } });
const post = (p: string, token: string, body?: unknown) =>
  fetch(`${server.url}${p}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
async function json<T = any>(res: Response | Promise<Response>, status = 200): Promise<T> {
  const r = await res;
  expect(r.status).toBe(status);
  return (await r.json()) as T;
}

describe('CAs and CRLs', () => {
  test('the list: both CAs; the issuing CA is active, the root is not (it issues no leaves)', async () => {
    const { items, next } = await json(get('/api/v1/cas'));
    expect(next).toBeNull();
    expect(items.map((c: any) => [c.id, c.role, c.active])).toEqual([
      ['issuing-1', 'issuing', true],
      ['root', 'root', false],
    ]);
    const issuing = items[0];
    expect(issuing).toMatchObject({ parentId: 'root', keyState: 'active', skiHex: expect.stringMatching(/^[0-9a-f]+$/), notAfter: expect.stringMatching(/Z$/) });
  });

  test('one CA: its certificate and key history; unknown 404', async () => {
    const ca = await json(get('/api/v1/cas/issuing-1'));
    const record = pki.instance.cas.find((c) => c.id === 'issuing-1')!;
    expect(ca.pem).toBe(pki.issuingPem);
    expect(ca.subject).toBe(record.subject);
    expect(Array.isArray(ca.keyEvents)).toBe(true);
    expect((await get('/api/v1/cas/nope')).status).toBe(404);
  });

  test('CRLs: the latest per CA and scope, fresh after serve published them', async () => {
    const { items } = await json(get('/api/v1/crls'));
    expect(items.length).toBeGreaterThan(0);
    for (const c of items) {
      expect(c).toMatchObject({ ca: expect.any(String), scope: expect.any(String), crlNumber: expect.any(Number), entries: expect.any(Number), fresh: true });
      expect(Date.parse(c.nextUpdate)).toBeGreaterThan(Date.parse(c.thisUpdate));
    }
    expect(items.some((c: any) => c.ca === 'issuing-1')).toBe(true);
  });
});

describe('tokens', () => {
  test('an administrator creates one (secret once, no-store), lists it (no secret, no hash) and revokes it; both audited', async () => {
    const res = await post('/api/v1/tokens', admin.secret, { role: 'officer', name: 'ops', expiresAt: new Date(Date.now() + 86400_000).toISOString() });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const made = (await res.json()) as { id: string; secret: string; role: string };
    expect(made).toMatchObject({ id: expect.stringMatching(/^tok_/), role: 'officer', name: 'ops', secret: expect.stringMatching(/^trellis_/), revokedAt: null });
    expect(await json(get('/api/v1/whoami', made.secret))).toEqual({ id: made.id, role: 'officer', via: 'token' });

    const listing = await (await get('/api/v1/tokens', admin.secret)).text();
    expect(listing).not.toContain(made.secret);
    for (const t of await pki.instance.store.tokens.list()) expect(listing).not.toContain(t.hashHex);
    expect(JSON.parse(listing).items.find((t: any) => t.id === made.id)).toMatchObject({ role: 'officer', name: 'ops', lastUsedAt: expect.any(String) });

    expect(await json(post(`/api/v1/tokens/${made.id}/revoke`, admin.secret))).toMatchObject({ id: made.id, alreadyRevoked: false, revokedAt: expect.any(String) });
    expect(await json(post(`/api/v1/tokens/${made.id}/revoke`, admin.secret))).toMatchObject({ alreadyRevoked: true });
    expect((await get('/api/v1/whoami', made.secret)).status).toBe(401);

    const events = (await json(get(`/api/v1/audit/events?actor=${admin.id}&limit=1000`))).items as { type: string; data: any }[];
    expect(events.filter((e) => e.data.id === made.id).map((e) => e.type)).toEqual(['token.created', 'token.revoked']);
  });

  test('aliases are accepted and stored canonical; a limited token needs API-enrollable profiles', async () => {
    expect(await json(post('/api/v1/tokens', admin.secret, { role: 'issuer', profiles: ['server'] }), 201)).toMatchObject({ role: 'enrollment', profiles: ['server'] });
    const bad: [unknown, number, RegExp][] = [
      [{ role: 'root' }, 400, /role/],
      [{ role: 'officer', profiles: [] }, 400, /profiles/],
      [{ role: 'officer', profiles: ['nope'] }, 400, /unknown profile "nope"/],
      [{ role: 'officer', profiles: ['root-ca'] }, 400, /never enrollable/],
      [{ role: 'officer', expiresAt: '2001-01-01T00:00:00Z' }, 400, /expiresAt/],
      [{ role: 'officer', secret: 'mine' }, 400, /secret/],
    ];
    for (const [body, status, detail] of bad) {
      const res = await post('/api/v1/tokens', admin.secret, body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(((await res.json()) as { detail: string }).detail).toMatch(detail);
    }
    expect((await post('/api/v1/tokens/tok_nobody/revoke', admin.secret)).status).toBe(404);
  });

  test('pages with limit and cursor', async () => {
    const all = (await json(get('/api/v1/tokens?limit=1000', admin.secret))).items as { id: string }[];
    const first = await json(get('/api/v1/tokens?limit=2', admin.secret));
    expect(first.items.map((t: any) => t.id)).toEqual(all.slice(0, 2).map((t) => t.id));
    const second = await json(get(`/api/v1/tokens?limit=2&cursor=${first.next}`, admin.secret));
    expect(second.items.map((t: any) => t.id)).toEqual(all.slice(2, 4).map((t) => t.id));
  });
});

describe('ACME (read)', () => {
  const at = new Date('2026-12-01T10:00:00Z');
  beforeAll(async () => {
    await pki.instance.store.acmeAccounts.createOrGet({ id: 'acct-1', thumbprint: 'thumb-1', jwk: '{"crv":"P-256","kty":"EC","x":"xx","y":"yy"}', status: 'valid', contact: ['mailto:ops@example.test'], termsAgreed: true, eabKeyId: null, createdAt: at });
    for (const [i, status] of (['pending', 'valid', 'invalid'] as const).entries()) {
      await pki.instance.store.acmeOrders.createOrder(
        { id: `ord-${i}`, accountId: 'acct-1', profile: 'server', status, expires: new Date(at.getTime() + 86400_000), identifiers: [{ type: 'dns', value: `o${i}.example.test` }], authorizationIds: [], notBefore: null, notAfter: null, error: null, issuerId: null, certificateSerial: null, replaces: null, createdAt: new Date(at.getTime() + i * 1000) },
        [],
      );
    }
  });

  test('accounts show the key thumbprint, never the key', async () => {
    const text = await (await get('/api/v1/acme/accounts')).text();
    expect(text).not.toContain('"jwk"');
    expect(text).not.toContain('"x":"xx"');
    expect(JSON.parse(text).items).toEqual([{ id: 'acct-1', thumbprint: 'thumb-1', status: 'valid', contact: ['mailto:ops@example.test'], termsAgreed: true, eabKeyId: null, createdAt: at.toISOString() }]);
  });

  test('orders newest first, by status and account, in pages', async () => {
    expect((await json(get('/api/v1/acme/orders'))).items.map((o: any) => o.id)).toEqual(['ord-2', 'ord-1', 'ord-0']);
    expect((await json(get('/api/v1/acme/orders?status=valid&account=acct-1'))).items.map((o: any) => o.id)).toEqual(['ord-1']);
    expect((await json(get('/api/v1/acme/orders?account=acct-9'))).items).toEqual([]);
    const p1 = await json(get('/api/v1/acme/orders?limit=2'));
    const p2 = await json(get(`/api/v1/acme/orders?limit=2&cursor=${p1.next}`));
    expect([...p1.items, ...p2.items].map((o: any) => o.id)).toEqual(['ord-2', 'ord-1', 'ord-0']);
    expect(p2.next).toBeNull();
    expect((await get('/api/v1/acme/orders?status=ready')).status).toBe(400);
  });
});

describe('audit log', () => {
  test('events in seq order, filtered and paged; the export has the same events as NDJSON', async () => {
    const all = (await json(get('/api/v1/audit/events?limit=1000'))).items as { seq: number; type: string; hash: string; prevHash: string }[];
    expect(all.length).toBeGreaterThan(3);
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
    for (let i = 1; i < all.length; i++) expect(all[i]!.prevHash).toBe(all[i - 1]!.hash);

    const paged: number[] = [];
    for (let next: string | null = null, n = 0; n === 0 || next; n++) {
      const p: { items: { seq: number }[]; next: string | null } = await json(get(`/api/v1/audit/events?limit=2${next ? `&cursor=${next}` : ''}`));
      paged.push(...p.items.map((e) => e.seq));
      next = p.next;
    }
    expect(paged.slice(0, all.length)).toEqual(all.map((e) => e.seq));

    const type = all[0]!.type;
    expect((await json(get(`/api/v1/audit/events?type=${type}`))).items.every((e: any) => e.type === type)).toBe(true);
    expect((await json(get('/api/v1/audit/events?until=2000-01-01T00:00:00Z'))).items).toEqual([]);

    const res = await get('/api/v1/audit/events/export');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = (await res.text()).trimEnd().split('\n').map((l) => JSON.parse(l) as { seq: number });
    expect(lines.slice(0, all.length).map((e) => e.seq)).toEqual(all.map((e) => e.seq));
    const filtered = (await (await get(`/api/v1/audit/events/export?type=${type}`)).text()).trimEnd().split('\n');
    expect(filtered.every((l) => (JSON.parse(l) as { type: string }).type === type)).toBe(true);
  });

  test('verify: ok, the event count and head hash of the log', async () => {
    const v = await json(get('/api/v1/audit/verify'));
    const last = await pki.instance.store.audit.last();
    expect(v).toMatchObject({ ok: true, events: expect.any(Number), findings: [] });
    expect(v.events).toBeGreaterThanOrEqual(last!.seq);
    expect(v.firstBadSeq).toBeUndefined();
  });

  test('officers may not read it; bad filters are 400 naming the parameter', async () => {
    expect((await get('/api/v1/audit/events', officer)).status).toBe(403);
    for (const [q, name] of [['since=soon', 'since'], ['limit=-1', 'limit'], ['cursor=abc', 'cursor'], ['seq=3', 'seq']]) {
      const res = await get(`/api/v1/audit/events?${q}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { detail: string }).detail).toMatch(new RegExp(name!));
    }
  });
});

describe('issuance per day', () => {
  test('one entry per day, oldest first, today counting what was just issued and revoked', async () => {
    const before = await json(get('/api/v1/stats/issuance?days=3'));
    expect(before.days).toHaveLength(3);
    const today = before.days[2];
    expect(today.day).toBe(new Date().toISOString().slice(0, 10));
    const { csrPem } = await makeCsr(pki.dir, 'stats', '/CN=stats.example.test', { sans: 'DNS:stats.example.test' });
    const issued = await post('/api/v1/certificates', officer, { profile: 'server', csr: csrPem });
    expect(issued.status).toBe(201);
    expect((await post(`/api/v1/certificates/${issued.headers.get('x-trellis-serial')}/revoke`, officer, {})).status).toBe(200);
    const after = (await json(get('/api/v1/stats/issuance?days=3'))).days[2];
    expect(after).toEqual({ day: today.day, issued: today.issued + 1, revoked: today.revoked + 1 });
    expect((await json(get('/api/v1/stats/issuance'))).days).toHaveLength(30);
    for (const days of ['0', '367', 'x']) expect((await get(`/api/v1/stats/issuance?days=${days}`)).status).toBe(400);
  });
});

// Last: it breaks the chain for good.
describe('audit log, edited behind Trellis\'s back', () => {
  test('verify says not ok and names the first event changed', async () => {
    const db = new Database(path.join(pki.dataDir, 'trellis.db'));
    try {
      db.prepare('UPDATE AuditEvent SET actor = ? WHERE seq = 2').run('someone-else');
    } finally {
      db.close();
    }
    const v = await json(get('/api/v1/audit/verify'));
    expect(v).toMatchObject({ ok: false, firstBadSeq: 2 });
    expect(v.findings.length).toBeGreaterThan(0);
  });
});
