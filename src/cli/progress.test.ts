import { describe, expect, test } from 'vitest';
import { progress, type ProgressStream } from './progress.js';

const stream = (isTTY: boolean, columns = 80) => {
  const written: string[] = [];
  const s: ProgressStream = { isTTY, columns, write: (t: string) => written.push(t) };
  return { s, written };
};

describe('progress', () => {
  test('draws nothing when the stream is not a terminal (scripts, pipes)', () => {
    const { s, written } = stream(false);
    const p = progress('backup', s);
    p.update(1, 10, 'x');
    p.update(10, 10);
    p.end();
    expect(written).toEqual([]);
  });

  test('redraws one line in place, at most once per interval, always the last step, and erases it at the end', () => {
    const { s, written } = stream(true);
    let t = 0;
    const p = progress('crl publish', s, 100, () => t);
    p.update(0, 4, 'ca-1 full');
    t = 50;
    p.update(1, 4, 'ca-1 delta'); // inside the interval: skipped
    t = 150;
    p.update(2, 4, 'ca-2 full');
    t = 160;
    p.update(4, 4); // the last step is drawn whatever the interval
    p.end();
    expect(written).toEqual([
      '\r\x1b[2Kcrl publish: [........................] 0/4 ca-1 full',
      '\r\x1b[2Kcrl publish: [############............] 2/4 ca-2 full',
      '\r\x1b[2Kcrl publish: [########################] 4/4',
      '\r\x1b[2K',
    ]);
  });

  test('a running count without a total, cut to the terminal width', () => {
    const { s, written } = stream(true, 30);
    const p = progress('backup', s, 0);
    p.update(12345, undefined, 'rows (Certificate) and a long tail');
    expect(written).toEqual(['\r\x1b[2Kbackup: 12345 rows (Certifica'] /* 29 columns: the last one stays free, so the line never wraps */);
  });

  test('end() without any drawing writes nothing', () => {
    const { s, written } = stream(true);
    progress('x', s).end();
    expect(written).toEqual([]);
  });
});
