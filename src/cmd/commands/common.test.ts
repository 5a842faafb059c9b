import { describe, expect, test } from 'vitest';
import { UsageError } from '../../cli/args.js';
import { PkiError } from '../../errors/pki-error.js';
import { ceremonyTokenOf, keystoreConfigOf } from './common.js';

const pkcs11 = { type: 'pkcs11', module: '/usr/lib/softhsm/libsofthsm2.so', token: 'ca', rootToken: 'root' } as const;

describe('keystoreConfigOf (init flags)', () => {
  test('software by default; pkcs11 with module and token, root token optional', () => {
    expect(keystoreConfigOf({})).toEqual({ type: 'software' });
    expect(keystoreConfigOf({ keystore: 'pkcs11', 'pkcs11-module': pkcs11.module, 'pkcs11-token': 'ca' })).toEqual({ type: 'pkcs11', module: pkcs11.module, token: 'ca' });
    expect(keystoreConfigOf({ keystore: 'pkcs11', 'pkcs11-module': pkcs11.module, 'pkcs11-token': 'ca', 'pkcs11-root-token': 'root' })).toEqual(pkcs11);
  });

  test.each([
    ['rejects: a token flag without --keystore pkcs11', { 'pkcs11-token': 'ca' }],
    ['rejects: an unknown keystore', { keystore: 'tpm' }],
    ['rejects: pkcs11 without a token', { keystore: 'pkcs11', 'pkcs11-module': pkcs11.module }],
    ['rejects: pkcs11 without a module', { keystore: 'pkcs11', 'pkcs11-token': 'ca' }],
    ['rejects: the root in the issuing token', { keystore: 'pkcs11', 'pkcs11-module': pkcs11.module, 'pkcs11-token': 'ca', 'pkcs11-root-token': 'ca' }],
  ])('%s', (_, flags) => {
    expect(() => keystoreConfigOf(flags)).toThrow(UsageError);
  });
});

describe('ceremonyTokenOf (where a ceremony puts the new key)', () => {
  test('trellis.json decides by default: the root token for a root, the token for an issuing CA', () => {
    expect(ceremonyTokenOf({}, pkcs11, 'root')).toBe('root');
    expect(ceremonyTokenOf({}, pkcs11, 'issuing')).toBe('ca');
    expect(ceremonyTokenOf({}, { type: 'pkcs11', module: pkcs11.module, token: 'ca' }, 'root')).toBeUndefined();
    expect(ceremonyTokenOf({}, { type: 'software' }, 'issuing')).toBeUndefined();
  });

  test('--keystore software, or a configured token, choose otherwise', () => {
    expect(ceremonyTokenOf({ keystore: 'software' }, pkcs11, 'issuing')).toBeUndefined();
    expect(ceremonyTokenOf({ 'pkcs11-token': 'ca' }, pkcs11, 'issuing')).toBe('ca');
    expect(ceremonyTokenOf({ 'pkcs11-root-token': 'root' }, pkcs11, 'root')).toBe('root');
  });

  test.each([
    ['rejects: a token trellis.json does not name', { 'pkcs11-token': 'other' }, pkcs11],
    ['rejects: another module', { 'pkcs11-token': 'ca', 'pkcs11-module': '/opt/vendor/p11.so' }, pkcs11],
    ['rejects: a token on a software instance', { keystore: 'pkcs11', 'pkcs11-module': pkcs11.module, 'pkcs11-token': 'ca' }, { type: 'software' } as const],
  ])('%s', (_, flags, config) => {
    const err = (() => {
      try {
        ceremonyTokenOf(flags, config, 'issuing');
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(PkiError);
    expect((err as PkiError).type).toBe('invalidConfig');
  });
});
