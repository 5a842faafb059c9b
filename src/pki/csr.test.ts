import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { parseCsr } from './csr.js';

const fixture = (name: string) => fs.readFileSync(path.join(import.meta.dirname, '../../test/fixtures/csr', name));

describe('parseCsr', () => {
  test('accepts: P-256 CSR with DNS and IP SANs', () => {
    const csr = parseCsr(fixture('p256-server.csr'));
    expect(csr.key).toEqual({ kind: 'ec', curve: 'P-256' });
    expect(csr.subject).toEqual([{ type: 'CN', value: 'www.example.test' }]);
    expect(csr.sans).toEqual([
      { type: 'dns', value: 'www.example.test' },
      { type: 'dns', value: 'api.example.test' },
      { type: 'ip', value: '192.0.2.10' },
    ]);
    expect(csr.requestsCa).toBe(false);
  });

  test.each([
    ['p384-server.csr', { kind: 'ec', curve: 'P-384' }],
    ['ed25519-server.csr', { kind: 'ed25519' }],
    ['rsa2048-server.csr', { kind: 'rsa', bits: 2048, publicExponent: 65537n }],
    ['rsa1024.csr', { kind: 'rsa', bits: 1024, publicExponent: 65537n }],
    ['rsa-e3.csr', { kind: 'rsa', bits: 2048, publicExponent: 3n }],
    ['p192.csr', { kind: 'ec', curve: 'P-192' }],
  ])('parses the key of %s (policy decides later)', (file, key) => {
    expect(parseCsr(fixture(file)).key).toEqual(key);
  });

  test('reports a CA request', () => {
    expect(parseCsr(fixture('ca-request.csr')).requestsCa).toBe(true);
  });

  test('keeps unsupported SAN types visible to policy', () => {
    expect(parseCsr(fixture('othername-san.csr')).sans).toEqual([{ type: 'other', value: 'otherName' }]);
  });

  test.each([
    ['broken-signature.der', 'badCSR', /signature does not verify/],
    ['truncated.der', 'badCSR', /not valid DER/],
    ['random.bin', 'badCSR', /not valid DER/],
    ['wrong-label.pem', 'badCSR', /expected PEM label .*got "CERTIFICATE"/],
    ['invalid-ec-point.der', 'badPublicKey', /cannot be decoded/],
  ] as const)('rejects: %s', (file, type, message) => {
    let err: unknown;
    try {
      parseCsr(fixture(file));
    } catch (e) {
      err = e;
    }
    expect(isPkiError(err, type)).toBe(true);
    expect((err as Error).message).toMatch(message);
  });

  test('rejects: empty input and PEM without a block', () => {
    expect(() => parseCsr(Buffer.alloc(0))).toThrow(/not valid DER/);
    expect(() => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\n!!!\n')).toThrow(/no PEM block|invalid base64/);
  });
});
