import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { cidrContains, createAddressPolicy, parseCidr, parseIpAddress } from './address-policy.js';

const defaults = createAddressPolicy();

describe('default deny list', () => {
  // [address, denied because] — the reason must name the block.
  const denied: [string, string][] = [
    ['0.0.0.0', '0.0.0.0/8'],
    ['0.1.2.3', '0.0.0.0/8'],
    ['10.0.0.1', 'RFC 1918'],
    ['10.255.255.255', 'RFC 1918'],
    ['100.64.0.1', 'RFC 6598'],
    ['100.127.255.254', 'RFC 6598'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['172.16.0.1', 'RFC 1918'],
    ['172.31.255.255', 'RFC 1918'],
    ['192.0.0.8', 'IETF protocol assignments'],
    ['192.0.2.1', 'TEST-NET-1'],
    ['192.88.99.1', '6to4 relay'],
    ['192.168.1.1', 'RFC 1918'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.51.100.7', 'TEST-NET-2'],
    ['203.0.113.9', 'TEST-NET-3'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'limited broadcast'],
    ['::', 'unspecified'],
    ['::1', 'loopback, RFC 4291'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fc00::1', 'unique local'],
    ['fd12:3456::1', 'unique local'],
    ['fec0::1', 'site-local'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation, RFC 3849'],
    ['3fff::1', 'documentation, RFC 9637'],
    ['2001::1', 'Teredo'],
    ['2002:c000:0201::1', '6to4'],
    ['64:ff9b::a00:1', 'NAT64'],
    ['100::1', 'discard'],
    ['::a00:1', 'outside global unicast'], // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1)
    ['4000::1', 'outside global unicast'],
    ['::ffff:127.0.0.1', 'loopback'], // IPv4-mapped: judged as 127.0.0.1
    ['::ffff:a00:1', 'RFC 1918'],
    ['::ffff:169.254.169.254', 'link-local'],
  ];
  test.each(denied)('refuses %s (%s)', (address, reason) => {
    const d = defaults.check(address);
    expect(d.allowed).toBe(false);
    expect(d.allowed === false && d.reason).toContain(reason);
  });

  const allowed = ['1.1.1.1', '8.8.8.8', '100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '192.0.1.1', '192.169.0.1', '198.20.0.1', '223.255.255.255', '2606:4700::1111', '2a00:1450::1', '2001:200::1', '::ffff:8.8.8.8'];
  test.each(allowed)('permits %s', (address) => {
    expect(defaults.check(address).allowed).toBe(true);
  });

  test('an IPv4-mapped address is connected to as plain IPv4', () => {
    expect(defaults.check('::ffff:8.8.8.8')).toEqual({ allowed: true, address: '8.8.8.8' });
    expect(defaults.check('::ffff:808:808')).toEqual({ allowed: true, address: '8.8.8.8' });
  });

  test('text that is not an address is refused, zone indexes included', () => {
    for (const t of ['localhost', 'fe80::1%eth0', '1.2.3', '01.2.3.4', '']) expect(defaults.check(t)).toMatchObject({ allowed: false, reason: 'not an IP address' });
  });
});

describe('allow list', () => {
  test('allow wins over the deny list, for exactly the blocks given', () => {
    const p = createAddressPolicy(['127.0.0.0/8', '10.1.0.0/16', 'fd00::/8']);
    expect(p.check('127.0.0.1').allowed).toBe(true);
    expect(p.check('127.9.9.9').allowed).toBe(true);
    expect(p.check('10.1.2.3').allowed).toBe(true);
    expect(p.check('10.2.0.1').allowed).toBe(false);
    expect(p.check('fd00::5').allowed).toBe(true);
    expect(p.check('fc00::5').allowed).toBe(false);
    expect(p.check('::1').allowed).toBe(false);
  });

  test('an IPv4 allow block covers the IPv4-mapped form too', () => {
    const p = createAddressPolicy(['127.0.0.0/8']);
    expect(p.check('::ffff:127.0.0.1')).toEqual({ allowed: true, address: '127.0.0.1' });
  });

  test('a bare address allows just that address', () => {
    const p = createAddressPolicy(['127.0.0.1', '::1']);
    expect(p.check('127.0.0.1').allowed).toBe(true);
    expect(p.check('127.0.0.2').allowed).toBe(false);
    expect(p.check('::1').allowed).toBe(true);
  });
});

describe('parseCidr', () => {
  test.each([
    ['10.0.0.0/8', 4, '0a000000', 8],
    ['0.0.0.0/0', 4, '00000000', 0],
    ['192.168.1.7', 4, 'c0a80107', 32],
    ['fd00::/8', 6, 'fd' + '00'.repeat(15), 8],
    ['::1', 6, '00'.repeat(15) + '01', 128],
    ['2001:db8::/32', 6, '20010db8' + '00'.repeat(12), 32],
    ['::ffff:10.0.0.0/104', 6, '00'.repeat(10) + 'ffff0a000000', 104],
  ] as const)('parses %s', (text, family, hex, prefix) => {
    expect(parseCidr(text)).toMatchObject({ text, family, prefixLength: prefix });
    expect(parseCidr(text).network.toString('hex')).toBe(hex);
  });

  test.each([
    ['10.0.0.1/8', 'did you mean 10.0.0.0/8'],
    ['fd00::1/8', 'did you mean fd00::/8'],
    ['10.0.0.0/33', '0 to 32'],
    ['::/129', '0 to 128'],
    ['10.0.0.0/', '0 to 32'],
    ['10.0.0.0/8/8', '0 to 32'],
    ['10.0.0.0/+8', '0 to 32'],
    ['10.0.0.0/0x8', '0 to 32'],
    ['10.0.0/8', 'not an IP address'],
    ['010.0.0.0/8', 'not an IP address'],
    ['fe80::%eth0/64', 'not an IP address'],
    ['example.com/24', 'not an IP address'],
    ['', 'not an IP address'],
  ])('rejects %s with invalidConfig (%s)', (text, why) => {
    let caught: unknown;
    try {
      parseCidr(text);
    } catch (err) {
      caught = err;
    }
    expect(isPkiError(caught, 'invalidConfig')).toBe(true);
    expect((caught as Error).message).toContain(why);
  });

  test('cidrContains matches on the prefix and never across families', () => {
    const c = parseCidr('172.16.0.0/12');
    expect(cidrContains(c, parseIpAddress('172.31.255.255')!)).toBe(true);
    expect(cidrContains(c, parseIpAddress('172.32.0.0')!)).toBe(false);
    expect(cidrContains(parseCidr('::/0'), parseIpAddress('1.2.3.4')!)).toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0'), parseIpAddress('::1')!)).toBe(false);
    expect(cidrContains(parseCidr('fe80::/10'), parseIpAddress('febf:ffff::')!)).toBe(true);
    expect(cidrContains(parseCidr('fe80::/10'), parseIpAddress('fec0::')!)).toBe(false);
  });
});
