/**
 * The device registry through the real CLI (dist/) and the admin API of a
 * running server: register (the secret once, on stdout only), import of a
 * factory list (all or nothing, every bad line named; 100,000 lines timed;
 * secrets only in a new 0600 file), list/show (never the hash),
 * disable/enable/retire with their conflicts, trust-manufacturer; the API
 * refuses issuer tokens, answers 404 and 409 as problem documents. No
 * secret reaches stderr, the server log or the audit log.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { cliFor } from '../helpers/cli.js';
import { deviceCsr, makeFactoryCa } from '../helpers/device.js';
import { openssl } from '../helpers/openssl.js';
import { freshPgDatabase, pgAvailable } from '../helpers/postgres.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let trellis: ReturnType<typeof cliFor>;
let server: Serving;
const serverLog: string[] = [];
let adminToken: string;
let issuerToken: string;
/** Every secret handed out, to look for in logs afterwards. */
const secrets: string[] = [];

beforeAll(async () => {
  pki = await testPki();
  trellis = cliFor(pki.dataDir, testPassphrase);
  server = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: (e) => serverLog.push(JSON.stringify(e)) });
  const token = async (role: string) => {
    const r = await trellis(['token', 'create', '--role', role]);
    expect(r.code).toBe(0);
    return r.stdout.trim();
  };
  adminToken = await token('admin');
  issuerToken = await token('issuer');
}, 120_000);
afterAll(async () => {
  await server?.close();
  await pki?.close();
});

