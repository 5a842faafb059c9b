/**
 * API tokens are listed, revoked and expire (issue 9, item 3); roles have
 * canonical names with the old ones as aliases (issue 12). The token command
 * runs in process, from the TypeScript source. A revoked or
 * expired token is refused at once by every server sharing the database:
 * two `serve` instances and a separate TokenVerifier over the same database
 * each accept the token first, so any cache of theirs would still hold it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fixedClock, systemClock } from '../../src/clock/clock.js';
import { serve, type Serving } from '../../src/cmd/server.js';
import { isPkiError } from '../../src/errors/pki-error.js';
import { silentLogger } from '../../src/http/log.js';
import { createToken, TokenVerifier } from '../../src/tokens/tokens.js';
import * as tokenCommand from '../../src/cmd/commands/token.js';
import { runInProcess } from '../helpers/cli-in-process.js';
import type { CliEnv, CliResult } from '../helpers/cli.js';
import { makeCsr } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let a: Serving;
let b: Serving;
let trellis: (args: string[], env?: CliEnv) => Promise<CliResult>;
let csrPem: string;

beforeAll(async () => {
  pki = await testPki();
  trellis = (args, env = {}) => {
    if (args[0] !== 'token') throw new Error('only the token command runs here');
    return runInProcess('token', tokenCommand, args.slice(1), { TRELLIS_DATA: pki.dataDir, TRELLIS_PASSPHRASE: testPassphrase, ...env });
  };
  csrPem = (await makeCsr(pki.dir, 'srv', '/CN=tok.example.test', { sans: 'DNS:tok.example.test' })).csrPem;
  a = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger });
  b = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger });
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await pki?.close();
});

const post = (on: Serving, token: string) =>
  fetch(`${on.url}/api/v1/certificates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ profile: 'server', csr: csrPem }),
  });

async function expect401(res: Response, detail: RegExp): Promise<void> {
  expect(res.status).toBe(401);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const doc = (await res.json()) as { type: string; detail: string };
  expect(doc.type).toBe('urn:trellis:problem:unauthorized');
  expect(doc.detail).toMatch(detail);
}

interface Listed {
  id: string;
  name: string | null;
  role: string;
  profiles: string[] | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

async function list(): Promise<Listed[]> {
  const r = await trellis(['token', 'list', '--json']);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Listed[];
}

async function createJson(...args: string[]): Promise<{ id: string; token: string; role: string; profiles: string[] | null; expiresAt: string | null }> {
  const r = await trellis(['token', 'create', '--role', 'issuer', '--json', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

describe('trellis token create', () => {
  test('without --json prints only the secret on stdout', async () => {
    const r = await trellis(['token', 'create', '--role', 'issuer', '--name', 'script']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^trellis_[A-Za-z0-9_-]+\n$/);
    expect(r.stderr).toMatch(/^token tok_[0-9a-f]+ \(enrollment\) created/);
  });

  test('--expires 90d --json: the expiry is 90 days out', async () => {
    const before = Date.now();
    const t = await createJson('--expires', '90d', '--name', 'ninety');
    const expires = new Date(t.expiresAt!).getTime();
    expect(expires).toBeGreaterThanOrEqual(before + 90 * 86400_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 90 * 86400_000);
    expect(t).toMatchObject({ id: expect.stringMatching(/^tok_/), token: expect.stringMatching(/^trellis_/), role: 'enrollment', profiles: null });
  });

  test.each([['soon'], ['0'], ['0d'], ['-5d'], ['1.5d'], ['']])('--expires %j is a usage error and creates nothing', async (value) => {
    const count = (await list()).length;
    // --expires=VALUE, so that "-5d" reaches the duration parser instead of reading as a flag.
    const r = await trellis(['token', 'create', '--role', 'issuer', `--expires=${value}`]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^trellis token: --expires/);
    expect((await list()).length).toBe(count);
  });
});

describe('roles', () => {
  test.each([
    ['administrator', 'administrator'],
    ['officer', 'officer'],
    ['auditor', 'auditor'],
    ['enrollment', 'enrollment'],
    ['admin', 'administrator'],
    ['issuer', 'enrollment'],
  ])('--role %s creates a token listed as %s', async (given, canonical) => {
    const r = await trellis(['token', 'create', '--role', given, '--json']);
    expect(r.code).toBe(0);
    const t = JSON.parse(r.stdout) as { id: string; role: string };
    expect(t.role).toBe(canonical);
    expect((await list()).find((e) => e.id === t.id)!.role).toBe(canonical);
  });

  test('an unknown role is a usage error naming the six names', async () => {
    const r = await trellis(['token', 'create', '--role', 'root']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--role must be one of administrator, officer, auditor, enrollment, admin, issuer/);
  });

  test('rows stored with the old names (admin, issuer) keep them, and are listed as their canonical role (the route walk in api-roles.int.test.ts authorises them)', async () => {
    await pki.instance.store.tokens.insert({ id: 'tok_oldadmin', name: 'old', role: 'admin', hashHex: 'aa'.repeat(32) });
    await pki.instance.store.tokens.insert({ id: 'tok_oldissuer', name: 'old', role: 'issuer', hashHex: 'bb'.repeat(32) });
    const listed = await list();
    expect(listed.find((e) => e.id === 'tok_oldadmin')!.role).toBe('administrator');
    expect(listed.find((e) => e.id === 'tok_oldissuer')!.role).toBe('enrollment');
    expect((await pki.instance.store.tokens.list()).find((t) => t.id === 'tok_oldadmin')!.role).toBe('admin');
  });
});

describe('trellis token list', () => {
  test('shows id, name, role, profiles, created, expires, last used and revoked, never the secret or its hash', async () => {
    const t = await createJson('--name', 'listed', '--profile', 'server', '--expires', '30d');
    const entry = (await list()).find((e) => e.id === t.id);
    expect(entry).toEqual({
      id: t.id,
      name: 'listed',
      role: 'enrollment',
      profiles: ['server'],
      createdAt: expect.any(String),
      expiresAt: t.expiresAt,
      lastUsedAt: null,
      revokedAt: null,
    });
    const json = (await trellis(['token', 'list', '--json'])).stdout;
    const text = (await trellis(['token', 'list'])).stdout;
    const stored = await pki.instance.store.tokens.list();
    for (const out of [json, text]) {
      expect(out).not.toContain(t.token);
      expect(out).not.toContain('trellis_');
      for (const s of stored) expect(out).not.toContain(s.hashHex);
    }
    expect(text).toMatch(new RegExp(`^${t.id}  enrollment  listed  profiles server  created \\S+  expires ${t.expiresAt}  never used  active$`, 'm'));
  });

  test('last used is recorded, but not rewritten on every request', async () => {
    const t = await createJson('--name', 'used');
    expect((await post(a, t.token)).status).toBe(201);
    const first = (await list()).find((e) => e.id === t.id)!.lastUsedAt;
    expect(first).not.toBeNull();
    expect((await post(a, t.token)).status).toBe(201);
    expect((await post(b, t.token)).status).toBe(201);
    expect((await list()).find((e) => e.id === t.id)!.lastUsedAt).toBe(first);
  });
});

describe('trellis token revoke', () => {
  test('the next request is refused with 401 on both servers and by a separate verifier over the same database', async () => {
    const t = await createJson('--name', 'to-revoke');
    const verifier = new TokenVerifier(pki.instance.store.tokens, systemClock);
    // Every reader accepts the token first (any positive cache now holds it).
    expect((await post(a, t.token)).status).toBe(201);
    expect((await post(b, t.token)).status).toBe(201);
    await expect(verifier.verify(t.token)).resolves.toMatchObject({ id: t.id });

    const r = await trellis(['token', 'revoke', '--id', t.id]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`token ${t.id} revoked`));

    await expect401(await post(a, t.token), /revoked/);
    await expect401(await post(b, t.token), /revoked/);
    const err = await verifier.verify(t.token).catch((e: unknown) => e);
    expect(isPkiError(err, 'unauthorized')).toBe(true);
    expect((await list()).find((e) => e.id === t.id)!.revokedAt).not.toBeNull();
  });

  test('is audited with the token id and the actor', async () => {
    const t = await createJson('--name', 'audited');
    expect((await trellis(['token', 'revoke', '--id', t.id])).code).toBe(0);
    const events = await pki.instance.store.audit.range(1, 100_000);
    const revoked = events.filter((e) => e.type === 'token.revoked').map((e) => ({ actor: e.actor, data: JSON.parse(e.data) as Record<string, unknown> }));
    expect(revoked).toContainEqual({ actor: expect.stringMatching(/^cli:/), data: expect.objectContaining({ id: t.id }) });
  });

  test('an unknown id is notFound (exit 1); a missing --id is a usage error (exit 2)', async () => {
    const r = await trellis(['token', 'revoke', '--id', 'tok_0000000000000000']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('trellis token: no token "tok_0000000000000000"\n');
    const u = await trellis(['token', 'revoke']);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/--id is required/);
  });

  test('revoking twice keeps the first revocation time', async () => {
    const t = await createJson('--name', 'twice');
    expect((await trellis(['token', 'revoke', '--id', t.id])).code).toBe(0);
    const first = (await list()).find((e) => e.id === t.id)!.revokedAt;
    const again = await trellis(['token', 'revoke', '--id', t.id]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/already revoked/);
    expect((await list()).find((e) => e.id === t.id)!.revokedAt).toBe(first);
  });
});

describe('expiry', () => {
  test('an expired token gets 401 with a problem document on every server', async () => {
    const t = await createToken(pki.instance.store.tokens, 'issuer', 'expired', { expiresAt: new Date(Date.now() - 1000) });
    await expect401(await post(a, t.secret), /expired/);
    await expect401(await post(b, t.secret), /expired/);
  });

  test('a verifier accepts a token until its expiry and refuses it from then on', async () => {
    const clock = fixedClock(new Date());
    const t = await createToken(pki.instance.store.tokens, 'issuer', 'expiring', { expiresAt: new Date(clock.now().getTime() + 60_000) });
    const verifier = new TokenVerifier(pki.instance.store.tokens, clock);
    await expect(verifier.verify(t.secret)).resolves.toMatchObject({ id: t.id });
    clock.advance(59_999);
    await expect(verifier.verify(t.secret)).resolves.toMatchObject({ id: t.id });
    clock.advance(1);
    const err = await verifier.verify(t.secret).catch((e: unknown) => e);
    expect(isPkiError(err, 'unauthorized')).toBe(true);
    expect((err as Error).message).toMatch(/expired/);
  });
});
