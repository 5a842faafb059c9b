/** Factory-list CSV: RFC 4180 records with line numbers, and the device columns. */
import { describe, expect, test } from 'vitest';
import { parseCsv, parseDeviceCsv } from './csv.js';

describe('parseCsv (RFC 4180)', () => {
  test('plain fields, CRLF and LF, a final line without a newline, empty lines skipped, BOM dropped', () => {
    expect(parseCsv('\ufeffa,b\r\n1,2\n\n3,\r\n,4')).toEqual({
      records: [
        { line: 1, fields: ['a', 'b'] },
        { line: 2, fields: ['1', '2'] },
        { line: 4, fields: ['3', ''] },
        { line: 5, fields: ['', '4'] },
      ],
      problems: [],
    });
  });

  test('quoted fields: commas, doubled quotes, line breaks (the next record counts lines on)', () => {
    expect(parseCsv('"a,b","say ""hi""",""\n"two\nlines",x\ny,z\n')).toEqual({
      records: [
        { line: 1, fields: ['a,b', 'say "hi"', ''] },
        { line: 2, fields: ['two\nlines', 'x'] },
        { line: 4, fields: ['y', 'z'] },
      ],
      problems: [],
    });
  });

  test('bad quoting is a problem of its line; the other lines are still read', () => {
    const { records, problems } = parseCsv('ok,1\nab"c,2\n"x"y,3\nfine,4\n"open,5\nrest');
    expect(records).toEqual([
      { line: 1, fields: ['ok', '1'] },
      { line: 4, fields: ['fine', '4'] },
    ]);
    expect(problems).toEqual([
      { line: 2, reason: expect.stringMatching(/^a double quote inside an unquoted field/) },
      { line: 3, reason: 'text after the closing quote of a field' },
      { line: 5, reason: 'a quoted field is never closed' },
    ]);
  });
});

describe('parseDeviceCsv', () => {
  test('id, profile, reprovision and attribute columns; empty cells leave a column unset', () => {
    const csv = 'id,profile,model,reprovision,site\ndev-1,,X1,,"Lyon, FR"\ndev-2,device-b,,reset,\n';
    expect(parseDeviceCsv(csv)).toEqual({
      devices: [
        { line: 2, id: 'dev-1', attributes: { model: 'X1', site: 'Lyon, FR' } },
        { line: 3, id: 'dev-2', profile: 'device-b', reprovision: 'reset', attributes: {} },
      ],
      problems: [],
    });
  });

  test('a header of id alone', () => {
    expect(parseDeviceCsv('id\na\nb').devices.map((d) => d.id)).toEqual(['a', 'b']);
  });

  test.each([
    ['no id column', 'profile,model\nx,y\n', [{ line: 1, reason: 'the header has no id column' }]],
    ['a column twice', 'id,model,model\n', [{ line: 1, reason: 'column "model" appears twice' }]],
    ['an attribute name that is not one', 'id,"bad=name"\n', [{ line: 1, reason: expect.stringMatching(/^column "bad=name" is not an attribute name/) }]],
    ['an empty file', '', [{ line: 1, reason: expect.stringMatching(/^no header/) }]],
  ])('header problems: %s', (_name, csv, problems) => {
    expect(parseDeviceCsv(csv)).toEqual({ devices: [], problems });
  });

  test('field counts and quoting are reported per line, in line order', () => {
    const { devices, problems } = parseDeviceCsv('id,model\na,1\nb\nc,2,3\nd,"4\n');
    expect(devices.map((d) => d.id)).toEqual(['a']);
    expect(problems).toEqual([
      { line: 3, reason: '1 fields where the header names 2' },
      { line: 4, reason: '3 fields where the header names 2' },
      { line: 5, reason: 'a quoted field is never closed' },
    ]);
  });
});
