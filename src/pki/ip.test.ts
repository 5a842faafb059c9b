import { describe, expect, test } from 'vitest';
import { addressLikeName } from './general-name.js';
import { dnsNameLooksLikeIpv4, isUnspecifiedIp } from './ip.js';

describe('dnsNameLooksLikeIpv4 (the WHATWG host parser would read an IPv4 address)', () => {
  test.each(['127.1', '2130706433', '0x7f.1', '1.2.3.4.5', '1.2.3.4', 'example.123', 'a.0x', 'a.0X7F', 'a.0x7f.', '*.1', '08', 'foo.0777'])('refused: %s', (name) => {
    expect(dnsNameLooksLikeIpv4(name)).toBe(true);
  });
  test.each(['example.com', 'a1.example', '1a.example', 'xn--80ak6aa92e.com', '127.0.0.1.example', 'example.com.', 'a.0x7g', 'a.1e5', 'a.x1', 'localhost', '*.example.test', '0x7f.example'])('accepted: %s', (name) => {
    expect(dnsNameLooksLikeIpv4(name)).toBe(false);
  });
  test.each(['', '.', '..', 'a..', '1..', '.1', '1.', '1.2.', 'a.0x.', 'a.b', 'A.0XFF', 'x.-1', '0x', 'a.b.c.0x1f.', '1.a.'])('the last label, one trailing dot dropped, as split would find it: %j', (name) => {
    const labels = name.replace(/\.$/, '').split('.');
    const last = labels[labels.length - 1]!;
    expect(dnsNameLooksLikeIpv4(name)).toBe(/^[0-9]+$/.test(last) || /^0x[0-9a-f]*$/i.test(last));
  });
});

describe('isUnspecifiedIp', () => {
  test.each(['0.0.0.0', '::', '0:0:0:0:0:0:0:0', '::ffff:0.0.0.0'])('unspecified: %s', (ip) => expect(isUnspecifiedIp(ip)).toBe(true));
  test.each(['0.0.0.1', '::1', '127.0.0.1', '10.0.0.0', '2001:db8::', 'not an address'])('not unspecified: %s', (ip) => expect(isUnspecifiedIp(ip)).toBe(false));
});

describe('addressLikeName', () => {
  test('names the rule for a numeric DNS name and an unspecified IP; null for ordinary names', () => {
    expect(addressLikeName({ type: 'dns', value: '0x7f.1' })).toMatch(/"0x7f\.1".*IPv4/);
    expect(addressLikeName({ type: 'ip', value: '::' })).toMatch(/unspecified/);
    expect(addressLikeName({ type: 'dns', value: 'a1.example' })).toBeNull();
    expect(addressLikeName({ type: 'ip', value: '192.0.2.1' })).toBeNull();
    expect(addressLikeName({ type: 'uri', value: 'https://127.1/' })).toBeNull();
  });
});
