/**
 * Who may enroll under which profile (issue 9, item 1): CA and OCSP-signer
 * profiles are never enrollable, a profile lists the channels (api, acme,
 * est) it may be enrolled through, the CLI may use any other leaf profile,
 * and a token can be limited to profiles. Real server, real CLI, real CSRs.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { defaultProfilesDir } from '../../src/profiles/load.js';
import { createToken } from '../../src/tokens/tokens.js';
import { cliFor } from '../helpers/cli.js';
import { makeCsr } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let server: Serving;
let trellis: ReturnType<typeof cliFor>;
let issuerToken: string;
let adminToken: string;
const csrs: Record<string, string> = {};

/** A shipped profile with a change, written into the instance's profiles directory before `serve` loads them. */
function addProfile(name: string, base: string, change: (p: Record<string, any>) => void): void {
  const p = YAML.parse(fs.readFileSync(path.join(defaultProfilesDir(), `${base}.yaml`), 'utf8'));
  change(p);
  fs.writeFileSync(path.join(pki.dataDir, 'profiles', `${name}.yaml`), YAML.stringify(p));
}

beforeAll(async () => {
  pki = await testPki();
  trellis = cliFor(pki.dataDir, testPassphrase);
  // A leaf profile listed for no channel: only `trellis issue` may use it.
  addProfile('internal', 'server', (p) => delete p.enrollment);
  // A leaf profile enrollable over the API but not over ACME.
  addProfile('api-server', 'server', (p) => (p.enrollment = ['api']));
  issuerToken = (await createToken(pki.instance.store.tokens, 'issuer', 'test')).secret;
  adminToken = (await createToken(pki.instance.store.tokens, 'admin', 'test')).secret;
  csrs.server = (await makeCsr(pki.dir, 'srv', '/CN=app.example.test', { sans: 'DNS:app.example.test' })).csrPem;
  csrs.client = (await makeCsr(pki.dir, 'cli', '/CN=alice')).csrPem;
  csrs.device = (await makeCsr(pki.dir, 'dev', '/serialNumber=SN-000042')).csrPem;
  csrs.responder = (await makeCsr(pki.dir, 'ocsp', '/CN=rogue responder')).csrPem;
  csrs.ca = (await makeCsr(pki.dir, 'ca', '/CN=rogue CA')).csrPem;
  server = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger });
});
afterAll(async () => {
  await server?.close();
  await pki?.close();
});

const post = (token: string, profile: string, csr: string) =>
  fetch(`${server.url}/api/v1/certificates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ profile, csr }),
  });

async function problem(res: Response): Promise<{ type: string; status: number; detail: string }> {
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  return (await res.json()) as { type: string; status: number; detail: string };
}

const rows = () => pki.instance.store.certificates.count();

describe('POST /api/v1/certificates: never-enrollable profiles', () => {
  test.each([
    ['issuer', 'ocsp-responder', 'responder'],
    ['issuer', 'issuing-ca', 'ca'],
    ['issuer', 'root-ca', 'ca'],
    ['admin', 'ocsp-responder', 'responder'],
    ['admin', 'issuing-ca', 'ca'],
    ['admin', 'root-ca', 'ca'],
  ])('an %s token gets 400 badProfile for %s and nothing is stored', async (role, profile, csr) => {
    const before = await rows();
    const res = await post(role === 'admin' ? adminToken : issuerToken, profile, csrs[csr]!);
    expect(res.status).toBe(400);
    const doc = await problem(res);
    expect(doc.type).toBe('urn:trellis:problem:badProfile');
    expect(doc.detail).toMatch(new RegExp(`^profile "${profile}" is never enrollable`));
    expect(await rows()).toBe(before);
  });
});

describe('POST /api/v1/certificates: enrollment channels', () => {
  test.each(['server', 'client', 'device'])('an issuer token gets 201 for %s (enrollment lists api)', async (profile) => {
    const res = await post(issuerToken, profile, csrs[profile]!);
    expect(res.status).toBe(201);
  });

  test('a leaf profile whose enrollment lacks api: 403 forbidden naming the profile and the channel', async () => {
    const before = await rows();
    const res = await post(adminToken, 'internal', csrs.server!);
    expect(res.status).toBe(403);
    const doc = await problem(res);
    expect(doc.type).toBe('urn:trellis:problem:forbidden');
    expect(doc.detail).toBe('profile "internal" cannot be enrolled through api (its enrollment lists no channel)');
    expect(await rows()).toBe(before);
  });
});

describe('trellis issue (the operator channel)', () => {
  test('may use a leaf profile that lists no channel', async () => {
    const { csrPath } = await makeCsr(pki.dir, 'internal', '/CN=internal.example.test', { sans: 'DNS:internal.example.test' });
    const r = await trellis(['issue', '--profile', 'internal', '--csr', csrPath]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/BEGIN CERTIFICATE/);
  });

  test.each(['ocsp-responder', 'issuing-ca', 'root-ca'])('--profile %s is refused and stores nothing', async (profile) => {
    const { csrPath } = await makeCsr(pki.dir, `cli-${profile}`, '/CN=rogue');
    const before = await rows();
    const r = await trellis(['issue', '--profile', profile, '--csr', csrPath]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^trellis issue: profile "${profile}" is never enrollable`));
    expect(await rows()).toBe(before);
  });
});

