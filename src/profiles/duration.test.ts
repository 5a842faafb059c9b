import { describe, expect, test } from 'vitest';
import { formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  test.each<[string, number]>([
    ['30s', 30],
    ['5m', 300],
    ['12h', 43_200],
    ['90d', 7_776_000],
    ['398d', 34_387_200],
    ['1y', 31_536_000],
    ['10y', 315_360_000],
    ['0s', 0],
  ])('accepts: %s is %d seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  test.each([
    ['empty', ''],
    ['no unit', '90'],
    ['no number', 'd'],
    ['a fraction', '1.5d'],
    ['a sign', '-5m'],
    ['an upper-case unit', '90D'],
    ['an unknown unit', '3w'],
    ['spaces', ' 90d'],
    ['two units', '1d12h'],
    ['a leading zero', '090d'],
    ['seven digits', '1000000s'],
    ['a word', 'ninety'],
  ])('rejects: %s', (_why, text) => {
    expect(parseDuration(text)).toBeNull();
  });
});

describe('formatDuration', () => {
  test.each<[number, string]>([
    [0, '0s'],
    [45, '45s'],
    [300, '5m'],
    [5_400, '90m'],
    [3_600, '1h'],
    [7_776_000, '90d'],
    [34_387_200, '398d'],
    [31_536_000, '1y'],
    [788_400_000, '25y'],
  ])('formats %d seconds as %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
    expect(parseDuration(text)).toBe(seconds);
  });

  test.each([-1, 1.5, Number.NaN])('rejects: %d is not a whole number of seconds', (seconds) => {
    expect(() => formatDuration(seconds)).toThrow(RangeError);
  });
});
