import { describe, expect, test } from 'vitest';
import { cidrProblem, dnsConstraintProblem, emailConstraintProblem, oidProblem, patternProblem, uriConstraintProblem } from './values.js';

describe('patternProblem', () => {
  test.each(['^a$', '^(\\*\\.)?[a-z0-9.-]+$', '^(a|b)$', '^a$|^b$', '^a\\\\$', '^[|]$'])('accepts: %s', (p) => {
    expect(patternProblem(p)).toBeNull();
  });
  test.each<[string, string, RegExp]>([
    ['does not compile', '([', /^invalid regular expression: /],
    ['has no start anchor', 'example\\.com$', /must be anchored/],
    ['has no end anchor', '^urn:dev:', /must be anchored/],
    ['ends in an escaped dollar', '^a\\$', /must be anchored/],
    ['leaves an alternative unanchored', '^a$|b', /in every alternative/],
    ['anchors only the outer ends of an alternation', '^a|b$', /in every alternative/],
  ])('rejects: a pattern that %s', (_why, p, message) => {
    expect(patternProblem(p)).toMatch(message);
  });
});

describe('cidrProblem', () => {
  test.each(['0.0.0.0/0', '10.0.0.0/8', '192.0.2.1/32', '::/0', '2001:db8::/32', 'fd00::/8'])('accepts: %s', (c) => {
    expect(cidrProblem(c)).toBeNull();
  });
  test.each<[string, string, RegExp]>([
    ['an address without prefix', '10.0.0.0', /is not a CIDR/],
    ['an address out of range', '300.1.1.1/8', /is not a CIDR/],
    ['a host name', 'example.com/24', /is not a CIDR/],
    ['a prefix with a leading zero', '10.0.0.0/08', /is not a CIDR/],
    ['two slashes', '10.0.0.0/8/8', /is not a CIDR/],
    ['an IPv4 prefix over 32', '10.0.0.0/33', /at most \/32/],
    ['an IPv6 prefix over 128', '::/129', /at most \/128/],
    ['IPv4 host bits', '10.0.0.1/8', /host bits set: write 10\.0\.0\.0\/8/],
    ['IPv6 host bits', '2001:db8::1/32', /host bits set: write 2001:db8::\/32/],
  ])('rejects: %s', (_why, c, message) => {
    expect(cidrProblem(c)).toMatch(message);
  });
});

describe('oidProblem', () => {
  test.each(['2.5.29.32.0', '1.3.6.1.4.1.99999.1', '2.23.140.1.2.1', '2.25.329800735698586629295641978511506172918', '0.39'])('accepts: %s', (o) => {
    expect(oidProblem(o)).toBeNull();
  });
  test.each<[string, string, RegExp]>([
    ['words', 'not.an.oid', /not a dotted-decimal OID/],
    ['one arc', '1', /not a dotted-decimal OID/],
    ['a first arc above 2', '3.1', /not a dotted-decimal OID/],
    ['a leading zero', '1.3.06.1', /not a dotted-decimal OID/],
    ['a trailing dot', '1.3.', /not a dotted-decimal OID/],
    ['a second arc above 39 under 1', '1.40', /second arc is at most 39/],
  ])('rejects: %s', (_why, o, message) => {
    expect(oidProblem(o)).toMatch(message);
  });
});

describe('name constraint bases (RFC 5280 §4.2.1.10)', () => {
  test('dns: accepts a domain; rejects: a leading dot, a wildcard, upper case', () => {
    expect(dnsConstraintProblem('example.com')).toBeNull();
    expect(dnsConstraintProblem('.example.com')).toMatch(/without a leading dot/);
    expect(dnsConstraintProblem('*.example.com')).toMatch(/without a leading dot or wildcard/);
    expect(dnsConstraintProblem('Example.com')).toMatch(/not a lower-case DNS name/);
  });
  test('email: accepts a mailbox, a host, a .domain; rejects: junk', () => {
    expect(emailConstraintProblem('ops@example.com')).toBeNull();
    expect(emailConstraintProblem('mail.example.com')).toBeNull();
    expect(emailConstraintProblem('.example.com')).toBeNull();
    expect(emailConstraintProblem('@example.com')).toMatch(/not a mailbox/);
    expect(emailConstraintProblem('a b@example.com')).toMatch(/not a mailbox/);
    expect(emailConstraintProblem('not an address')).toMatch(/not a host/);
  });
  test('uri: accepts a host or .domain; rejects: a whole URI', () => {
    expect(uriConstraintProblem('example.com')).toBeNull();
    expect(uriConstraintProblem('.example.com')).toBeNull();
    expect(uriConstraintProblem('https://example.com/')).toMatch(/host part/);
  });
});
