/**
 * The web console in a real browser (issue 12): headless Chromium (Debian's
 * `chromium`, driven by playwright-core) against a real `serve`. An auditor
 * logs in, reads the overview, searches a certificate by serial and opens it;
 * an officer revokes it through the API; the page shows it revoked after a
 * reload. A wrong token and an enrollment token stay on the login page, no
 * page opens without the cookie, page scripts never see the cookie, and no
 * page reports a Content-Security-Policy violation.
 *
 * With TRELLIS_CONSOLE_SCREENSHOTS=<dir> it also writes screenshots of the
 * main pages there (docs/screenshots/ for the README: see docs/console.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { createToken } from '../../src/tokens/tokens.js';
import { chromiumAvailable, launchChromium, watchedPage, type WatchedPage } from '../helpers/browser.js';
import { AcmeClient, assertOk } from '../helpers/acme-client.js';
import { makeCsr } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

const available = chromiumAvailable();
const screenshots = process.env.TRELLIS_CONSOLE_SCREENSHOTS;

let pki: TestPki;
let server: Serving;
let browser: Browser;
const token = { auditor: '', officer: '', enrollment: '' };
/** Serials issued for the test, oldest first; `target` is the one searched, opened and revoked. */
const serials: string[] = [];
let target = '';
const watched: WatchedPage[] = [];

const dayMs = 86_400_000;

/** Issues a server certificate through the API (officer token); returns its serial. */
async function issue(name: string): Promise<string> {
  const { csrPem } = await makeCsr(pki.dir, name, `/CN=${name}.example.test`, { sans: `DNS:${name}.example.test,DNS:www.${name}.example.test` });
  const res = await fetch(`${server.url}/api/v1/certificates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token.officer}`, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ profile: 'server', csr: csrPem }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { serialHex: string }).serialHex;
}

async function revoke(serial: string, reason: string): Promise<void> {
  const res = await fetch(`${server.url}/api/v1/certificates/${serial}/revoke`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token.officer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason }),
  });
  expect(res.status).toBe(200);
}

/**
 * Moves the issuance (and revocation) times of some rows into the past, so
 * the 30-day chart has history to draw: the only way to have certificates
 * issued on earlier days without waiting for them.
 */
function backdate(rows: { serial: string; daysAgo: number; revokedDaysAgo?: number }[]): void {
  const db = new Database(path.join(pki.dataDir, 'trellis.db'));
  try {
    db.pragma('busy_timeout = 5000');
    const at = (daysAgo: number) => new Date(Date.now() - daysAgo * dayMs).toISOString().replace('Z', '+00:00');
    const issued = db.prepare('UPDATE "Certificate" SET "issuedAt" = ? WHERE "serialHex" = ?');
    const revoked = db.prepare('UPDATE "Certificate" SET "revokedAt" = ? WHERE "serialHex" = ?');
    for (const r of rows) {
      expect(issued.run(at(r.daysAgo), r.serial).changes).toBe(1);
      if (r.revokedDaysAgo !== undefined) expect(revoked.run(at(r.revokedDaysAgo), r.serial).changes).toBe(1);
    }
  } finally {
    db.close();
  }
}

async function newPage(): Promise<WatchedPage> {
  const w = await watchedPage(browser);
  watched.push(w);
  return w;
}

/** Opens a console page and waits until its module has rendered it. */
async function open(w: WatchedPage, pathAndQuery: string): Promise<void> {
  await w.page.goto(`${server.url}${pathAndQuery}`);
  await w.page.waitForSelector('body[data-ready="true"]');
}

/** Posts the login form and waits for the page it leads to (the overview, or the login page again with the reason). */
async function logIn(w: WatchedPage, secret: string): Promise<void> {
  await w.page.goto(`${server.url}/console/login`);
  await w.page.fill('#token', secret);
  const posted = w.page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/console/login');
  await w.page.click('button[type="submit"]');
  const status = (await posted).status();
  await w.page.waitForURL(status === 303 ? /\/console\/$/ : /\/console\/login$/);
  await w.page.waitForLoadState();
}

async function shoot(w: WatchedPage, name: string): Promise<void> {
  if (!screenshots) return;
  fs.mkdirSync(screenshots, { recursive: true });
  await w.page.screenshot({ path: path.join(screenshots, `${name}.png`) });
}