describe('tokens limited to profiles', () => {
  let scoped: string;
  beforeAll(async () => {
    const r = await trellis(['token', 'create', '--role', 'issuer', '--profile', 'server', '--profile', 'client']);
    expect(r.stderr).toMatch(/profiles server, client/);
    expect(r.code).toBe(0);
    scoped = r.stdout.trim();
    expect(scoped).toMatch(/^trellis_\S+$/);
  });

  test('201 for a profile in its list', async () => {
    expect((await post(scoped, 'server', csrs.server!)).status).toBe(201);
    expect((await post(scoped, 'client', csrs.client!)).status).toBe(201);
  });

  test('403 for a profile outside its list, though the profile is enrollable over the API', async () => {
    const before = await rows();
    const res = await post(scoped, 'device', csrs.device!);
    expect(res.status).toBe(403);
    const doc = await problem(res);
    expect(doc.type).toBe('urn:trellis:problem:forbidden');
    expect(doc.detail).toMatch(/^token tok_[0-9a-f]+ may not enroll profile "device" \(it may: server, client\)$/);
    expect(await rows()).toBe(before);
  });

  test('the list is stored as given', async () => {
    const tokens = await pki.instance.store.tokens.list();
    expect(tokens.filter((t) => t.profiles !== null).map((t) => t.profiles)).toContainEqual(['server', 'client']);
    expect(tokens.find((t) => t.name === 'test')?.profiles).toBeNull();
  });

  test.each([
    ['an unknown profile', 'nope', /^trellis token: --profile: unknown profile "nope"/],
    ['a never-enrollable profile', 'ocsp-responder', /^trellis token: --profile: profile "ocsp-responder" is never enrollable/],
    ['a profile not enrollable over the API', 'internal', /^trellis token: --profile: profile "internal" cannot be enrolled through api/],
  ])('token create refuses %s', async (_name, profile, message) => {
    const before = (await pki.instance.store.tokens.list()).length;
    const r = await trellis(['token', 'create', '--role', 'issuer', '--profile', profile]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect((await pki.instance.store.tokens.list()).length).toBe(before);
  });
});

describe('ACME directories', () => {
  test.each(['ocsp-responder', 'issuing-ca', 'root-ca', 'internal', 'api-server'])('no directory for %s (404)', async (profile) => {
    const res = await fetch(`${server.url}/acme/${profile}/directory`);
    expect(res.status).toBe(404);
  });

  test('directories exist for the profiles that list acme', async () => {
    const res = await fetch(`${server.url}/acme/directory`);
    expect(res.status).toBe(200);
    const dir = (await res.json()) as { meta: { profiles: Record<string, string> } };
    expect(Object.keys(dir.meta.profiles).sort()).toEqual(['client', 'device', 'server']);
    expect((await fetch(`${server.url}/acme/client/directory`)).status).toBe(200);
  });

  test('serve refuses to start when acme.profiles names a profile not enrollable over ACME', async () => {
    const file = path.join(pki.dataDir, 'trellis.json');
    const original = fs.readFileSync(file, 'utf8');
    try {
      const config = JSON.parse(original) as { acme?: Record<string, unknown> };
      config.acme = { ...config.acme, profiles: ['server', 'api-server'] };
      fs.writeFileSync(file, JSON.stringify(config));
      await expect(serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger })).rejects.toMatchObject({
        type: 'invalidConfig',
        message: 'acme.profiles: profile "api-server" is not enrollable over ACME (its enrollment lists api); add acme to enrollment in its YAML or remove it from acme.profiles',
      });
    } finally {
      fs.writeFileSync(file, original);
    }
  });
});
