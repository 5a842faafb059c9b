/**
 * Factory-list CSV under hostile input (issue 12): any text gives records and
 * line problems, never an exception; what an RFC 4180 writer produces reads
 * back field for field, on the line it starts.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { fuzzParams } from '../../pki/testing/mutate.js';
import { parseCsv, parseDeviceCsv } from './csv.js';

const runs = fuzzParams(0xc57, 1500);
const csvChars = fc.string({ unit: fc.constantFrom(...'ab1 ,"\r\n\t\ufeffé'.split('')), maxLength: 120 });

describe('CSV under hostile input', () => {
  test('any text: parseCsv and parseDeviceCsv return records and problems with lines inside the file, never throw', () => {
    fc.assert(
      fc.property(fc.oneof(csvChars, fc.string({ maxLength: 200 })), (text) => {
        const lines = text.split(/\r\n|\r|\n/).length;
        const { records, problems } = parseCsv(text);
        for (const r of [...records, ...problems]) expect(r.line).toBeGreaterThanOrEqual(1);
        for (const r of [...records, ...problems]) expect(r.line).toBeLessThanOrEqual(lines);
        const devices = parseDeviceCsv(text);
        for (const d of devices.devices) expect(typeof d.id).toBe('string');
        for (const p of devices.problems) expect(p.line).toBeGreaterThanOrEqual(1);
      }),
      runs,
    );
  });

  test('round trip: records written with RFC 4180 quoting read back field for field, each on the line it starts', () => {
    const field = fc.string({ unit: fc.constantFrom(...'ab1 ,"\r\n\té'.split('')), maxLength: 8 });
    // A record of one empty field is a blank line, which the reader skips.
    const record = fc.array(field, { minLength: 1, maxLength: 5 }).filter((r) => !(r.length === 1 && r[0] === ''));
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 6 }), fc.constantFrom('\n', '\r\n'), fc.boolean(), (records, eol, quoteAll) => {
        const quote = (f: string) => (quoteAll || /[",\r\n]/.test(f) || f === '' ? `"${f.replace(/"/g, '""')}"` : f);
        const rows = records.map((r) => r.map(quote).join(','));
        let line = 1;
        const expected = rows.map((row, i) => {
          const out = { line, fields: records[i]! };
          line += (row.match(/\r\n|\r|\n/g)?.length ?? 0) + 1;
          return out;
        });
        expect(parseCsv(rows.join(eol) + eol)).toEqual({ records: expected, problems: [] });
      }),
      runs,
    );
  });
});

describe('CSV: counterexamples kept as regression tests', () => {
  test('a lone CR inside a quoted field counts as a line break, as it does outside quotes (the next record kept its line)', () => {
    expect(parseCsv('"\r"\na\n').records).toEqual([
      { line: 1, fields: ['\r'] },
      { line: 3, fields: ['a'] },
    ]);
    expect(parseCsv('"x\r\ny"\na\n').records[1]).toEqual({ line: 3, fields: ['a'] });
  });
});
