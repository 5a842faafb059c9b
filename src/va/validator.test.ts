import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { fixedClock } from '../clock/clock.js';
import { isPkiError } from '../errors/pki-error.js';
import { parseResolverAddress } from './resolve.js';
import { startDnsServer, type TestDnsServer } from './testing/dns-server.js';
import { startUnresponsiveListener } from './testing/unresponsive-listener.js';
import { createValidator } from './index.js';
import type { ValidationRequest, ValidationResult, ValidatorOptions } from './types.js';

const token = 'Xg1mVZx6i1pn0QnX0MJ2qk_c9l3uCZxPkd0z8_KLwzY';
const keyAuthorization = `${token}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`;
const http01 = (type: 'dns' | 'ip', value: string): ValidationRequest => ({ type: 'http-01', identifier: { type, value }, token, keyAuthorization });
const errorOf = (r: ValidationResult) => (r.status === 'invalid' ? r.error : undefined);

interface Responder {
  port: number;
  hosts: string[];
}

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

async function serve(handler: http.RequestListener = (_req, res) => res.end(keyAuthorization), host = '127.0.0.1', port = 0): Promise<Responder> {
  const state: Responder = { port: 0, hosts: [] };
  const server = http.createServer((req, res) => {
    state.hosts.push(req.headers.host!);
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

let dns: TestDnsServer;
beforeAll(async () => {
  dns = await startDnsServer({
    'device.test': { a: ['127.0.0.1'] },
    'empty.test': {},
    'internal.test': { a: ['10.0.0.1'] },
    'mixed.test': { a: ['10.0.0.1', '127.0.0.1'] },
    'dual.test': { a: ['127.0.0.1'], aaaa: ['::1'] },
    'v6only.test': { aaaa: ['::1'] },
    'slow.test': 'silent',
  });
});
afterAll(() => dns.close());

const validator = (port: number, extra: ValidatorOptions = {}) => createValidator({ http01Port: port, resolver: dns.address, allow: ['127.0.0.0/8', '::1'], timeoutMs: 3_000, ...extra });

describe('resolution (A then AAAA through the resolver option)', () => {
  test('valid: a DNS name is resolved, connected to by address, and sent as Host', async () => {
    const s = await serve();
    const before = dns.queries.length;
    const r = await validator(s.port).validate(http01('dns', 'Device.Test'));
    expect(r).toMatchObject({ status: 'valid', address: '127.0.0.1' });
    expect(r.records[0]).toMatchObject({ hostname: 'device.test', addressesResolved: ['127.0.0.1'], addressUsed: '127.0.0.1' });
    expect(s.hosts).toEqual([`device.test:${s.port}`]);
    expect(dns.queries.slice(before).sort()).toEqual(['device.test A', 'device.test AAAA']);
  });

  test('dns: NXDOMAIN', async () => {
    const r = await validator(1).validate(http01('dns', 'nowhere.test'));
    expect(errorOf(r)).toEqual({ type: 'dns', detail: `nowhere.test does not exist (NXDOMAIN from ${dns.address})` });
    expect(r.records).toEqual([]);
  });

  test('dns: a name with neither A nor AAAA records', async () => {
    const r = await validator(1).validate(http01('dns', 'empty.test'));
    expect(errorOf(r)).toEqual({ type: 'dns', detail: `no A or AAAA records for empty.test from ${dns.address}` });
  });

  test('connection: a timeout while the DNS server stays silent', async () => {
    const r = await validator(1, { timeoutMs: 300 }).validate(http01('dns', 'slow.test'));
    expect(errorOf(r)).toEqual({ type: 'connection', detail: 'timed out after 300 ms (the budget for the whole validation) while resolving slow.test' });
  });

  test('IPv4 first: with both families listening, the IPv4 address is used', async () => {
    const v4 = await serve();
    await serve(undefined, '::1', v4.port);
    const r = await validator(v4.port).validate(http01('dns', 'dual.test'));
    expect(r).toMatchObject({ status: 'valid', address: '127.0.0.1' });
    expect(r.records[0]!.addressesResolved).toEqual(['127.0.0.1', '::1']);
  });

  test('IPv6 next: when the IPv4 address refuses the connection, the IPv6 one is tried', async () => {
    const v6 = await serve(undefined, '::1');
    const r = await validator(v6.port).validate(http01('dns', 'dual.test'));
    expect(r).toMatchObject({ status: 'valid', address: '::1' });
    expect(v6.hosts).toEqual([`dual.test:${v6.port}`]);
  });

  test('connection: connectTimeoutMs bounds a connection that never completes', async () => {
    const hole = await startUnresponsiveListener();
    try {
      const started = performance.now();
      const r = await validator(hole.port, { connectTimeoutMs: 200 }).validate(http01('ip', '127.0.0.1'));
      expect(errorOf(r)).toEqual({ type: 'connection', detail: `connecting to 127.0.0.1:${hole.port} timed out after 200 ms` });
      expect(performance.now() - started).toBeLessThan(1_500);
    } finally {
      await hole.close();
    }
  });

  test('IPv6 next: after the IPv4 connection times out, the IPv6 address answers within the same budget', async () => {
    const hole = await startUnresponsiveListener();
    try {
      const v6 = await serve(undefined, '::1', hole.port);
      const r = await validator(hole.port, { connectTimeoutMs: 200 }).validate(http01('dns', 'dual.test'));
      expect(r).toMatchObject({ status: 'valid', address: '::1' });
      expect(v6.hosts).toEqual([`dual.test:${hole.port}`]);
    } finally {
      await hole.close();
    }
  });

  test('an IPv6-only name', async () => {
    const v6 = await serve(undefined, '::1');
    expect(await validator(v6.port).validate(http01('dns', 'v6only.test'))).toMatchObject({ status: 'valid', address: '::1' });
  });

  test('connection: both families refuse; the detail names both attempts', async () => {
    const s = await serve();
    const port = s.port;
    for (const srv of servers.splice(0)) await new Promise((resolve) => srv.close(resolve));
    const r = await validator(port).validate(http01('dns', 'dual.test'));
    expect(errorOf(r)?.type).toBe('connection');
    expect(errorOf(r)?.detail).toMatch(new RegExp(`connecting to 127\\.0\\.0\\.1:${port} failed: .*ECONNREFUSED.*; connecting to \\[::1\\]:${port} failed: .*ECONNREFUSED`));
  });

  test('DNS rebinding: a redirect back to the same name uses the addresses already checked', async () => {
    dns.set('rebind.test', { a: ['127.0.0.1'] });
    const s = await serve((req, res) => {
      if (req.url === '/next') return res.end(keyAuthorization);
      // The attacker's DNS now points the name at an internal address.
      dns.set('rebind.test', { a: ['10.0.0.1'] });
      res.writeHead(302, { Location: `http://rebind.test:${s.port}/next` });
      res.end();
    });
    const before = dns.queries.length;
    const r = await validator(s.port).validate(http01('dns', 'rebind.test'));
    expect(r).toMatchObject({ status: 'valid', address: '127.0.0.1' });
    expect(dns.queries.slice(before).filter((q) => q === 'rebind.test A')).toHaveLength(1);
  });
});

describe('address policy on the way out', () => {
  test('127.0.0.1 is refused without allow, before any connection', async () => {
    const s = await serve();
    const r = await createValidator({ http01Port: s.port }).validate(http01('ip', '127.0.0.1'));
    expect(errorOf(r)).toEqual({ type: 'connection', detail: 'refusing to connect to 127.0.0.1 (127.0.0.0/8: loopback, RFC 1122 §3.2.1.3): on the deny list of addresses the validator must not reach' });
    expect(s.hosts).toEqual([]);
    expect(r.records).toEqual([]);
  });

  test('127.0.0.1 is connected to with allow=["127.0.0.0/8"]', async () => {
    const s = await serve();
    expect((await createValidator({ http01Port: s.port, allow: ['127.0.0.0/8'] }).validate(http01('ip', '127.0.0.1'))).status).toBe('valid');
  });

  test('10.0.0.1 is refused (RFC 1918)', async () => {
    const r = await createValidator({ allow: ['127.0.0.0/8'] }).validate(http01('ip', '10.0.0.1'));
    expect(errorOf(r)?.detail).toContain('refusing to connect to 10.0.0.1 (10.0.0.0/8: private-use, RFC 1918)');
  });

  test('an IPv4-mapped IPv6 identifier of a denied address is refused as that address', async () => {
    const r = await createValidator({}).validate(http01('ip', '::ffff:127.0.0.1'));
    expect(errorOf(r)?.detail).toContain('refusing to connect to 127.0.0.1 (127.0.0.0/8: loopback');
  });

  test('a name that resolves only to denied addresses is refused, naming them', async () => {
    const r = await validator(1).validate(http01('dns', 'internal.test'));
    expect(errorOf(r)).toEqual({ type: 'connection', detail: 'refusing to connect to 10.0.0.1 (10.0.0.0/8: private-use, RFC 1918) (the addresses of internal.test): on the deny list of addresses the validator must not reach' });
  });

  test('denied addresses among the answers are skipped, the permitted one is used', async () => {
    const s = await serve();
    const r = await validator(s.port).validate(http01('dns', 'mixed.test'));
    expect(r).toMatchObject({ status: 'valid', address: '127.0.0.1' });
    expect(r.records[0]!.addressesResolved).toEqual(['10.0.0.1', '127.0.0.1']);
  });

  test('a redirect to a name with a denied address is refused', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(301, { Location: `http://internal.test:${s.port}/` });
      res.end();
    });
    const r = await validator(s.port).validate(http01('dns', 'device.test'));
    expect(errorOf(r)?.detail).toContain('refusing to connect to 10.0.0.1 (10.0.0.0/8: private-use, RFC 1918) (the addresses of internal.test)');
  });

  test('tls-alpn-01 goes through the same policy', async () => {
    const r = await createValidator({ tlsAlpn01Port: 1 }).validate({ ...http01('ip', '127.0.0.1'), type: 'tls-alpn-01' });
    expect(errorOf(r)?.detail).toContain('refusing to connect to 127.0.0.1 (127.0.0.0/8: loopback');
  });
});

