/**
 * GET /api/v1/certificates and /api/v1/certificates/{serial} over real HTTP,
 * on SQLite and on PostgreSQL: filters, search, keyset pages that stay
 * stable while certificates are issued, the detail with its PEM (OpenSSL
 * reads it) and decoding, and precise 400s for bad queries.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { createToken } from '../../src/tokens/tokens.js';
import { makeCsr, openssl } from '../helpers/openssl.js';
import { freshPgDatabase, pgAvailable } from '../helpers/postgres.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

interface Summary {
  serial: string;
  ca: string;
  profile: string;
  subject: string;
  sans: string[];
  notBefore: string;
  notAfter: string;
  status: string;
  revokedAt: string | null;
  revocationReason: string | null;
  requestedVia: string;
  requestedBy: string | null;
  deviceId: string | null;
  issuedAt: string | null;
}
interface Page {
  items: Summary[];
  next: string | null;
}

const flavours: [string, boolean][] = [
  ['SQLite', true],
  ['PostgreSQL', pgAvailable()],
];

describe.each(flavours)('on %s', (flavour, available) => {
  let pki: TestPki;
  let server: Serving;
  let drop: (() => Promise<void>) | undefined;
  let officer: { id: string; secret: string };
  let auditor: string;
  /** Serials issued here, oldest first, with the name each was issued for. */
  const issued: { serial: string; name: string; profile: string }[] = [];

  const get = async (p: string, token = auditor) => fetch(`${server.url}${p}`, { headers: { authorization: `Bearer ${token}` } });
  const page = async (p: string): Promise<Page> => {
    const res = await get(p);
    expect(res.status, p).toBe(200);
    return (await res.json()) as Page;
  };
  async function issue(name: string, profile: string): Promise<string> {
    const { csrPem } = await makeCsr(pki.dir, `${flavour}-${name}`, `/CN=${name}.example.test`, { sans: `DNS:${name}.example.test,DNS:alt-${name}.example.test` });
    const res = await fetch(`${server.url}/api/v1/certificates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${officer.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ profile, csr: csrPem }),
    });
    expect(res.status).toBe(201);
    const serial = res.headers.get('x-trellis-serial')!;
    issued.push({ serial, name, profile });
    return serial;
  }

  beforeAll(async () => {
    if (!available) return;
    let databaseUrl: string | undefined;
    if (flavour === 'PostgreSQL') {
      const db = await freshPgDatabase();
      databaseUrl = db.url;
      drop = db.drop;
    }
    pki = await testPki(databaseUrl ? { databaseUrl } : {});
    officer = await createToken(pki.instance.store.tokens, 'officer', 'officer');
    auditor = (await createToken(pki.instance.store.tokens, 'auditor', 'auditor')).secret;
    server = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger, ...(databaseUrl ? { databaseUrl } : {}) });
    for (const [i, profile] of ['server', 'server', 'client', 'server', 'client', 'server'].entries()) await issue(`host${i}`, profile);
    const revoke = await fetch(`${server.url}/api/v1/certificates/${issued[1]!.serial}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${officer.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'keyCompromise' }),
    });
    expect(revoke.status).toBe(200);
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await pki?.close();
    await drop?.();
  });

  test.skipIf(!available)('newest first, every field; the revoked one says when and why', async () => {
    const all = await page('/api/v1/certificates?limit=1000');
    const ours = all.items.filter((c) => c.requestedBy === officer.id);
    expect(ours.map((c) => c.serial)).toEqual(issued.map((i) => i.serial).reverse());
    const revoked = ours.find((c) => c.serial === issued[1]!.serial)!;
    expect(revoked).toMatchObject({ status: 'revoked', revocationReason: 'keyCompromise', revokedAt: expect.stringMatching(/Z$/) });
    const first = ours.find((c) => c.serial === issued[0]!.serial)!;
    expect(first).toEqual({
      serial: issued[0]!.serial,
      ca: 'issuing-1',
      profile: 'server',
      subject: expect.stringContaining('host0.example.test'),
      sans: ['host0.example.test', 'alt-host0.example.test'],
      notBefore: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      notAfter: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      status: 'valid',
      revokedAt: null,
      revocationReason: null,
      requestedVia: 'api',
      requestedBy: officer.id,
      deviceId: null,
      issuedAt: expect.stringMatching(/Z$/),
    });
    expect(all.next).toBeNull();
  });

  test.skipIf(!available)('filters: profile, ca, status, expiry window; they combine', async () => {
    const serials = async (q: string) => (await page(`/api/v1/certificates?limit=1000&${q}`)).items.filter((c) => c.requestedBy === officer.id).map((c) => c.serial);
    const byProfile = (p: string) => issued.filter((i) => i.profile === p).map((i) => i.serial).reverse();
    expect(await serials('profile=client')).toEqual(byProfile('client'));
    expect(await serials('profile=server&status=revoked')).toEqual([issued[1]!.serial]);
    expect(await serials('status=valid')).toEqual(issued.filter((_, i) => i !== 1).map((i) => i.serial).reverse());
    expect(await serials('status=expired')).toEqual([]);
    expect(await serials('ca=issuing-1')).toHaveLength(issued.length);
    expect(await serials('ca=nope')).toEqual([]);
    const now = Date.now();
    expect(await serials(`expiresAfter=${new Date(now).toISOString()}&expiresBefore=${new Date(now + 3650 * 86400_000).toISOString()}`)).toHaveLength(issued.length);
    expect(await serials(`expiresBefore=${new Date(now).toISOString()}`)).toEqual([]);
  });

  test.skipIf(!available)('expired: a valid certificate past notAfter (the store query, with a later "now")', async () => {
    const later = new Date(Date.now() + 20 * 365 * 86400_000);
    const rows = await pki.instance.store.queries.certificates({ status: 'expired', limit: 1000, now: later, issuerId: 'issuing-1' });
    expect(rows.map((r) => r.serialHex)).toEqual(expect.arrayContaining(issued.filter((_, i) => i !== 1).map((i) => i.serial)));
    expect(rows.every((r) => r.status === 'valid')).toBe(true);
  });

  test.skipIf(!available)('q: a serial (exact, prefix, any case), a subject substring, a SAN substring', async () => {
    const target = issued[3]!;
    const q = async (text: string) => (await page(`/api/v1/certificates?q=${encodeURIComponent(text)}`)).items.map((c) => c.serial);
    expect(await q(target.serial)).toEqual([target.serial]);
    expect(await q(target.serial.slice(0, 12))).toContain(target.serial);
    expect(await q(target.serial.slice(0, 12).toUpperCase())).toContain(target.serial);
    expect(await q('host3.example')).toEqual([target.serial]);
    expect(await q('HOST3.EXAMPLE')).toEqual([target.serial]);
    expect(await q('alt-host4')).toEqual([issued[4]!.serial]);
    expect(await q('no-such-name.example')).toEqual([]);
  });

  test.skipIf(!available)('q with "_" matches that character only (LIKE would take it for any character)', async () => {
    const issuing = pki.instance.cas.find((c) => c.id === 'issuing-1')!;
    const intent = (serialHex: string, subject: string) => ({ issuerId: 'issuing-1', serialHex, profile: 'server', subject, sans: '[]', notBefore: issuing.notBefore, notAfter: issuing.notAfter, lintDer: Buffer.from([0x30, 0]), crlShard: 0, requestedVia: 'cli' as const, requestedBy: 'underscore' });
    await pki.instance.store.certificates.insertIntents([intent('0a01', 'CN=svc_under'), intent('0a02', 'CN=svcXunder'), intent('0a03', 'CN=svc_under2')]);
    const found = (await page(`/api/v1/certificates?q=svc_under&limit=1`)).items.map((c) => c.serial);
    expect(found).toEqual(['0a03']);
    const all = (await page(`/api/v1/certificates?q=SVC_UNDER`)).items.map((c) => c.serial);
    expect(all).toEqual(['0a03', '0a01']);
    const second = await page(`/api/v1/certificates?q=svc_under&limit=1&cursor=${Buffer.from(String((await pki.instance.store.queries.certificatesBySerial('0a03', 'issuing-1'))[0]!.id)).toString('base64url')}`);
    expect(second.items.map((c) => c.serial)).toEqual(['0a01']);
  });

  test.skipIf(!available)('cursor pages cover everything once, and stay stable while certificates are issued', async () => {
    const seen: string[] = [];
    let next: string | null = null;
    let pages = 0;
    do {
      const p: Page = await page(`/api/v1/certificates?limit=2${next ? `&cursor=${next}` : ''}`);
      seen.push(...p.items.map((c) => c.serial));
      if (pages === 0) await issue('meanwhile', 'server');
      next = p.next;
      pages++;
    } while (next);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).not.toContain(issued.at(-1)!.serial);
    expect(seen).toEqual(expect.arrayContaining(issued.slice(0, -1).map((i) => i.serial)));
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  test.skipIf(!available)('the detail: summary, PEM (OpenSSL reads the same serial) and a text decoding', async () => {
    const target = issued[2]!;
    const res = await get(`/api/v1/certificates/${target.serial.toUpperCase()}`);
    expect(res.status).toBe(200);
    const d = (await res.json()) as Summary & { pem: string; text: string };
    expect(d).toMatchObject({ serial: target.serial, profile: 'client', status: 'valid' });
    const file = path.join(pki.dir, `${flavour}-detail.pem`);
    fs.writeFileSync(file, d.pem);
    const out = await openssl('x509', '-in', file, '-noout', '-serial', '-subject');
    expect(out).toMatch(new RegExp(`serial=${target.serial}`, 'i'));
    expect(out).toMatch(/host2\.example\.test/);
    expect(d.text).toMatch(/Serial Number/);
    expect(d.text).toMatch(/host2\.example\.test/);
    expect(d.text).toMatch(/Subject Alternative Name/);
  });

  test.skipIf(!available)('a serial two CAs used: 409 without ca=, the one asked for with it', async () => {
    const serial = issued[0]!.serial;
    const issuing = pki.instance.cas.find((c) => c.id === 'issuing-1')!;
    await pki.instance.store.certificates.insertIntents([
      { issuerId: 'root', serialHex: serial, profile: 'issuing-ca', subject: 'CN=twin', sans: '[]', notBefore: issuing.notBefore, notAfter: issuing.notAfter, lintDer: Buffer.from([0x30, 0]), crlShard: 0, requestedVia: 'cli', requestedBy: 'test' },
    ]);
    const twin = await get(`/api/v1/certificates/${serial}`);
    expect(twin.status).toBe(409);
    expect(((await twin.json()) as { detail: string }).detail).toMatch(/issuing-1, root|root, issuing-1/);
    expect(((await (await get(`/api/v1/certificates/${serial}?ca=issuing-1`)).json()) as Summary).ca).toBe('issuing-1');
    const pending = (await (await get(`/api/v1/certificates/${serial}?ca=root`)).json()) as Summary & { pem: string | null };
    expect(pending).toMatchObject({ ca: 'root', status: 'pending', pem: null, text: null });
  });

  test.skipIf(!available)('issuance per day and the latest CRLs (raw SQL and grouping differ per flavour)', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const stats = (await (await get('/api/v1/stats/issuance?days=2')).json()) as { days: { day: string; issued: number; revoked: number }[] };
    expect(stats.days.map((d) => d.day)[1]).toBe(today);
    expect(stats.days[1]!.issued).toBeGreaterThanOrEqual(issued.length);
    expect(stats.days[1]!.revoked).toBeGreaterThanOrEqual(1);
    const crls = (await (await get('/api/v1/crls')).json()) as { items: { ca: string; crlNumber: number; fresh: boolean }[] };
    expect(crls.items.some((c) => c.ca === 'issuing-1' && c.crlNumber > 0 && c.fresh)).toBe(true);
  });

  test.skipIf(!available)('404 for an unknown serial; 400 naming the parameter for bad input', async () => {
    expect((await get('/api/v1/certificates/abcdef0123')).status).toBe(404);
    const bad: [string, RegExp][] = [
      ['/api/v1/certificates/not-hex', /serial/],
      ['/api/v1/certificates?limit=0', /limit/],
      ['/api/v1/certificates?limit=1001', /limit/],
      ['/api/v1/certificates?limit=ten', /limit/],
      ['/api/v1/certificates?status=lost', /status/],
      ['/api/v1/certificates?expiresAfter=yesterday', /expiresAfter/],
      ['/api/v1/certificates?cursor=!!', /cursor/],
      [`/api/v1/certificates?cursor=${Buffer.from('x').toString('base64url')}`, /cursor/],
      ['/api/v1/certificates?q=50%25', /q/],
      ['/api/v1/certificates?profile=a&profile=b', /profile/],
      ['/api/v1/certificates?color=red', /color/],
      ['/api/v1/certificates/abcd?ca=', /ca/],
    ];
    for (const [p, detail] of bad) {
      const res = await get(p);
      expect(res.status, p).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await res.json()) as { detail: string }).detail, p).toMatch(detail);
    }
  });
});
