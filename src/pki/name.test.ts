import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { readOne, Tag, children } from './der.js';
import { encodeName, parseName } from './name.js';

describe('encodeName with attributes named by OID', () => {
  test('standard attributes first, then OIDs in arc order, each a UTF8String', () => {
    const der = encodeName({ '1.3.6.1.4.1.37244.2.2': '8000', CN: 'Matter DAC', '1.3.6.1.4.1.37244.2.1': 'FFF1' });
    const name = readOne(der);
    expect(parseName(name)).toEqual([
      { type: 'CN', value: 'Matter DAC' },
      { type: '1.3.6.1.4.1.37244.2.1', value: 'FFF1' },
      { type: '1.3.6.1.4.1.37244.2.2', value: '8000' },
    ]);
    const valueTags = children(name).map((rdn) => children(children(rdn)[0]!)[1]!.tag);
    expect(valueTags).toEqual([Tag.UTF8String, Tag.UTF8String, Tag.UTF8String]);
    // 10 sorts after 9 by arc, not by text
    expect(parseName(readOne(encodeName({ '1.2.10': 'b', '1.2.9': 'a' }))).map((e) => e.type)).toEqual(['1.2.9', '1.2.10']);
  });

  test.each([
    ['an OID with a short name', { '2.5.4.3': 'x' }, /subject attribute 2\.5\.4\.3 is not supported/],
    ['the emailAddress OID', { '1.2.840.113549.1.9.1': 'a@b' }, /not supported/],
    ['an empty value', { '1.3.6.1.4.1.37244.2.1': '' }, /must be 1\.\.64 characters/],
    ['a value over 64 characters', { '1.3.6.1.4.1.37244.2.1': 'x'.repeat(65) }, /must be 1\.\.64 characters/],
  ])('refuses %s (badCSR)', (_, attrs, message) => {
    let err: unknown;
    try {
      encodeName(attrs as never);
    } catch (e) {
      err = e;
    }
    expect(isPkiError(err, 'badCSR')).toBe(true);
    expect((err as Error).message).toMatch(message);
  });
});
