import type { IncomingMessage } from 'node:http';
import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { assertSameOrigin } from './origin.js';

const request = (headers: Record<string, string>) => ({ headers: { host: 'pki.example.test:8443', ...headers } }) as unknown as IncomingMessage;

describe('assertSameOrigin', () => {
  test.each([
    ['accepts: the console page itself (Origin and Sec-Fetch-Site)', { origin: 'https://pki.example.test:8443', 'sec-fetch-site': 'same-origin' }],
    ['accepts: Origin null with Sec-Fetch-Site same-origin (Chromium under no-referrer)', { origin: 'null', 'sec-fetch-site': 'same-origin' }],
    ['accepts: Origin in another case', { origin: 'https://PKI.example.test:8443' }],
    ['accepts: a program sending neither header', {}],
  ])('%s', (_what, headers) => {
    expect(() => assertSameOrigin(request(headers))).not.toThrow();
  });

  test.each([
    ['refuses: another site', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }],
    ['refuses: a sibling subdomain (same-site is not same-origin)', { origin: 'https://www.example.test:8443', 'sec-fetch-site': 'same-site' }],
    ['refuses: another port of this host', { origin: 'https://pki.example.test:9443' }],
    ['refuses: Origin null without Sec-Fetch-Site', { origin: 'null' }],
    ['refuses: an Origin that is not a URL', { origin: 'not a url' }],
    ['refuses: Sec-Fetch-Site none (typed into the address bar, not posted by the form)', { 'sec-fetch-site': 'none' }],
  ])('%s', (_what, headers) => {
    let caught: unknown;
    try {
      assertSameOrigin(request(headers));
    } catch (err) {
      caught = err;
    }
    expect(isPkiError(caught, 'forbidden')).toBe(true);
  });
});