describe.runIf(available)('the console in headless Chromium', () => {
  beforeAll(async () => {
    pki = await testPki();
    const tokens = pki.instance.store.tokens;
    token.auditor = (await createToken(tokens, 'auditor', 'console auditor')).secret;
    token.officer = (await createToken(tokens, 'officer', 'console officer')).secret;
    token.enrollment = (await createToken(tokens, 'enrollment', 'console enrollment')).secret;
    server = await serve({ dataDir: pki.dataDir, host: '127.0.0.1', port: 0, passphrase: testPassphrase, log: silentLogger });
    for (const name of ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel']) serials.push(await issue(name));
    target = serials[1]!;
    await revoke(serials[0]!, 'superseded');
    await revoke(serials[3]!, 'cessationOfOperation');
    backdate([
      { serial: serials[0]!, daysAgo: 21, revokedDaysAgo: 9 },
      { serial: serials[2]!, daysAgo: 14 },
      { serial: serials[3]!, daysAgo: 14, revokedDaysAgo: 2 },
      { serial: serials[4]!, daysAgo: 6 },
      { serial: serials[5]!, daysAgo: 6 },
    ]);
    for (const id of ['sensor-0001', 'sensor-0002', 'gateway-7']) {
      const res = await fetch(`${server.url}/api/v1/devices`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token.officer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id, profile: 'device', attributes: { site: 'lab-2' } }),
      });
      expect(res.status).toBe(201);
    }
    // An ACME account and a pending order, for the ACME page (the directory's URLs carry the base URL; connectTo dials the server).
    const acme = await AcmeClient.create({ directoryUrl: 'http://pki.test:8080/acme/directory', connectTo: server.url });
    assertOk(await acme.newAccount({ termsOfServiceAgreed: true, contact: ['mailto:ops@example.test'] }), 'newAccount');
    assertOk(await acme.newOrder({ identifiers: ['app.example.test'] }), 'newOrder');
    acme.close();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await pki?.close();
  });

  test('no console page opens without the cookie: each goes to the login page', async () => {
    const w = await newPage();
    for (const p of ['/console/', '/console/certificates', `/console/certificates/${serials[0]}`, '/console/devices', '/console/audit', '/console/acme']) {
      await w.page.goto(`${server.url}${p}`);
      expect(new URL(w.page.url()).pathname, p).toBe('/console/login');
    }
    expect(await w.page.title()).toBe('Log in · Trellis console');
  });

  test('a wrong token stays on the login page with the reason, and sets no cookie', async () => {
    const w = await newPage();
    await logIn(w, 'trellis_not-a-real-token');
    expect(new URL(w.page.url()).pathname).toBe('/console/login');
    expect(await w.page.textContent('.message')).toBe('Login refused: unknown token.');
    expect(await w.context.cookies()).toEqual([]);
  });

  test('an enrollment token is refused: it only requests certificates', async () => {
    const w = await newPage();
    await logIn(w, token.enrollment);
    expect(new URL(w.page.url()).pathname).toBe('/console/login');
    expect(await w.page.textContent('.message')).toMatch(/role "enrollment", which only requests certificates: the console needs an auditor, officer or administrator token/);
    expect(await w.context.cookies()).toEqual([]);
    await w.page.goto(`${server.url}/console/`);
    expect(new URL(w.page.url()).pathname).toBe('/console/login');
  });

  test('an auditor logs in, searches a certificate by serial, opens it, and sees it revoked after an officer revokes it', async () => {
    const w = await newPage();
    const { page } = w;
    if (screenshots) {
      await page.goto(`${server.url}/console/login`);
      await shoot(w, 'login');
    }
    await logIn(w, token.auditor);
    expect(new URL(page.url()).pathname).toBe('/console/');
    await page.waitForSelector('body[data-ready="true"]');

    // The cookie: kept by Chromium on http://127.0.0.1 although Secure, HttpOnly and so invisible to page scripts.
    const cookies = await w.context.cookies();
    expect(cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, secure: c.secure, sameSite: c.sameSite, path: c.path }))).toEqual([
      { name: 'trellis_console', httpOnly: true, secure: true, sameSite: 'Strict', path: '/' },
    ]);
    expect(cookies[0]!.value).toBe(token.auditor);
    expect(await page.evaluate('document.cookie')).toBe('');

    // Overview: who, the CAs, CRL freshness, the audit chain, the chart.
    expect(await page.textContent('#who')).toMatch(/^auditor · tok_[0-9a-f]+$/);
    expect(await page.getAttribute('nav a[aria-current="page"]', 'href')).toBe('/console/');
    const caText = await page.textContent('main');
    for (const ca of pki.instance.cas) expect(caText).toContain(ca.id);
    expect(caText).toContain('The hash chain of all');
    expect(await page.locator('.tile', { hasText: 'CRLs fresh' }).textContent()).toMatch(/CRLs fresh(\d+) of \1/);
    expect(await page.locator('section', { hasText: 'CRLs' }).locator('> table tbody tr').count()).toBe(pki.instance.cas.length);
    // Every row counts, the OCSP responder certificates the instance issued itself included.
    const rowsStored = await pki.instance.store.certificates.count();
    expect(await page.locator('.tile', { hasText: 'Issued, 30 days' }).textContent()).toBe(`Issued, 30 days${rowsStored}`);
    expect(await page.locator('.tile', { hasText: 'Revoked, 30 days' }).textContent()).toBe('Revoked, 30 days2');
    // 30 days, two bars each; a bar's title says its day and count, the backdated rows included.
    expect(await page.locator('svg.chart rect').count()).toBe(60);
    const day = (daysAgo: number) => new Date(Date.now() - daysAgo * dayMs).toISOString().slice(0, 10);
    const titles = await page.locator('svg.chart rect title').allTextContents();
    expect(titles).toContain(`${day(14)}: 2 issued`);
    expect(titles).toContain(`${day(6)}: 2 issued`);
    expect(titles).toContain(`${day(9)}: 1 revoked`);
    expect(titles).toContain(`${day(0)}: ${rowsStored - 5} issued`);
    await shoot(w, 'overview');

    // A CA's page from the overview: its key state, the changes of that state, its PEM.
    const issuing = pki.instance.cas.find((c) => c.role === 'issuing')!;
    await Promise.all([page.waitForURL(new RegExp(`/console/cas/${issuing.id}$`)), page.click(`a[href="/console/cas/${issuing.id}"]`)]);
    await page.waitForSelector('body[data-ready="true"]');
    expect(await page.textContent('h1')).toBe(`${issuing.name} active issuing`);
    expect(await page.getAttribute('nav a[aria-current="page"]', 'href')).toBe('/console/');
    expect(await page.locator('section', { hasText: 'Key state changes' }).locator('tbody tr').count()).toBeGreaterThanOrEqual(1);
    expect(await page.textContent('pre.pem')).toBe(pki.issuingPem);

    // Search by serial: one row, the certificate.
    await open(w, '/console/certificates');
    expect(await page.locator('main tbody tr').count()).toBe(rowsStored);
    await open(w, '/console/certificates?profile=server');
    expect(await page.locator('main tbody tr').count()).toBe(8);
    expect(await page.inputValue('input[name="profile"]')).toBe('server');
    await shoot(w, 'certificates');
    // The revoked ones say why in the list (the overview links to it).
    await open(w, '/console/');
    await Promise.all([page.waitForURL(/status=revoked$/), page.click('text=Revoked certificates →')]);
    await page.waitForSelector('body[data-ready="true"]');
    expect((await page.locator('main tbody tr td:nth-child(6)').allTextContents()).sort()).toEqual(['revokedcessationOfOperation', 'revokedsuperseded']);
    await open(w, '/console/certificates');
    await page.fill('input[name="q"]', target);
    await Promise.all([page.waitForURL(/\/console\/certificates\?q=/), page.press('input[name="q"]', 'Enter')]);
    await page.waitForSelector('body[data-ready="true"]');
    const rows = page.locator('main tbody tr');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain('bravo.example.test');

    // Open it: valid, decoded, PEM.
    await Promise.all([page.waitForURL(new RegExp(`/console/certificates/${target}`)), rows.first().locator('a').click()]);
    await page.waitForSelector('body[data-ready="true"]');
    expect(await page.textContent('h1')).toBe(`Certificate ${target} valid`);
    expect(await page.textContent('pre.decoded')).toMatch(/bravo\.example\.test/);
    expect(await page.textContent('pre.pem')).toMatch(/^-----BEGIN CERTIFICATE-----/);

    // Revoked through the API by an officer (the console changes nothing); a reload shows it.
    await revoke(target, 'keyCompromise');
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    expect(await page.textContent('h1')).toBe(`Certificate ${target} revoked`);
    expect(await page.textContent('.notice.bad')).toMatch(/^Revoked on \d{4}-\d\d-\d\d \d\d:\d\d UTC, reason: keyCompromise\.$/);
    await shoot(w, 'certificate');

    // The audit log verifies, pages 50 events at a time, and lists the revocation under its type.
    await open(w, '/console/audit');
    expect(await page.textContent('.notice.good')).toMatch(/^Verified: the hash chain of all \d+ events holds/);
    expect(await page.locator('main tbody tr').count()).toBe(50);
    await shoot(w, 'audit');
    await Promise.all([page.waitForURL(/cursor=/), page.click('text=Next page →')]);
    await page.waitForSelector('body[data-ready="true"]');
    expect(await page.textContent('main tbody tr:first-child td:first-child')).toBe('51');
    await open(w, '/console/audit?type=certificate.revoked');
    expect(await page.locator('main tbody tr').count()).toBe(3);
    expect(await page.textContent('main tbody')).toContain(target);

    await open(w, '/console/devices');
    expect(await page.locator('main tbody tr').count()).toBe(3);
    await shoot(w, 'devices');
    await open(w, '/console/acme');
    const accounts = page.locator('section', { hasText: 'Accounts' }).locator('tbody tr');
    expect(await accounts.count()).toBe(1);
    expect(await accounts.first().textContent()).toMatch(/validmailto:ops@example\.test/);
    const orders = page.locator('section', { hasText: 'Orders' }).locator('tbody tr');
    expect(await orders.count()).toBe(1);
    expect(await orders.first().textContent()).toMatch(/app\.example\.testpending—/);

    // Log out: the cookie is gone and the console closed again.
    await Promise.all([page.waitForURL(/\/console\/login$/), page.click('form.logout button')]);
    expect(await w.context.cookies()).toEqual([]);
    await page.goto(`${server.url}/console/`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
  });

  test('an officer reads everything but the audit log, which says the role may not read it', async () => {
    const w = await newPage();
    const { page } = w;
    await logIn(w, token.officer);
    await page.waitForSelector('body[data-ready="true"]');
    expect(await page.textContent('#who')).toMatch(/^officer · tok_/);
    expect(await page.locator('svg.chart rect').count()).toBe(60);
    expect(await page.locator('section', { hasText: 'Audit log' }).locator('.notice.warn').textContent()).toBe('Your role may not read this: role "officer" may not do this (needs auditor or administrator).');
    expect(await page.locator('.tile', { hasText: 'Audit chain' }).count()).toBe(0);
    await open(w, '/console/audit');
    expect(await page.textContent('main .notice')).toMatch(/^Your role may not read this/);
    await open(w, '/console/certificates');
    expect(await page.locator('main tbody tr').count()).toBeGreaterThan(0);
  });

  test('text from the API stays text: a device attribute holding HTML is shown as written, and nothing runs', async () => {
    const hostile = '<img src=x onerror="document.title=\'pwned\'">';
    const res = await fetch(`${server.url}/api/v1/devices`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token.officer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'hostile-1', profile: 'device', attributes: { note: hostile } }),
    });
    expect(res.status).toBe(201);
    const w = await newPage();
    await logIn(w, token.auditor);
    await open(w, '/console/devices');
    expect(await w.page.textContent('main tbody')).toContain(`note=${hostile}`);
    expect(await w.page.locator('main img').count()).toBe(0);
    await open(w, '/console/audit?type=device.registered');
    expect(await w.page.textContent('main tbody')).toContain('hostile-1');
    expect(await w.page.locator('main img').count()).toBe(0);
    expect(await w.page.title()).toBe('Audit log · Trellis console');
    // A search the API refuses keeps the form and says why.
    await open(w, `/console/certificates?q=${encodeURIComponent('100%')}`);
    expect(await w.page.textContent('main .notice')).toMatch(/^query parameter q: letters, digits, punctuation and spaces only/);
    expect(await w.page.inputValue('input[name="q"]')).toBe('100%');
  });

  test('a 401 from the API while a page is open (the token revoked meanwhile) sends the browser to the login page', async () => {
    const { id, secret } = await createToken(pki.instance.store.tokens, 'auditor', 'revoked while reading');
    const w = await newPage();
    await logIn(w, secret);
    await open(w, '/console/devices');
    await pki.instance.store.tokens.revoke(id, new Date());
    // The page's own API module makes the next read, as a page does on a search or a click.
    await w.page.evaluate("import('/console/static/js/api.js').then((m) => { m.getJson('/api/v1/devices'); })");
    await w.page.waitForURL(/\/console\/login$/);
    expect(await w.page.title()).toBe('Log in · Trellis console');
  });

  test('a serial recorded but never signed (failed) has no certificate to show, and the page says so', async () => {
    const serial = '0badc0ffee0000000000000000000001';
    const db = new Database(path.join(pki.dataDir, 'trellis.db'));
    try {
      db.pragma('busy_timeout = 5000');
      const at = (ms: number) => new Date(ms).toISOString().replace('Z', '+00:00');
      const issuing = pki.instance.cas.find((c) => c.role === 'issuing')!;
      db.prepare(
        'INSERT INTO "Certificate" ("issuerId", "serialHex", "profile", "subject", "sans", "notBefore", "notAfter", "status", "crlShard", "requestedVia", "requestedBy", "createdAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ).run(issuing.id, serial, 'server', 'CN=failed.example.test', '[{"type":"dns","value":"failed.example.test"}]', at(Date.now()), at(Date.now() + 90 * dayMs), 'failed', 0, 'api', 'tok_test', at(Date.now()));
    } finally {
      db.close();
    }
    const w = await newPage();
    await logIn(w, token.auditor);
    await open(w, `/console/certificates/${serial}`);
    expect(await w.page.textContent('h1')).toBe(`Certificate ${serial} failed`);
    expect(await w.page.textContent('main .notice.warn:last-child')).toBe('No certificate: this serial was recorded before signing and its status is failed.');
    expect(await w.page.locator('pre').count()).toBe(0);
  });

  test('over HTTPS (serve --tls) the login works the same and the cookie is Secure', async () => {
    const tls = await serve({ dataDir: pki.dataDir, host: '127.0.0.1', port: 0, tls: true, passphrase: testPassphrase, log: silentLogger });
    try {
      expect(tls.url).toMatch(/^https:/);
      // The server certificate names the instance's host (pki.test), not 127.0.0.1; the test dials the address.
      const w = await watchedPage(browser, { ignoreHTTPSErrors: true });
      await w.page.goto(`${tls.url}/console/login`);
      await w.page.fill('#token', token.auditor);
      await Promise.all([w.page.waitForURL(/\/console\/$/), w.page.click('button[type="submit"]')]);
      await w.page.waitForSelector('body[data-ready="true"]');
      expect(await w.page.textContent('#who')).toMatch(/^auditor · tok_/);
      expect((await w.context.cookies()).map((c) => [c.name, c.secure, c.httpOnly, c.sameSite])).toEqual([['trellis_console', true, true, 'Strict']]);
      expect(await w.cspViolations()).toEqual([]);
      expect(w.errors).toEqual([]);
      await w.context.close();
    } finally {
      await tls.close();
    }
  });

  test('the cookie cannot change anything: a POST carrying it is refused by the API', async () => {
    const res = await fetch(`${server.url}/api/v1/certificates/${serials[6]}/revoke`, {
      method: 'POST',
      headers: { cookie: `trellis_console=${token.auditor}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'keyCompromise' }),
    });
    expect(res.status).toBe(401);
  });

  test('no page reported a CSP violation or an error', async () => {
    for (const w of watched) {
      expect(await w.cspViolations()).toEqual([]);
      expect(w.errors).toEqual([]);
    }
    expect(watched.length).toBeGreaterThanOrEqual(4);
  });
});
