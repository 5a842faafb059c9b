/**
 * Who may do what (issue 12): every route of the /api/v1 table, walked over
 * real HTTP with no credential, malformed and unknown ones, a token of each
 * role name (the four roles and the two aliases), and the console cookie.
 * A role outside the route's list gets 403 naming the roles needed; a role
 * inside it gets past authorisation (the input is then refused or the id is
 * unknown, so nothing changes). A route added without roles fails here.
 */
import { randomBytes } from 'node:crypto';
import express from 'express';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import type { ApiDeps } from '../../src/http/api/deps.js';
import { apiRoutes } from '../../src/http/api/routes.js';
import { mountRoutes, route, type ApiRoute } from '../../src/http/api/table.js';
import { canonicalRole, roleNames, type RoleName } from '../../src/tokens/roles.js';
import { createToken } from '../../src/tokens/tokens.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let server: Serving;
const secrets = {} as Record<RoleName, string>;

beforeAll(async () => {
  pki = await testPki();
  for (const name of roleNames) secrets[name] = (await createToken(pki.instance.store.tokens, name, `walk-${name}`)).secret;
  server = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger });
});
afterAll(async () => {
  await server?.close();
  await pki?.close();
});

/** The table, for its declarations only (no handler runs here). */
const table: ApiRoute[] = apiRoutes({} as ApiDeps);
const guarded = table.filter((r) => r.roles !== 'public');
/** Path parameters nobody has: an allowed caller gets a 404 (or a 400), and nothing is changed. */
const sample: Record<string, string> = { serial: 'ffffffffffffffffffff', id: 'nobody-here' };
const label = (r: ApiRoute) => `${r.method.toUpperCase()} ${r.path}`;

function call(r: ApiRoute, headers: Record<string, string>): Promise<Response> {
  const url = `${server.url}${r.path.replace(/\{(\w+)\}/g, (_, n: string) => sample[n]!)}`;
  if (r.method === 'get') return fetch(url, { headers });
  // A body the strict schema refuses (400), so an allowed role never issues, registers or creates anything.
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, ...(r.body ? { body: JSON.stringify({ notAField: true }) } : {}) });
}

async function expectProblem(res: Response, status: number, type: string): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const doc = (await res.json()) as { type: string; detail: string };
  expect(doc.type).toBe(`urn:trellis:problem:${type}`);
  return doc.detail;
}

describe('the table', () => {
  test('every route is under /api/v1, declares at least one role, and only the OpenAPI document is public', () => {
    expect(guarded.length).toBeGreaterThan(20);
    for (const r of table) {
      expect(r.path).toMatch(/^\/api\/v1\//);
      if (r.roles === 'public') expect(label(r)).toBe('GET /api/v1/openapi.json');
      else expect(r.roles.length, label(r)).toBeGreaterThan(0);
    }
    expect(new Set(table.map(label)).size).toBe(table.length);
  });

  test('mounting a route without roles fails at start', () => {
    const bare = route({ method: 'get', path: '/api/v1/oops', id: 'oops', tag: 'x', roles: [], summary: 'x', response: { status: 200, description: 'x' }, handler: async () => {} });
    expect(() => mountRoutes(express(), [bare], { authenticate: async () => ({}) as never, readJson: async () => ({}) as never })).toThrow(/needs at least one role/);
  });

  test('the public document needs no credential', async () => {
    const res = await fetch(`${server.url}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { openapi: string }).openapi).toMatch(/^3\.1\./);
  });
});

describe.each(guarded.map((r) => [label(r), r] as const))('%s', (_label, r) => {
  const allowed = r.roles as readonly string[];

  test('no credential, a malformed one, an unknown token, a non-bearer scheme: 401', async () => {
    for (const headers of <Record<string, string>[]>[
      {},
      { authorization: 'Bearer nonsense' },
      { authorization: `Bearer trellis_${randomBytes(32).toString('base64url')}` },
      { authorization: 'Bearer ' },
      { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` },
      { cookie: `trellis_console=trellis_${randomBytes(32).toString('base64url')}` },
    ]) {
      const res = await call(r, headers);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="trellis"');
      await expectProblem(res, 401, 'unauthorized');
    }
  });

  test.each(roleNames.map((n) => [n]))('a token of role %s: 403 exactly when the role is not allowed', async (name) => {
    const role = canonicalRole(name);
    const res = await call(r, { authorization: `Bearer ${secrets[name]}` });
    if (allowed.includes(role)) {
      expect([401, 403], `${label(r)} as ${name}: ${res.status}`).not.toContain(res.status);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.status).toBeLessThan(500);
    } else {
      const detail = await expectProblem(res, 403, 'forbidden');
      expect(detail).toBe(`role "${role}" may not do this (needs ${allowed.join(' or ')})`);
    }
  });

  test(`the console cookie: ${r.method === 'get' ? 'honoured on GET' : '401 on POST, even for an administrator'}`, async () => {
    const res = await call(r, { cookie: `other=1; trellis_console=${secrets.administrator}` });
    if (r.method === 'get') {
      expect(allowed).toContain('administrator');
      expect([401, 403]).not.toContain(res.status);
      expect(res.status).toBeLessThan(500);
    } else {
      expect(await expectProblem(res, 401, 'unauthorized')).toMatch(/GET and HEAD only/);
    }
  });
});

describe('the principal', () => {
  test('whoami names the token, its canonical role and how it came', async () => {
    const stored = await pki.instance.store.tokens.list();
    for (const name of roleNames) {
      const res = await fetch(`${server.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${secrets[name]}` } });
      const id = stored.find((t) => t.name === `walk-${name}`)!.id;
      expect(await res.json()).toEqual({ id, role: canonicalRole(name), via: 'token' });
    }
    const viaCookie = await fetch(`${server.url}/api/v1/whoami`, { headers: { cookie: `trellis_console=${secrets.auditor}` } });
    expect(await viaCookie.json()).toMatchObject({ role: 'auditor', via: 'cookie' });
  });

  test('an enrollment token limited to a profile may not enroll another (403)', async () => {
    const limited = await createToken(pki.instance.store.tokens, 'enrollment', 'limited', { profiles: ['client'] });
    const res = await fetch(`${server.url}/api/v1/certificates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${limited.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ profile: 'server', csr: 'x' }),
    });
    expect(await expectProblem(res, 403, 'forbidden')).toMatch(/may not enroll profile "server"/);
  });
});