describe('createValidator and validate', () => {
  test('validatedAt comes from the clock option', async () => {
    const s = await serve();
    const at = new Date('2030-01-02T03:04:05Z');
    const r = await validator(s.port, { clock: fixedClock(at) }).validate(http01('ip', '127.0.0.1'));
    expect(r.status === 'valid' && r.validatedAt).toEqual(at);
  });

  test('validations run side by side, each with its own budget', async () => {
    const slow = await serve(() => undefined);
    const fast = await serve();
    const v = validator(fast.port, { timeoutMs: 400 });
    const slowV = validator(slow.port, { timeoutMs: 400 });
    const [a, b] = await Promise.all([slowV.validate(http01('ip', '127.0.0.1')), v.validate(http01('ip', '127.0.0.1'))]);
    expect(errorOf(a)?.detail).toContain('timed out after 400 ms');
    expect(b.status).toBe('valid');
  });

  test('malformed: a bad request never reaches the network', async () => {
    const r = await validator(1).validate({ ...http01('dns', 'device.test'), keyAuthorization: 'other.token' });
    expect(errorOf(r)?.type).toBe('malformed');
    expect(r.records).toEqual([]);
  });

  test.each<[string, ValidatorOptions, string]>([
    ['a bad allow CIDR', { allow: ['10.0.0.1/8'] }, 'did you mean 10.0.0.0/8'],
    ['an allow entry that is a name', { allow: ['localhost'] }, 'is not an IP address'],
    ['port 0', { http01Port: 0 }, 'http01Port must be an integer from 1 to 65535'],
    ['port 65536', { tlsAlpn01Port: 65536 }, 'tlsAlpn01Port must be an integer from 1 to 65535'],
    ['a zero timeout', { timeoutMs: 0 }, 'timeoutMs'],
    ['a fractional body limit', { maxBodyBytes: 1.5 }, 'maxBodyBytes'],
    ['negative redirects', { maxRedirects: -1 }, 'maxRedirects'],
    ['a resolver host name', { resolver: 'localhost:53' }, '"localhost" is not an IP address'],
    ['a resolver port out of range', { resolver: '127.0.0.1:99999' }, 'port 99999 is out of range'],
  ])('invalidConfig at start: %s', (_name, opts, detail) => {
    let caught: unknown;
    try {
      createValidator(opts);
    } catch (err) {
      caught = err;
    }
    expect(isPkiError(caught, 'invalidConfig')).toBe(true);
    expect((caught as Error).message).toContain(detail);
  });

  test.each([
    ['127.0.0.1:8053', '127.0.0.1:8053'],
    ['127.0.0.1', '127.0.0.1:53'],
    ['[::1]:5353', '[::1]:5353'],
    ['[::1]', '[::1]:53'],
    ['::1', '[::1]:53'],
  ])('parseResolverAddress(%s) = %s', (text, want) => {
    expect(parseResolverAddress(text)).toBe(want);
  });
});
