import { expect, test } from 'vitest';
import { ValidationFailure } from './failure.js';
import { redirectTarget } from './redirect.js';

const current = new URL('http://device.example:5002/.well-known/acme-challenge/tok');
const ports = { http: 5002, https: 5001 };
const lePorts = { http: 80, https: 443 };

test.each<[string, string, { http: number; https: number }, URL, string]>([
  ['a relative path', '/other', ports, current, 'http://device.example:5002/other'],
  ['a relative path without slash', 'x?y=1', ports, current, 'http://device.example:5002/.well-known/acme-challenge/x?y=1'],
  ['an absolute http URL on the http-01 port', 'http://other.example:5002/p', ports, current, 'http://other.example:5002/p'],
  ['an https URL on the tls-alpn-01 port', 'https://other.example:5001/p', ports, current, 'https://other.example:5001/p'],
  ['the default port 80 when that is the configured one', 'http://other.example/p', lePorts, new URL('http://device.example/a'), 'http://other.example/p'],
  ['the default port 443 when that is the configured one', 'https://other.example/p', lePorts, new URL('http://device.example/a'), 'https://other.example/p'],
  ['an IPv6 literal', 'http://[2001:db8::1]:5002/p', ports, current, 'http://[2001:db8::1]:5002/p'],
  ['a URL with credentials and fragment, both dropped', 'http://u:p@other.example:5002/p#frag', ports, current, 'http://other.example:5002/p'],
  ['a protocol-relative URL', '//other.example:5002/p', ports, current, 'http://other.example:5002/p'],
])('follows %s', (_name, location, p, from, want) => {
  expect(redirectTarget(location, from, 302, p).href).toBe(want);
});

test.each<[string, string | undefined, string]>([
  ['no Location', undefined, 'without a Location header'],
  ['an empty Location', '', 'without a Location header'],
  ['another scheme', 'ftp://other.example/p', 'only http and https'],
  ['a file URL', 'file:///etc/passwd', 'only http and https'],
  ['http on another port', 'http://other.example:8080/p', 'port 5002 only, not 8080'],
  ['http on the default port 80 here', 'http://other.example/p', 'port 5002 only, not 80'],
  ['https on the http-01 port', 'https://other.example:5002/p', 'port 5001 only, not 5002'],
  ['a host that is no host name', 'http://bad_host.example:5002/p', 'is not a host name'],
  ['not a URL', 'http://[::1/p', 'is not a URL'],
])('refuses %s', (_name, location, detail) => {
  let caught: unknown;
  try {
    redirectTarget(location, current, 301, ports);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ValidationFailure);
  expect((caught as ValidationFailure).type).toBe('connection');
  expect((caught as ValidationFailure).message).toContain(detail);
  expect((caught as ValidationFailure).message).toContain(`${current.href} redirected (HTTP 301)`);
});
