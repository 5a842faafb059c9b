/** The route table's pieces: path conversion, opaque cursors, 400s naming the parameter. */
import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { isPkiError } from '../../errors/pki-error.js';
import { invalidInput } from './input.js';
import { cursors, expressPath, paging } from './table.js';

test('OpenAPI paths become express paths', () => {
  expect(expressPath('/api/v1/certificates/{serial}/revoke')).toBe('/api/v1/certificates/:serial/revoke');
  expect(expressPath('/api/v1/cas')).toBe('/api/v1/cas');
});

describe('cursors', () => {
  const int = (k: string) => (/^[1-9][0-9]*$/.test(k) ? Number(k) : undefined);
  test('round trip, base64url', () => {
    const c = cursors.encode('12345');
    expect(c).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(cursors.decode(c, int)).toBe(12345);
  });
  test.each([['!!'], ['a'.repeat(2000)], [cursors.encode('abc')], [cursors.encode('0')], ['']])('rejects: %j (malformed, naming cursor)', (c) => {
    let err: unknown;
    try {
      cursors.decode(c, int);
    } catch (e) {
      err = e;
    }
    expect(isPkiError(err, 'malformed')).toBe(true);
    expect((err as Error).message).toMatch(/^query parameter cursor:/);
  });
});

describe('invalidInput names the parameter', () => {
  const q = z.object({ status: z.enum(['a', 'b']).optional(), ...paging }).strict();
  test.each<[Record<string, unknown>, RegExp]>([
    [{ limit: '0' }, /^query parameter limit: /],
    [{ limit: ['1', '2'] }, /^query parameter limit: /],
    [{ status: 'c' }, /^query parameter status: /],
    [{ color: 'red' }, /^query parameter color: /],
  ])('%j', (input, detail) => {
    const r = q.safeParse(input);
    expect(r.success).toBe(false);
    const err = invalidInput(r.error!, 'query');
    expect(err.type).toBe('malformed');
    expect(err.message).toMatch(detail);
  });
  test('limit defaults to 100', () => {
    expect(q.parse({})).toEqual({ limit: 100 });
  });
});
