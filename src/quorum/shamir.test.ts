/**
 * Shamir's secret sharing: known vectors computed independently (GF(2^8)
 * with the AES polynomial x^8+x^4+x^3+x+1 by shift-and-add, the field of the
 * library and of HashiCorp Vault), then split/combine of the payload format,
 * M-1 shares and mixed splits.
 */
import { combine } from 'shamir-secret-sharing';
import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { combineShares, splitSecret } from './shamir.js';

/** GF(2^8) multiplication modulo 0x11b, written independently of the library's log tables. */
function gmul(a: number, b: number): number {
  let r = 0;
  for (; b; b >>= 1) {
    if (b & 1) r ^= a;
    a <<= 1;
    if (a & 0x100) a ^= 0x11b;
  }
  return r;
}
/** A share in the library's layout: f(x) for each secret byte, then x; coefficients[i] are the higher terms for byte i. */
function shareAt(secret: Buffer, coefficients: (i: number) => number[], x: number): Buffer {
  const ys = [...secret].map((s, i) => [s, ...coefficients(i)].reduceRight((acc, c) => gmul(acc, x) ^ c, 0));
  return Buffer.from([...ys, x]);
}
const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const secret = Buffer.from('trellis');
/** Subsets of size k. */
const subsets = <T>(xs: T[], k: number): T[][] => (k === 0 ? [[]] : xs.flatMap((x, i) => subsets(xs.slice(i + 1), k - 1).map((s) => [x, ...s])));

describe('known vectors (library combine)', () => {
  // f_i(x) = s_i + (0x10 + i)·x at x = 1, 2, 3.
  const twoOfThree = ['6463777f787c6501', '5450414a44435f02', '4441535950564903'];
  // f_i(x) = s_i + (0xa0 + i)·x + (0x35 ^ i)·x² at x = 7, 42, 99, 200, 255.
  const threeOfFive = ['a5b1908bf5e2ce07', 'd6d2c3c8c6c1dd2a', '9d3ad57d37937163', 'fa458232308c46c8', 'e10b33d6648db8ff'];

  test('the vectors are what the polynomials give', () => {
    expect([1, 2, 3].map((x) => shareAt(secret, (i) => [0x10 + i], x).toString('hex'))).toEqual(twoOfThree);
    expect([7, 42, 99, 200, 255].map((x) => shareAt(secret, (i) => [0xa0 + i, 0x35 ^ i], x).toString('hex'))).toEqual(threeOfFive);
  });

  test.each([
    ['2 of 3', twoOfThree, 2],
    ['3 of 5', threeOfFive, 3],
  ])('%s: every subset of M shares gives "trellis"; M-1 shares do not', async (_name, vector, m) => {
    for (const subset of subsets(vector, m)) expect(Buffer.from(await combine(subset.map(hex)))).toEqual(secret);
    for (const subset of subsets(vector, m - 1).filter((s) => s.length >= 2)) expect(Buffer.from(await combine(subset.map(hex)))).not.toEqual(secret);
  });
});

describe('splitSecret / combineShares', () => {
  test('3 of 5: every 3 or more shares give the secret back; shares hide its length', async () => {
    const s = Buffer.from('root of trust kept offline');
    const shares = await splitSecret(s, 5, 3);
    expect(shares).toHaveLength(5);
    expect(new Set(shares.map((x) => x.length))).toEqual(new Set([256 + 32 + 1]));
    expect((await splitSecret(Buffer.from('x'), 2, 2))[0]!.length).toBe(256 + 32 + 1);
    for (const k of [3, 4, 5]) for (const subset of subsets(shares, k)) expect(await combineShares(subset)).toEqual(s);
  });

  test('rejects: M-1 shares, shares from two splits, an altered share (nothing is returned)', async () => {
    const s = Buffer.from('root of trust kept offline');
    const a = await splitSecret(s, 5, 3);
    const b = await splitSecret(s, 5, 3);
    for (const subset of subsets(a, 2)) {
      const err = await combineShares(subset).then(() => undefined, (e: unknown) => e);
      expect(isPkiError(err, 'badPassphrase')).toBe(true);
    }
    // Distinct x coordinates so the library combines them; the payload hash refuses the result.
    const mixed = [a[0]!, a[1]!, ...b.filter((x) => x.at(-1) !== a[0]!.at(-1) && x.at(-1) !== a[1]!.at(-1)).slice(0, 1)];
    await expect(combineShares(mixed)).rejects.toThrow(/do not reconstruct the secret/);
    const altered = Buffer.from(a[2]!);
    altered[0]! ^= 1;
    await expect(combineShares([a[0]!, a[1]!, altered])).rejects.toThrow(/do not reconstruct the secret/);
    await expect(combineShares([a[0]!, a[0]!, a[1]!])).rejects.toThrow(/do not combine: shares must contain unique values/);
  });

  test('rejects: threshold 1, threshold above shares, 256 shares, an empty secret', async () => {
    await expect(splitSecret(Buffer.from('x'), 3, 1)).rejects.toThrow(/2 ≤ threshold ≤ shares ≤ 255/);
    await expect(splitSecret(Buffer.from('x'), 2, 3)).rejects.toThrow(/2 ≤ threshold ≤ shares ≤ 255/);
    await expect(splitSecret(Buffer.from('x'), 256, 2)).rejects.toThrow(/2 ≤ threshold ≤ shares ≤ 255/);
    await expect(splitSecret(Buffer.alloc(0), 3, 2)).rejects.toThrow(/1 to 1024 bytes/);
  });
});
