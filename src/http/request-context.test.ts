import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { clientAddress, newRequestId, requestIdOf, trustedProxies } from './request-context.js';

describe('clientAddress', () => {
  const none = trustedProxies([]);
  const loopback = trustedProxies(['127.0.0.0/8', '::1']);
  const chain = trustedProxies(['10.0.0.0/8', '127.0.0.1']);

  test('without trusted proxies: the TCP peer, whatever X-Forwarded-For says', () => {
    expect(clientAddress('127.0.0.1', '203.0.113.7', none)).toBe('127.0.0.1');
    expect(clientAddress('198.51.100.1', undefined, none)).toBe('198.51.100.1');
  });

  test('an untrusted peer: its X-Forwarded-For is ignored', () => {
    expect(clientAddress('198.51.100.1', '203.0.113.7', loopback)).toBe('198.51.100.1');
  });

  test('a trusted peer: the address it forwarded (the rightmost entry)', () => {
    expect(clientAddress('127.0.0.1', '203.0.113.7', loopback)).toBe('203.0.113.7');
    expect(clientAddress('::1', '2001:db8::7', loopback)).toBe('2001:db8::7');
    // IPv4-mapped peers (dual-stack sockets) match IPv4 blocks.
    expect(clientAddress('::ffff:127.0.0.1', '203.0.113.7', loopback)).toBe('203.0.113.7');
  });

  test('a client cannot choose its address by prepending entries: only trusted hops are walked, right to left', () => {
    // The client sent "X-Forwarded-For: 192.0.2.66"; the proxy appended the real peer.
    expect(clientAddress('127.0.0.1', '192.0.2.66, 203.0.113.7', loopback)).toBe('203.0.113.7');
    // Two trusted proxies in a row: the first untrusted address from the right.
    expect(clientAddress('127.0.0.1', '192.0.2.66, 203.0.113.7, 10.1.2.3', chain)).toBe('203.0.113.7');
    // All hops trusted: the leftmost.
    expect(clientAddress('127.0.0.1', '10.9.9.9, 10.1.2.3', chain)).toBe('10.9.9.9');
  });

  test('a forwarded entry that is not an address ends the walk at the last trusted hop', () => {
    expect(clientAddress('127.0.0.1', 'unknown', loopback)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', '203.0.113.7, <script>', loopback)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', '', loopback)).toBe('127.0.0.1');
  });

  test('addresses come out canonical (RFC 5952)', () => {
    expect(clientAddress('127.0.0.1', '2001:DB8:0:0::7', loopback)).toBe('2001:db8::7');
    expect(clientAddress(undefined, undefined, none)).toBe('unknown');
  });

  test('the peer alone (no trusted proxy, or no X-Forwarded-For), asked again: the same canonical text each time', () => {
    for (let i = 0; i < 2; i++) {
      expect(clientAddress('2001:DB8:0:0::7', undefined, none)).toBe('2001:db8::7');
      expect(clientAddress('::ffff:192.0.2.9', undefined, none)).toBe('192.0.2.9');
      expect(clientAddress('::ffff:192.0.2.9', undefined, loopback)).toBe('192.0.2.9');
      expect(clientAddress('not an address', undefined, none)).toBe('unknown');
    }
  });

  test('rejects: a trusted proxy that is not a CIDR block (invalidConfig, at start)', () => {
    let err: unknown;
    try {
      trustedProxies(['10.0.0.1/8']);
    } catch (e) {
      err = e;
    }
    expect(isPkiError(err, 'invalidConfig')).toBe(true);
    expect((err as Error).message).toMatch(/^trusted proxies \(server\.trustedProxies, --trusted-proxy\): "10\.0\.0\.1\/8" is not a CIDR block/);
  });
});

test('request ids are 16 hex digits and differ', () => {
  const ids = new Set(Array.from({ length: 2000 }, newRequestId));
  expect(ids.size).toBe(2000);
  for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/);
});

describe('requestIdOf (X-Request-Id)', () => {
  test.each(['a', 'lb-7f.3_A', '0123456789abcdef', 'x'.repeat(64), '550e8400-e29b-41d4-a716-446655440000'])('kept: %s', (sent) => {
    expect(requestIdOf(sent)).toBe(sent);
  });

  test.each<[string, string | string[] | undefined]>([
    ['absent', undefined],
    ['empty', ''],
    ['65 characters', 'x'.repeat(65)],
    ['a space', 'a b'],
    ['a newline (log injection)', 'a\n{"msg":"forged"}'],
    ['a quote', 'a"b'],
    ['non-ASCII', 'idé'],
    ['sent twice', ['a', 'b']],
  ])('replaced by a new id: %s', (_name, sent) => {
    expect(requestIdOf(sent)).toMatch(/^[0-9a-f]{16}$/);
  });
});
