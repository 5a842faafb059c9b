/**
 * The console's own HTTP surface over a real `serve` (docs/console.md): the
 * login and logout forms, the session cookie's attributes, pages closed
 * without a session, static files, and the security headers on every answer.
 * The browser test (console.int.test.ts) drives the same pages in Chromium.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { contentSecurityPolicy } from '../../src/console/headers.js';
import { silentLogger } from '../../src/http/log.js';
import { createToken } from '../../src/tokens/tokens.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let server: Serving;
let origin: string;
const secrets: Record<'auditor' | 'officer' | 'administrator' | 'admin' | 'enrollment' | 'issuer', string> = {} as never;

beforeAll(async () => {
  pki = await testPki();
  for (const role of Object.keys({ auditor: 1, officer: 1, administrator: 1, admin: 1, enrollment: 1, issuer: 1 }) as (keyof typeof secrets)[]) {
    secrets[role] = (await createToken(pki.instance.store.tokens, role, `console-${role}`)).secret;
  }
  server = await serve({ dataDir: pki.dataDir, host: '127.0.0.1', port: 0, passphrase: testPassphrase, log: silentLogger });
  origin = server.url;
});
afterAll(async () => {
  await server?.close();
  await pki?.close();
});

/** A form post as a browser on the console's own page sends it. */
const postLogin = (body: string, headers: Record<string, string | undefined> = {}) => {
  const all: Record<string, string | undefined> = { 'content-type': 'application/x-www-form-urlencoded', origin, 'sec-fetch-site': 'same-origin', accept: 'text/html', ...headers };
  return fetch(`${origin}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined)),
    body,
  });
};
const get = (path: string, headers: Record<string, string> = {}) => fetch(`${origin}${path}`, { redirect: 'manual', headers });
const cookieOf = (secret: string) => ({ cookie: `trellis_console=${secret}` });

function expectSecurityHeaders(res: Response): void {
  expect(res.headers.get('content-security-policy')).toBe(contentSecurityPolicy);
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
}

describe('login', () => {
  test.each(['auditor', 'officer', 'administrator', 'admin'] as const)('a %s token logs in: 303 to /console/ with an HttpOnly, SameSite=Strict, Secure cookie for 8 hours', async (role) => {
    const res = await postLogin(`token=${encodeURIComponent(secrets[role])}`);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console/');
    expectSecurityHeaders(res);
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie.split('; ').sort()).toEqual([`trellis_console=${secrets[role]}`, 'HttpOnly', 'Max-Age=28800', 'Path=/', 'SameSite=Strict', 'Secure'].sort());
    const page = await get('/console/', cookieOf(secrets[role]));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('data-page="overview"');
  });

  test.each(['enrollment', 'issuer'] as const)('a %s token is refused with a clear message and no cookie', async (role) => {
    const res = await postLogin(`token=${encodeURIComponent(secrets[role])}`);
    expect(res.status).toBe(403);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/role &quot;enrollment&quot;, which only requests certificates: the console needs an auditor, officer or administrator token/);
    expect(html).toContain('<form method="post" action="/console/login">');
    // The same cookie set by hand opens no page either.
    expect((await get('/console/', cookieOf(secrets[role]))).headers.get('location')).toBe('/console/login');
  });

  test('a wrong token stays on the login page (401, the reason shown); a program gets a problem document', async () => {
    const html = await postLogin('token=trellis_wrongwrongwrong');
    expect(html.status).toBe(401);
    expect(html.headers.get('set-cookie')).toBeNull();
    expect(await html.text()).toContain('Login refused: unknown token.');
    const problem = await postLogin('token=not-a-token', { accept: 'application/json' });
    expect(problem.status).toBe(401);
    expect(problem.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await problem.json()).toMatchObject({ type: 'urn:trellis:problem:unauthorized', detail: 'missing or malformed bearer token' });
  });

  test('a revoked token logs in no more, and its cookie opens no page', async () => {
    const { id, secret } = await createToken(pki.instance.store.tokens, 'auditor', 'soon revoked');
    expect((await get('/console/', cookieOf(secret))).status).toBe(200);
    await pki.instance.store.tokens.revoke(id, new Date());
    expect((await postLogin(`token=${secret}`)).status).toBe(401);
    const page = await get('/console/', cookieOf(secret));
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/console/login');
    expect(page.headers.get('set-cookie')).toMatch(/^trellis_console=; Max-Age=0;/);
  });

  test.each([
    ['another site as Origin', { origin: 'http://evil.example' }, 403, /Origin does not match the host/],
    ['Origin null without Sec-Fetch-Site', { origin: 'null', 'sec-fetch-site': undefined }, 403, /Origin does not match the host/],
    ['a cross-site fetch', { 'sec-fetch-site': 'cross-site' }, 403, /posted from the console itself \(Sec-Fetch-Site: cross-site\)/],
    ['JSON instead of a form', { 'content-type': 'application/json' }, 415, /application\/x-www-form-urlencoded/],
    ['a compressed body', { 'content-encoding': 'gzip' }, 415, /Content-Encoding/],
  ])('refuses %s with a problem and sets no cookie', async (_what, headers, status, detail) => {
    const res = await postLogin(`token=${secrets.auditor}`, { accept: 'application/json', ...headers });
    expect(res.status).toBe(status);
    expect(res.headers.get('set-cookie')).toBeNull();
    expectSecurityHeaders(res);
    expect(((await res.json()) as { detail: string }).detail).toMatch(detail);
  });

  test('a form body over 4 KiB is 413; an empty token is 400', async () => {
    const big = await postLogin(`token=${secrets.auditor}&pad=${'x'.repeat(4100)}`, { accept: 'application/json' });
    expect(big.status).toBe(413);
    expect(big.headers.get('set-cookie')).toBeNull();
    const empty = await postLogin('token=', { accept: 'application/json' });
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as { detail: string }).detail).toBe('enter a token');
  });

  test('Origin null from the console itself (what Chromium sends under Referrer-Policy no-referrer) logs in', async () => {
    const res = await postLogin(`token=${secrets.auditor}`, { origin: 'null', 'sec-fetch-site': 'same-origin' });
    expect(res.status).toBe(303);
  });

  test('a chunked form body (no Content-Length) over 4 KiB is 413 too, answered before the connection closes', async () => {
    const { status, headers } = await new Promise<{ status: number; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
      const req = http.request(`${origin}/console/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode!, headers: res.headers });
      });
      req.on('error', reject);
      req.write(`token=${secrets.auditor}&pad=`);
      for (let i = 0; i < 8; i++) req.write('x'.repeat(1024));
      req.end();
    });
    expect(status).toBe(413);
    expect(headers.connection).toBe('close');
    expect(headers['set-cookie']).toBeUndefined();
  });

  test('a program without Origin or Sec-Fetch-Site (not a page of another site) may log in', async () => {
    const res = await fetch(`${origin}/console/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${secrets.auditor}` });
    expect(res.status).toBe(303);
  });
});

