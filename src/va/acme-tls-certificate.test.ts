import { X509Certificate } from 'node:crypto';
import { beforeAll, expect, test } from 'vitest';
import { checkAcmeTlsCertificate } from './acme-tls-certificate.js';
import { ValidationFailure } from './failure.js';
import { parseRequest, type ValidationTarget } from './request.js';
import { acmeIdentifierHex, makeAcmeCertificate } from './testing/acme-certificate.js';

const token = 'nQ2kk5hXwZ0V3q1CN9BWEKUSiXQ1d3hw2dCkP3mAYbM';
const keyAuthorization = `${token}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`;
const dnsTarget: ValidationTarget = { type: 'dns', name: 'device.example' };

let goodDer: Buffer;
let ip6Der: Buffer;
beforeAll(async () => {
  const der = async (san: string) => new X509Certificate((await makeAcmeCertificate({ san, acmeIdentifierHex: acmeIdentifierHex(keyAuthorization) })).certPem).raw;
  goodDer = await der('DNS:device.example');
  ip6Der = await der('IP:2001:db8:0:0:0:0:0:1');
});

const failure = (fn: () => void): ValidationFailure => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationFailure) return err;
    throw err;
  }
  throw new Error('the certificate was accepted');
};

test('accepts the certificate OpenSSL made for the challenge', () => {
  expect(() => checkAcmeTlsCertificate(goodDer, dnsTarget, keyAuthorization, 'peer')).not.toThrow();
});

test('compares IPv6 SANs by address, whatever the text form of the identifier', () => {
  const { target } = parseRequest({ type: 'tls-alpn-01', identifier: { type: 'ip', value: '2001:DB8::0:1' }, token, keyAuthorization });
  expect(() => checkAcmeTlsCertificate(ip6Der, target, keyAuthorization, 'peer')).not.toThrow();
});

test.each([
  ['garbage', Buffer.from('not a certificate')],
  ['an empty SEQUENCE', Buffer.from('3000', 'hex')],
  ['a truncated certificate', () => goodDer.subarray(0, 200)],
  ['a certificate with trailing bytes', () => Buffer.concat([goodDer, Buffer.from([0])])],
])('incorrectResponse, never a crash: %s', (_name, input) => {
  const der = typeof input === 'function' ? input() : input;
  const f = failure(() => checkAcmeTlsCertificate(der, dnsTarget, keyAuthorization, '192.0.2.7:443'));
  expect(f.type).toBe('incorrectResponse');
  expect(f.message).toMatch(/^the certificate from 192\.0\.2\.7:443 does not decode: /);
});

test('incorrectResponse: the right certificate for another key authorization', () => {
  const f = failure(() => checkAcmeTlsCertificate(goodDer, dnsTarget, `${token}.other`, 'peer'));
  expect(f.message).toContain('not SHA-256 of the key authorization');
});
