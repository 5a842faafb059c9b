/**
 * Headless Chromium (Debian's `chromium`) driven by playwright-core, for the
 * console's browser tests. No browser is downloaded: playwright-core starts
 * /usr/bin/chromium. Each launch gets a new, empty profile directory
 * (Playwright makes one per launch and removes it on close), and the flags
 * keep Chromium off the network: this machine's closed network refuses its
 * background connections.
 */
import fs from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { interopAvailable } from './interop.js';

/** Debian's Chromium. */
export const chromiumPath = process.env.TRELLIS_CHROMIUM ?? '/usr/bin/chromium';

/** True when Chromium is installed; otherwise skips loudly, or fails under TRELLIS_REQUIRE_INTEROP=1 (CI). */
export const chromiumAvailable = (): boolean => interopAvailable(fs.existsSync(chromiumPath), 'Chromium', 'apt-get install chromium');

/** Starts headless Chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A page with what went wrong in it: CSP violations and uncaught errors. */
export interface WatchedPage {
  context: BrowserContext;
  page: Page;
  /** Every Content-Security-Policy violation the pages reported (the directive and the blocked URI). */
  cspViolations(): Promise<string[]>;
  /** Uncaught exceptions and console errors, other than the browser's own log of a failed request. */
  errors: string[];
}

/**
 * A new context (its own cookies) and page; `ignoreHTTPSErrors` for a server
 * whose certificate names another host than the one dialled. A `securitypolicyviolation`
 * listener is installed in every document before its scripts run (an init
 * script, which the page's own CSP does not govern) and the violations are
 * kept in sessionStorage, so they survive navigations within the tab.
 */
export async function watchedPage(browser: Browser, opts: { viewport?: { width: number; height: number }; ignoreHTTPSErrors?: boolean } = {}): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1280, height: 860 }, deviceScaleFactor: 1, ignoreHTTPSErrors: opts.ignoreHTTPSErrors ?? false });
  // Browser code, as text: this project compiles without the DOM types.
  await context.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) => {
      const seen = JSON.parse(sessionStorage.getItem('cspViolations') ?? '[]');
      seen.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' in ' + e.documentURI);
      sessionStorage.setItem('cspViolations', JSON.stringify(seen));
    });`,
  });
  const page = await context.newPage();
  const errors: string[] = [];
  const consoleViolations: string[] = [];
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    if (/Content Security Policy/i.test(text)) consoleViolations.push(text);
    // A 4xx the test provokes on purpose is logged by the browser as "Failed to load resource"; that is not a page fault.
    else if (!/Failed to load resource/.test(text)) errors.push(`console error: ${text}`);
  });
  return {
    context,
    page,
    errors,
    async cspViolations() {
      const stored = (await page.evaluate("JSON.parse(sessionStorage.getItem('cspViolations') ?? '[]')")) as string[];
      return [...stored, ...consoleViolations];
    },
  };
}
