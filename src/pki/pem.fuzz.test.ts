/**
 * PEM under hostile input (issue 12): any text or bytes give blocks or a
 * `malformed` PkiError, and what toPem writes pemBlocks reads back.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { derFromPemOrDer, pemBlocks, toPem } from './pem.js';
import { fuzzParams } from './testing/mutate.js';

const runs = fuzzParams(0x9e3, 1500);

function refusesCleanly(f: () => unknown): void {
  try {
    f();
  } catch (err) {
    if (!isPkiError(err, 'malformed')) throw err;
  }
}

const label = fc.constantFrom('CERTIFICATE', 'CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST', 'PRIVATE KEY', 'X');
/** PEM-shaped text with damage: random body characters, line breaks, a missing or other END label, text around it. */
const pemLike = fc
  .tuple(label, label, fc.string({ unit: fc.constantFrom(...'ABCabc019+/=-_ \t\r\n*.'.split('')), maxLength: 200 }), fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), fc.boolean())
  .map(([begin, end, body, before, after, crlf]) => `${before}-----BEGIN ${begin}-----${crlf ? '\r\n' : '\n'}${body}-----END ${end}-----${after}`);

describe('PEM under hostile input', () => {
  test('any text or PEM-like text: pemBlocks and derFromPemOrDer return or throw a malformed PkiError', () => {
    fc.assert(
      fc.property(fc.oneof(pemLike, fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 100 })), (text) => {
        refusesCleanly(() => pemBlocks(text));
        refusesCleanly(() => derFromPemOrDer(text, ['CERTIFICATE'], 'certificate'));
        refusesCleanly(() => derFromPemOrDer(Buffer.from(text, 'latin1'), ['CERTIFICATE'], 'certificate'));
      }),
      runs,
    );
  });

  test('round trip: toPem then pemBlocks gives the label and bytes back, with LF or CRLF line ends', () => {
    fc.assert(
      fc.property(label, fc.uint8Array({ maxLength: 300 }), fc.boolean(), (l, der, crlf) => {
        const pem = toPem(l, der);
        const [block, ...rest] = pemBlocks(crlf ? pem.replace(/\n/g, '\r\n') : pem);
        expect(rest).toEqual([]);
        expect(block).toEqual({ label: l, der: Buffer.from(der) });
      }),
      runs,
    );
  });

  test('toPem writes RFC 7468 lines: 64 base64 characters each, the last one shorter and never empty', () => {
    fc.assert(
      fc.property(label, fc.uint8Array({ minLength: 1, maxLength: 300 }), (l, der) => {
        const lines = toPem(l, der).split('\n');
        expect(lines.shift()).toBe(`-----BEGIN ${l}-----`);
        expect(lines.pop()).toBe('');
        expect(lines.pop()).toBe(`-----END ${l}-----`);
        expect(lines.join('')).toBe(Buffer.from(der).toString('base64'));
        lines.forEach((line, i) => expect(i < lines.length - 1 ? line.length === 64 : line.length >= 1 && line.length <= 64).toBe(true));
      }),
      runs,
    );
  });

  test('rejects: a PEM body with base64 of an impossible length or padding inside', () => {
    expect(() => pemBlocks('-----BEGIN X-----\nQUJD=\n-----END X-----')).toThrow(expect.objectContaining({ type: 'malformed' }));
    expect(() => pemBlocks('-----BEGIN X-----\nQQ==QUJD\n-----END X-----')).toThrow(expect.objectContaining({ type: 'malformed' }));
  });
});
