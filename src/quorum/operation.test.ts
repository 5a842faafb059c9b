import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { canonicalJson, operationOf, type JsonValue } from './operation.js';

describe('canonicalJson', () => {
  test('sorts keys at every depth, no whitespace, arrays keep their order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}');
  });

  test('keys sort by UTF-16 code units (RFC 8785 §3.2.3), strings and numbers as JSON.stringify writes them', () => {
    expect(canonicalJson({ '\u00e9': 1, z: 2, Z: 3, '\ud83d\ude00': 4, '\ufb01': 5 })).toBe('{"Z":3,"z":2,"é":1,"😀":4,"ﬁ":5}');
    expect(canonicalJson({ n: [1e21, 0.1, -0, 10] })).toBe('{"n":[1e+21,0.1,0,10]}');
    expect(canonicalJson('line\n"quoted"')).toBe('"line\\n\\"quoted\\""');
  });

  test.each([
    ['rejects: NaN', NaN],
    ['rejects: Infinity', Infinity],
    ['rejects: a Date', new Date(0)],
    ['rejects: undefined inside an object', { a: undefined }],
  ])('%s', (_name, value) => {
    let err: unknown;
    try {
      canonicalJson(value as unknown as JsonValue);
    } catch (e) {
      err = e;
    }
    expect(isPkiError(err, 'malformed')).toBe(true);
  });
});

describe('operationOf', () => {
  test('the canonical text of { op, params } and its SHA-256, whatever the order of the params', () => {
    const a = operationOf('key.destroy', { ca: 'issuing-2', reason: 'retired' });
    const b = operationOf('key.destroy', { reason: 'retired', ca: 'issuing-2' });
    expect(a.operation).toBe('{"op":"key.destroy","params":{"ca":"issuing-2","reason":"retired"}}');
    expect(a.hash).toBe(createHash('sha256').update(a.operation).digest('hex'));
    expect(b).toEqual(a);
    // Known answer: fixes the format, so approvals made by another version still bind.
    expect(operationOf('key.destroy', { ca: 'issuing' }).hash).toBe(createHash('sha256').update('{"op":"key.destroy","params":{"ca":"issuing"}}').digest('hex'));
  });

  test('any change of operation or parameter changes the hash', () => {
    const base = operationOf('key.destroy', { ca: 'issuing' }).hash;
    expect(operationOf('key.compromise', { ca: 'issuing' }).hash).not.toBe(base);
    expect(operationOf('key.destroy', { ca: 'issuing2' }).hash).not.toBe(base);
    expect(operationOf('key.destroy', { ca: 'issuing', extra: '' }).hash).not.toBe(base);
    expect(operationOf('key.destroy', {}).hash).not.toBe(base);
  });

  test('rejects: an unknown operation, a parameter that is not a string', () => {
    expect(() => operationOf('key.eat' as never, {})).toThrow(/unknown quorum operation "key.eat"/);
    expect(() => operationOf('key.destroy', { n: 1 } as never)).toThrow(/parameter "n" must be a string/);
  });
});