describe('logout', () => {
  test('POST clears the cookie and goes to the login page; other methods are 405', async () => {
    const res = await fetch(`${origin}/console/logout`, { method: 'POST', redirect: 'manual', headers: { origin, ...cookieOf(secrets.auditor) } });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console/login');
    expect(res.headers.get('set-cookie')).toBe('trellis_console=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/; Secure');
    const viaGet = await get('/console/logout');
    expect(viaGet.status).toBe(405);
    expect(viaGet.headers.get('allow')).toBe('POST');
  });

  test('a logout posted by another site is refused', async () => {
    const res = await fetch(`${origin}/console/logout`, { method: 'POST', redirect: 'manual', headers: { origin: 'https://evil.example' } });
    expect(res.status).toBe(403);
    expect(res.headers.get('set-cookie')).toBeNull();
  });
});

describe('pages and files', () => {
  const pagePaths = ['/console/', '/console/certificates', '/console/certificates/0a1b2c', '/console/devices', '/console/audit', '/console/acme', '/console/cas/issuing-1'];

  test.each(pagePaths)('%s without a session is a 303 to the login page', async (path) => {
    const res = await get(path);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console/login');
    expectSecurityHeaders(res);
  });

  test.each(pagePaths)('%s with a session is the shell: no-store, the strict CSP, no inline script or style', async (path) => {
    const res = await get(path, cookieOf(secrets.auditor));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expectSecurityHeaders(res);
    const html = await res.text();
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="/console/static/js/main.js">']);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
  });

  test('the login page has no script at all and the same headers', async () => {
    const res = await get('/console/login');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expectSecurityHeaders(res);
    const html = await res.text();
    expect(html).not.toMatch(/<script|<style|\sstyle=|\son[a-z]+=/i);
  });

  test('/console goes to /console/; an unknown page or a bad serial is a 404 problem', async () => {
    expect((await get('/console')).headers.get('location')).toBe('/console/');
    for (const path of ['/console/nope', '/console/certificates/not-hex', '/console/devices/x']) {
      const res = await get(path, cookieOf(secrets.auditor));
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expectSecurityHeaders(res);
    }
  });

  test('static files are served by name with their type; templates, other paths and other methods are not', async () => {
    const js = await get('/console/static/js/main.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expectSecurityHeaders(js);
    expect((await get('/console/static/console.css')).headers.get('content-type')).toBe('text/css; charset=utf-8');
    for (const path of ['/console/static/shell.html', '/console/static/login.html', '/console/static/../../../package.json', '/console/static/%2e%2e/handler.ts', '/console/static/js/']) {
      expect((await get(path)).status, path).toBe(404);
    }
    const put = await fetch(`${origin}/console/static/js/main.js`, { method: 'PUT' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD');
  });

  test('HEAD answers with the headers and no body', async () => {
    const res = await fetch(`${origin}/console/login`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expectSecurityHeaders(res);
    expect(await res.text()).toBe('');
  });
});