async function ok(args: string[]) {
  const r = await trellis(args);
  expect(r.stderr + r.stdout, args.join(' ')).not.toMatch(/internal error/);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

describe('trellis device register / show / list', () => {
  test('register prints the secret alone on stdout; --json gives {id, secret}', async () => {
    const r = await ok(['device', 'register', '--id', 'cli-1', '--attr', 'site=Lyon', '--attr', 'model=X 1', '--reprovision', 'reset']);
    expect(r.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    expect(r.stderr).toMatch(/^device cli-1 registered \(profile device, reprovision reset\)/);
    secrets.push(r.stdout.trim());
    const j = await ok(['device', 'register', '--id', 'cli-2', '--json']);
    const parsed = JSON.parse(j.stdout) as { id: string; secret: string };
    expect(Object.keys(parsed)).toEqual(['id', 'secret']);
    expect(parsed.id).toBe('cli-2');
    secrets.push(parsed.secret);
  });

  test('show and list never carry the secret or its hash', async () => {
    const show = await ok(['device', 'show', '--id', 'cli-1', '--json']);
    const d = JSON.parse(show.stdout);
    expect(d).toMatchObject({ id: 'cli-1', status: 'registered', profile: 'device', reprovision: 'reset', attributes: { site: 'Lyon', model: 'X 1' }, hasSecret: true });
    expect(d).not.toHaveProperty('secretHash');
    const human = await ok(['device', 'show', '--id', 'cli-1']);
    expect(human.stdout).toMatch(/status\s+registered/);
    const list = JSON.parse((await ok(['device', 'list', '--json'])).stdout) as { id: string }[];
    expect(list.map((x) => x.id)).toEqual(expect.arrayContaining(['cli-1', 'cli-2']));
    for (const s of secrets) expect(show.stdout + human.stdout + JSON.stringify(list)).not.toContain(s);
    expect(JSON.stringify(list)).not.toMatch(/secretHash|[0-9a-f]{64}/);
  });

  test.each([
    [['device', 'register', '--id', 'bad id'], /does not match the pattern/],
    [['device', 'register', '--id', 'x', '--profile', 'server'], /has no deviceId section/],
    [['device', 'register', '--id', 'x', '--reprovision', 'always'], /not one of never, reset, migrate/],
    [['device', 'register', '--id', 'cli-1'], /"cli-1" is already registered/],
    [['device', 'register', '--id', 'x', '--attr', 'oops'], /is not k=v/],
    [['device', 'show', '--id', 'nobody'], /no device "nobody"/],
    [['device', 'list', '--status', 'sleeping'], /status "sleeping" is not one of/],
    [['device', 'frobnicate'], /usage: trellis device register/],
  ])('%j fails: %s', async (args, message) => {
    const r = await trellis(args);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });
});

describe('trellis device disable / enable / retire', () => {
  test('transitions, and the refused ones', async () => {
    await ok(['device', 'register', '--id', 'life-1']);
    expect((await ok(['device', 'disable', '--id', 'life-1'])).stdout).toBe('device life-1 is disabled; 0 certificates on hold (certificateHold) until it is enabled\n');
    const again = await trellis(['device', 'disable', '--id', 'life-1']);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('trellis device: device "life-1" is disabled: disable applies only to a device that is registered or active\n');
    expect(JSON.parse((await ok(['device', 'enable', '--id', 'life-1', '--json'])).stdout)).toMatchObject({ id: 'life-1', status: 'registered' });
    expect((await ok(['device', 'retire', '--id', 'life-1'])).stdout).toMatch(/^device life-1 retired; 0 certificates revoked/);
    for (const op of ['enable', 'disable', 'retire']) expect((await trellis(['device', op, '--id', 'life-1'])).stderr).toMatch(/is retired/);
    expect((await trellis(['device', 'retire', '--id', 'nobody'])).stderr).toMatch(/no device "nobody"/);
  });
});

describe('retiring an enrolled device', () => {
  test('revokes its valid certificates as cessationOfOperation; OpenSSL sees the reason in the CRL', async () => {
    await ok(['device', 'register', '--id', 'ret-1']);
    // Two certificates issued to the device, as enrollment issues them (Certificate.deviceId set).
    const serials: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { csrPem } = await deviceCsr(pki.dir, 'ret-1');
      const checked = pki.ra.checkRequest({ profile: 'device', csr: csrPem, requestedVia: 'cli', requestedBy: 'test' });
      checked.request = { ...checked.request, deviceId: 'ret-1' };
      serials.push((await pki.ra.issue(checked)).serialHex);
    }
    const r = await ok(['device', 'retire', '--id', 'ret-1', '--json']);
    const out = JSON.parse(r.stdout) as { status: string; revoked: { serialHex: string }[] };
    expect(out.status).toBe('retired');
    expect(out.revoked.map((c) => c.serialHex).sort()).toEqual([...serials].sort());
    for (const serialHex of serials) {
      const issuer = pki.instance.cas.find((c) => c.role === 'issuing')!.id;
      expect(await pki.instance.store.certificates.findBySerial(issuer, serialHex)).toMatchObject({ status: 'revoked', revocationReason: 5, revokedBy: expect.stringMatching(/^cli:/) });
    }
    // The published CRL lists them with the reason (OpenSSL as the oracle).
    const published = JSON.parse((await ok(['crl', 'publish', '--out', path.join(pki.dir, 'crl-out'), '--json'])).stdout) as { ca: string; scope: string; file: string }[];
    const issuing = pki.instance.cas.find((c) => c.role === 'issuing')!.id;
    const full = published.find((w) => w.ca === issuing && w.scope === 'full')!;
    const text = await openssl('crl', '-inform', 'DER', '-in', full.file, '-noout', '-text');
    for (const serialHex of serials) expect(text.toUpperCase()).toContain(serialHex.toUpperCase());
    expect(text).toContain('Cessation Of Operation');
  });
});

describe('trellis device import', () => {
  test('every bad line is reported with its number; nothing is stored; no secrets file is left', async () => {
    const csv = path.join(pki.dir, 'bad.csv');
    fs.writeFileSync(csv, 'id,profile,reprovision,model\nimp-a,,,1\nbad id,,,2\nimp-a,,,3\ncli-1,,,4\nimp-b,nope,,5\nimp-c,,sometimes,6\n"unclosed,,,7\n');
    const out = path.join(pki.dir, 'bad-secrets.csv');
    const r = await trellis(['device', 'import', '--csv', csv, '--secrets-out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(new RegExp(`^${csv}:3: device id "bad id" does not match`)),
      `${csv}:4: device id "imp-a" already on line 2`,
      `${csv}:5: device id "cli-1" is already registered`,
      `${csv}:6: unknown profile "nope"`,
      `${csv}:7: reprovision policy "sometimes" is not one of never, reset, migrate`,
      `${csv}:8: a quoted field is never closed`,
      `trellis device: nothing imported: 6 bad lines in ${csv} (listed above)`,
    ]);
    expect(fs.existsSync(out)).toBe(false);
    expect((await trellis(['device', 'show', '--id', 'imp-a'])).code).toBe(1);
  });

  test('without --secrets-out no secrets are made', async () => {
    const csv = path.join(pki.dir, 'nosec.csv');
    fs.writeFileSync(csv, 'id,model\r\nns-1,"A, rev ""2"""\r\nns-2,B\r\n');
    const r = await ok(['device', 'import', '--csv', csv, '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ count: 2, seconds: expect.any(Number) });
    expect(JSON.parse((await ok(['device', 'show', '--id', 'ns-1', '--json'])).stdout)).toMatchObject({ hasSecret: false, attributes: { model: 'A, rev "2"' } });
  });

  test('an existing --secrets-out file is never overwritten', async () => {
    const csv = path.join(pki.dir, 'one.csv');
    fs.writeFileSync(csv, 'id\nkeep-1\n');
    const out = path.join(pki.dir, 'exists.csv');
    fs.writeFileSync(out, 'precious\n');
    const r = await trellis(['device', 'import', '--csv', csv, '--secrets-out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/exists; secrets are written only to a new file/);
    expect(fs.readFileSync(out, 'utf8')).toBe('precious\n');
    expect((await trellis(['device', 'show', '--id', 'keep-1'])).code).toBe(1);
  });

  test('100,000 lines with --secrets-out: timed; secrets only in the new 0600 file', { timeout: 300_000 }, async () => {
    const n = 100_000;
    const csv = path.join(pki.dir, 'factory.csv');
    const lines = ['id,model,lot'];
    for (let i = 0; i < n; i++) lines.push(`fac-${String(i).padStart(6, '0')},TX-${i % 7},L${i % 113}`);
    fs.writeFileSync(csv, `${lines.join('\n')}\n`);
    const out = path.join(pki.dir, 'factory-secrets.csv');
    const start = performance.now();
    const r = await ok(['device', 'import', '--csv', csv, '--secrets-out', out]);
    const wall = (performance.now() - start) / 1000;
    console.log(`device import of ${n} lines (SQLite, with secrets): ${r.stdout.trim()}; CLI wall time ${wall.toFixed(2)} s`);
    expect(r.stdout).toMatch(new RegExp(`^imported ${n} devices in \\d+\\.\\d\\d s; one-time secrets written to ${out} \\(mode 0600\\)\\n$`));
    // Not a terminal: no progress bar.
    expect(r.stderr).toBe('');
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    const written = fs.readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(written).toHaveLength(n);
    expect(written[0]).toMatch(/^fac-000000,[A-Za-z0-9_-]{43}$/);
    const firstSecret = written[0]!.split(',')[1]!;
    secrets.push(firstSecret, written.at(-1)!.split(',')[1]!);
    expect(r.stdout).not.toContain(firstSecret);
    expect(JSON.parse((await ok(['device', 'show', '--id', 'fac-099999', '--json'])).stdout)).toMatchObject({ hasSecret: true, attributes: { model: `TX-${99_999 % 7}`, lot: `L${99_999 % 113}` } });
  });
});

describe.skipIf(!pgAvailable())('trellis device import on PostgreSQL', () => {
  test('100,000 lines, timed', { timeout: 300_000 }, async () => {
    const db = await freshPgDatabase();
    const pg = await testPki({ databaseUrl: db.url });
    try {
      const run = cliFor(pg.dataDir, testPassphrase, { TRELLIS_DATABASE_URL: db.url });
      const n = 100_000;
      const csv = path.join(pg.dir, 'factory.csv');
      const lines = ['id,model'];
      for (let i = 0; i < n; i++) lines.push(`pg-${String(i).padStart(6, '0')},TX-${i % 7}`);
      fs.writeFileSync(csv, `${lines.join('\n')}\n`);
      const start = performance.now();
      const r = await run(['device', 'import', '--csv', csv, '--secrets-out', path.join(pg.dir, 'secrets.csv')]);
      expect(r.code, r.stderr).toBe(0);
      console.log(`device import of ${n} lines (PostgreSQL, with secrets): ${r.stdout.trim()}; CLI wall time ${((performance.now() - start) / 1000).toFixed(2)} s`);
      expect(await pg.instance.store.devices.count()).toBe(n);
    } finally {
      await pg.close();
      await db.drop();
    }
  });
});

describe('trellis device trust-manufacturer', () => {
  test('a CA is trusted once; a leaf is refused', async () => {
    const factory = await makeFactoryCa(pki.dir, 'widgets');
    const r = await ok(['device', 'trust-manufacturer', '--ca', factory.certPath, '--name', 'widgets']);
    expect(r.stdout).toMatch(/^manufacturer CA "widgets" trusted: .*widgets IDevID CA/);
    expect((await trellis(['device', 'trust-manufacturer', '--ca', factory.certPath, '--name', 'widgets'])).stderr).toMatch(/already trusted/);
    const key = path.join(pki.dir, 'leaf.key');
    const leaf = path.join(pki.dir, 'leaf.pem');
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/CN=leaf', '-days', '3', '-addext', 'basicConstraints=critical,CA:FALSE', '-out', leaf);
    const bad = await trellis(['device', 'trust-manufacturer', '--ca', leaf, '--name', 'leafy']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/not a CA certificate/);
  });
});

describe('admin API /api/v1/devices', () => {
  const call = (method: string, p: string, token: string, body?: unknown) =>
    fetch(`${server.url}${p}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });

  async function problem(res: Response, status: number, type: string): Promise<{ detail: string }> {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const doc = (await res.json()) as { type: string; detail: string };
    expect(doc.type).toBe(`urn:trellis:problem:${type}`);
    return doc;
  }

  test('an issuer token is refused (403) on every route; no token is 401', async () => {
    for (const [method, p, body] of [
      ['GET', '/api/v1/devices'],
      ['GET', '/api/v1/devices/cli-1'],
      ['POST', '/api/v1/devices', { id: 'api-x' }],
      ['POST', '/api/v1/devices/cli-1/disable'],
      ['POST', '/api/v1/devices/cli-1/enable'],
      ['POST', '/api/v1/devices/cli-1/retire'],
    ] as [string, string, unknown?][]) {
      await problem(await call(method, p, issuerToken, body), 403, 'forbidden');
    }
    expect((await fetch(`${server.url}/api/v1/devices`)).status).toBe(401);
  });

  test('POST registers (201) and returns the secret once; GET never shows it', async () => {
    const res = await call('POST', '/api/v1/devices', adminToken, { id: 'api-1', attributes: { site: 'Oslo' }, reprovision: 'migrate' });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe('/api/v1/devices/api-1');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const created = (await res.json()) as { id: string; secret: string; status: string };
    expect(created).toMatchObject({ id: 'api-1', status: 'registered', reprovision: 'migrate', attributes: { site: 'Oslo' }, hasSecret: true, secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    secrets.push(created.secret);
    const got = await call('GET', '/api/v1/devices/api-1', adminToken);
    expect(got.status).toBe(200);
    const d = await got.json();
    expect(d).toMatchObject({ id: 'api-1', hasSecret: true });
    expect(d).not.toHaveProperty('secret');
    expect(d).not.toHaveProperty('secretHash');
  });

  test('POST refusals: bad id 400, unknown profile 400, duplicate 409, unknown field 400', async () => {
    expect((await problem(await call('POST', '/api/v1/devices', adminToken, { id: 'bad id' }), 400, 'malformed')).detail).toMatch(/does not match the pattern/);
    await problem(await call('POST', '/api/v1/devices', adminToken, { id: 'api-2', profile: 'nope' }), 400, 'badProfile');
    await problem(await call('POST', '/api/v1/devices', adminToken, { id: 'api-1' }), 409, 'conflict');
    await problem(await call('POST', '/api/v1/devices', adminToken, { id: 'api-2', secret: 'mine' }), 400, 'malformed');
    await problem(await call('POST', '/api/v1/devices', adminToken, { id: 'api-2', reprovision: 'always' }), 400, 'malformed');
  });

  test('GET list pages with ?cursor= and ?limit= (items/next, as every list of /api/v1)', async () => {
    const cursor = (id: string) => Buffer.from(id).toString('base64url');
    const first = await call('GET', `/api/v1/devices?cursor=${cursor('fac-000010')}&limit=3`, adminToken);
    expect(first.status).toBe(200);
    const page = (await first.json()) as { items: { id: string }[]; next: string | null };
    expect(page).not.toHaveProperty('devices');
    expect(page.items.map((d) => d.id)).toEqual(['fac-000011', 'fac-000012', 'fac-000013']);
    expect(page.next).toBe(cursor('fac-000013'));
    const second = (await (await call('GET', `/api/v1/devices?cursor=${page.next}&limit=1`, adminToken)).json()) as { items: { id: string }[] };
    expect(second.items.map((d) => d.id)).toEqual(['fac-000014']);
    const last = (await (await call('GET', `/api/v1/devices?cursor=${cursor('ns-1')}&limit=1000&status=registered`, adminToken)).json()) as { items: { id: string }[]; next: string | null };
    expect(last.items[0]!.id).toBe('ns-2');
    expect(last.next).toBeNull();
    await problem(await call('GET', '/api/v1/devices?limit=0', adminToken), 400, 'malformed');
    await problem(await call('GET', '/api/v1/devices?limit=5000', adminToken), 400, 'malformed');
    await problem(await call('GET', '/api/v1/devices?status=sleeping', adminToken), 400, 'malformed');
    await problem(await call('GET', '/api/v1/devices?cursor=%25%25', adminToken), 400, 'malformed');
    expect((await problem(await call('GET', '/api/v1/devices?after=fac-000010', adminToken), 400, 'malformed')).detail).toMatch(/after/);
  });

  test('unknown id 404; transitions 200; bad transitions 409', async () => {
    await problem(await call('GET', '/api/v1/devices/nobody', adminToken), 404, 'notFound');
    await problem(await call('POST', '/api/v1/devices/nobody/disable', adminToken), 404, 'notFound');
    const dis = await call('POST', '/api/v1/devices/api-1/disable', adminToken);
    expect(dis.status).toBe(200);
    expect(await dis.json()).toMatchObject({ id: 'api-1', status: 'disabled' });
    await problem(await call('POST', '/api/v1/devices/api-1/disable', adminToken), 409, 'conflict');
    expect(await (await call('POST', '/api/v1/devices/api-1/enable', adminToken)).json()).toMatchObject({ status: 'registered' });
    await problem(await call('POST', '/api/v1/devices/api-1/enable', adminToken), 409, 'conflict');
    const retired = await call('POST', '/api/v1/devices/api-1/retire', adminToken);
    expect(retired.status).toBe(200);
    expect(await retired.json()).toMatchObject({ id: 'api-1', status: 'retired', revoked: [] });
    for (const op of ['disable', 'enable', 'retire']) await problem(await call('POST', `/api/v1/devices/api-1/${op}`, adminToken), 409, 'conflict');
  });
});

describe('secrets stay out of logs', () => {
  test('no secret in the server log or the audit log', async () => {
    expect(secrets.length).toBeGreaterThanOrEqual(5);
    const audit = await pki.instance.store.audit.range(1, 1_000_000);
    const auditText = JSON.stringify(audit);
    expect(auditText).toContain('device.registered');
    expect(auditText).toContain('device.imported');
    const logText = serverLog.join('\n');
    for (const s of secrets) {
      expect(logText).not.toContain(s);
      expect(auditText).not.toContain(s);
    }
  });
});
