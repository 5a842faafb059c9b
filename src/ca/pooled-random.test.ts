/** pooledRandom (authority.ts): serial randomness drawn from the CSPRNG in blocks, each byte handed out once. */
import { expect, test } from 'vitest';
import { pooledRandom } from './authority.js';

/** A source that counts its calls and returns bytes 0, 1, 2, … across calls (mod 256), so reuse would show. */
function countingSource() {
  let next = 0;
  const calls: number[] = [];
  const source = (n: number) => {
    calls.push(n);
    return Buffer.from(Array.from({ length: n }, () => next++ % 256));
  };
  return { source, calls };
}

test('hands out consecutive bytes of one block, each once, and draws the next block only when the pool is spent', () => {
  const { source, calls } = countingSource();
  const random = pooledRandom(source, 64);
  const seen = [random(16), random(16), random(16), random(16)].map((b) => [...b]).flat();
  expect(seen).toEqual(Array.from({ length: 64 }, (_, i) => i));
  expect(calls).toEqual([64]);
  expect([...random(16)]).toEqual(Array.from({ length: 16 }, (_, i) => 64 + i));
  expect(calls).toEqual([64, 64]);
});

test('a request that does not fit in what is left starts a new block (no byte is split across two callers)', () => {
  const { source, calls } = countingSource();
  const random = pooledRandom(source, 64);
  random(60);
  expect([...random(16)]).toEqual(Array.from({ length: 16 }, (_, i) => 64 + i));
  expect(calls).toEqual([64, 64]);
});

test('each caller owns its bytes: changing them changes no later answer', () => {
  const { source } = countingSource();
  const random = pooledRandom(source, 64);
  const a = random(16);
  a.fill(0xff);
  expect([...random(16)]).toEqual(Array.from({ length: 16 }, (_, i) => 16 + i));
});

test('a request larger than the pool goes to the source as it is', () => {
  const { source, calls } = countingSource();
  const random = pooledRandom(source, 64);
  expect(random(100)).toHaveLength(100);
  expect(calls).toEqual([100]);
});
