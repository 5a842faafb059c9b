import { describe, expect, test } from 'vitest';
import { ValidationFailure } from './failure.js';
import { parseDnsName, parseRequest, reverseDnsName } from './request.js';
import { parseIpAddress } from './address-policy.js';
import type { ValidationRequest } from './types.js';

const token = 'evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA';
const keyAuthorization = `${token}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`;
const base: ValidationRequest = { type: 'http-01', identifier: { type: 'dns', value: 'www.example.org' }, token, keyAuthorization };

const failureOf = (req: ValidationRequest): ValidationFailure => {
  try {
    parseRequest(req);
  } catch (err) {
    if (err instanceof ValidationFailure) return err;
    throw err;
  }
  throw new Error('parseRequest accepted the request');
};

describe('parseRequest', () => {
  test('normalises a DNS name to lower case and an IP to canonical text', () => {
    expect(parseRequest({ ...base, identifier: { type: 'dns', value: 'WWW.Example.ORG' } }).target).toEqual({ type: 'dns', name: 'www.example.org' });
    const ip = parseRequest({ ...base, identifier: { type: 'ip', value: '2001:DB8:0:0::1' } }).target;
    expect(ip).toMatchObject({ type: 'ip', address: '2001:db8::1' });
  });

  test.each<[string, Partial<ValidationRequest>, string]>([
    ['rejects: a wildcard', { identifier: { type: 'dns', value: '*.example.org' } }, 'not a host name'],
    ['rejects: an IP address as dns identifier', { identifier: { type: 'dns', value: '10.0.0.1' } }, 'not a host name'],
    ['rejects: an empty label', { identifier: { type: 'dns', value: 'a..example' } }, 'not a host name'],
    ['rejects: a trailing dot', { identifier: { type: 'dns', value: 'example.org.' } }, 'not a host name'],
    ['rejects: an underscore', { identifier: { type: 'dns', value: '_acme.example.org' } }, 'not a host name'],
    ['rejects: a label of 64 octets', { identifier: { type: 'dns', value: `${'a'.repeat(64)}.org` } }, 'not a host name'],
    ['rejects: a bracketed IPv6', { identifier: { type: 'ip', value: '[::1]' } }, 'not an IPv4 or IPv6'],
    ['rejects: a zone index', { identifier: { type: 'ip', value: 'fe80::1%eth0' } }, 'not an IPv4 or IPv6'],
    ['rejects: an unknown identifier type', { identifier: { type: 'email' as 'dns', value: 'a@b.c' } }, 'unsupported identifier type'],
    ['rejects: an unknown challenge type', { type: 'dns-01' as 'http-01' }, 'unsupported challenge type'],
    ['rejects: a token with a slash', { token: `${token}/..`, keyAuthorization: `${token}/...x` }, 'base64url'],
    ['rejects: a short token', { token: 'abc', keyAuthorization: 'abc.def' }, '128 bits'],
    ['rejects: a padded token', { token: `${token}=`, keyAuthorization: `${token}=.x` }, 'base64url'],
    ['rejects: a key authorization for another token', { keyAuthorization: `${token}x.abc` }, 'RFC 8555 §8.1'],
    ['rejects: a key authorization without thumbprint', { keyAuthorization: `${token}.` }, 'RFC 8555 §8.1'],
    ['rejects: a key authorization with a third part', { keyAuthorization: `${keyAuthorization}.x` }, 'RFC 8555 §8.1'],
  ])('%s', (_name, patch, detail) => {
    const f = failureOf({ ...base, ...patch });
    expect(f.type).toBe('malformed');
    expect(f.message).toContain(detail);
  });

  test('accepts a single-label name (private networks have them) and a 253-octet name', () => {
    expect(parseDnsName('printer')).toBe('printer');
    const long = [...Array(4)].map(() => 'a'.repeat(62)).join('.') + '.x';
    expect(long.length).toBe(253);
    expect(parseDnsName(long)).toBe(long);
    expect(parseDnsName(long + 'x')).toBeNull();
  });
});

describe('reverseDnsName (RFC 8738 §6)', () => {
  test('IPv4: octets reversed under in-addr.arpa (RFC 1034 §5.2.1)', () => {
    expect(reverseDnsName(parseIpAddress('1.2.3.4')!)).toBe('4.3.2.1.in-addr.arpa');
    expect(reverseDnsName(parseIpAddress('127.0.0.1')!)).toBe('1.0.0.127.in-addr.arpa');
  });

  test('IPv6: the example of RFC 3596 §2.5, in lower case', () => {
    expect(reverseDnsName(parseIpAddress('4321:0:1:2:3:4:567:89ab')!)).toBe('b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa');
    expect(reverseDnsName(parseIpAddress('::1')!)).toBe(`1.${'0.'.repeat(31)}ip6.arpa`);
  });
});
