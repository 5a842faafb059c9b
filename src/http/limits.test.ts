import { describe, expect, test } from 'vitest';
import { instanceConfigSchema, serverLimitsSchema } from '../config/instance-config.js';
import { parseCidrs } from '../va/address-policy.js';
import { AddressRateLimiter, frontLimits, isStatusPath, ownsBodyLimit, serverOptions } from './limits.js';

/** A limiter on a hand-moved clock (milliseconds). */
function limiter(rate: number, burst: number, exempt: string[] = [], maxTracked?: number) {
  let now = 0;
  const l = new AddressRateLimiter(rate, burst, parseCidrs(exempt), () => now, maxTracked);
  return { l, advance: (ms: number) => (now += ms) };
}

describe('AddressRateLimiter (token bucket per client address)', () => {
  test('a burst passes, the next request waits, and the rate refills the bucket', () => {
    const { l, advance } = limiter(10, 5);
    for (let i = 0; i < 5; i++) expect(l.take('192.0.2.1')).toBe(0);
    // One token comes every 100 ms: Retry-After is rounded up to a whole second.
    expect(l.take('192.0.2.1')).toBe(1);
    // Another address has its own bucket.
    expect(l.take('192.0.2.2')).toBe(0);
    advance(100);
    expect(l.take('192.0.2.1')).toBe(0);
    expect(l.take('192.0.2.1')).toBe(1);
    // Idle for long, the bucket is full again but never above the burst.
    advance(60_000);
    for (let i = 0; i < 5; i++) expect(l.take('192.0.2.1')).toBe(0);
    expect(l.take('192.0.2.1')).toBeGreaterThan(0);
  });

  test('Retry-After says when the next request fits at a slow rate', () => {
    const { l } = limiter(0.1, 1);
    expect(l.take('198.51.100.7')).toBe(0);
    expect(l.take('198.51.100.7')).toBe(10);
  });

  test('a rate of 0 switches the limiter off', () => {
    const { l } = limiter(0, 1);
    for (let i = 0; i < 100; i++) expect(l.take('192.0.2.1')).toBe(0);
    expect(l.tracked).toBe(0);
  });

  test('exempt addresses are never limited', () => {
    const { l } = limiter(1, 1, ['127.0.0.0/8', '::1', '10.0.0.0/8']);
    for (let i = 0; i < 50; i++) {
      expect(l.take('127.0.0.1')).toBe(0);
      expect(l.take('::1')).toBe(0);
      expect(l.take('10.1.2.3')).toBe(0);
    }
    expect(l.take('192.0.2.1')).toBe(0);
    expect(l.take('192.0.2.1')).toBe(1);
  });

  test('IPv6 clients are counted per /64: a host cannot mint a fresh bucket per address', () => {
    const { l } = limiter(1, 2);
    expect(l.take('2001:db8:1:2::1')).toBe(0);
    expect(l.take('2001:db8:1:2:ffff::9')).toBe(0);
    expect(l.take('2001:db8:1:2:abcd:1:2:3')).toBe(1);
    // The next /64 is another site.
    expect(l.take('2001:db8:1:3::1')).toBe(0);
  });

  test('an exempt /128 inside a /64 does not exempt the /64', () => {
    const { l } = limiter(1, 1, ['2001:db8::5']);
    expect(l.take('2001:db8::5')).toBe(0);
    expect(l.take('2001:db8::6')).toBe(1);
  });

  test('the buckets kept are bounded: full buckets are forgotten first, then the oldest', () => {
    const { l, advance } = limiter(1, 1, [], 100);
    for (let i = 0; i < 100; i++) l.take(`192.0.2.${i}`);
    expect(l.tracked).toBe(100);
    // All empty: none can be forgotten as full, so the older half goes.
    l.take('198.51.100.1');
    expect(l.tracked).toBeLessThanOrEqual(51);
    advance(10_000);
    for (let i = 0; i < 100; i++) l.take(`203.0.113.${i}`);
    expect(l.tracked).toBeLessThanOrEqual(100);
  });
});

describe('limits from trellis.json', () => {
  test('an older trellis.json without server.limits gets the documented defaults', () => {
    const config = instanceConfigSchema.parse({ version: 1, baseUrl: 'https://pki.example.test', server: { host: '0.0.0.0', port: 8443 } });
    expect(config.server.limits).toEqual({
      maxHeaderBytes: 16384,
      maxHeaders: 64,
      maxConnections: 4096,
      maxConnectionsPerAddress: 128,
      headersTimeoutSeconds: 10,
      requestTimeoutSeconds: 30,
      keepAliveTimeoutSeconds: 5,
      requestsPerSecond: 50,
      burstRequests: 200,
      statusRequestsPerSecond: 1000,
      statusBurstRequests: 5000,
      exemptAddresses: ['127.0.0.0/8', '::1'],
    });
  });

  test.each([
    ['rejects: a headers timeout longer than the request timeout', { headersTimeoutSeconds: 60, requestTimeoutSeconds: 30 }, /headersTimeoutSeconds/],
    ['rejects: an unknown key', { maxBodies: 1 }, /maxBodies/],
    ['rejects: a negative rate', { requestsPerSecond: -1 }, /requestsPerSecond/],
  ])('%s', (_name, limits, message) => {
    const r = serverLimitsSchema.safeParse(limits);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(message);
  });

  test('rejects: an exempt address that is not a CIDR (serve fails at start)', () => {
    const limits = serverLimitsSchema.parse({ exemptAddresses: ['10.0.0.1/8'] });
    expect(() => frontLimits({ limits, bodyLimitBytes: 65536 }, [])).toThrow(/not a CIDR block/);
  });

  test('trusted proxies are exempt from the per-address connection cap, and the timeouts reach the server options', () => {
    const limits = serverLimitsSchema.parse({ headersTimeoutSeconds: 2, requestTimeoutSeconds: 8 });
    const f = frontLimits({ limits, bodyLimitBytes: 65536 }, ['192.0.2.0/24']);
    expect(f.connections.exempt.map((c) => c.text)).toEqual(['127.0.0.0/8', '::1', '192.0.2.0/24']);
    expect(f.requests.maxBodyBytes).toBe(65536);
    // Node checks the timeouts at this interval: well under the headers timeout.
    expect(serverOptions(f.connections)).toMatchObject({ headersTimeout: 2000, requestTimeout: 8000, keepAliveTimeout: 5000, maxHeaderSize: 16384, connectionsCheckingInterval: 500, handshakeTimeout: 2000 });
  });

  test.each([
    ['/ocsp', true],
    ['/ocsp/MEkwRzBF', true],
    ['/crl/issuing-ca/0.crl', true],
    ['/ca/issuing-ca.cer', true],
    ['/acme/new-order', false],
    ['/.well-known/est/simpleenroll', false],
    ['/api/v1/certificates', false],
  ])('%s is a status path: %s', (url, status) => {
    expect(isStatusPath(url)).toBe(status);
  });

  test.each([
    ['/ocsp', true],
    ['/.well-known/est/simpleenroll', true],
    ['/acme/server/new-order', true],
    ['/api/v1/certificates', false],
    ['/audit/checkpoint', false],
  ])('%s checks its own declared body length: %s', (url, own) => {
    expect(ownsBodyLimit(url)).toBe(own);
  });
});
