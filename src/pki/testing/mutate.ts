/**
 * fast-check arbitraries that damage valid DER the ways hostile input does:
 * flipped or replaced bytes, truncation, trailing bytes, and, at the header
 * of a real TLV of the seed, a changed tag or a length made longer, shorter,
 * long-form, non-minimal or indefinite. Used by the *.fuzz.test.ts files.
 */
import fc from 'fast-check';
import { children, isConstructed, readOne, type Tlv } from '../der.js';

/** Offsets of every TLV header in a valid DER seed (walking its constructed values). */
export function tlvHeaderOffsets(der: Buffer): number[] {
  const out: number[] = [];
  const walk = (t: Tlv) => {
    out.push(t.headerStart);
    if (!isConstructed(t)) return;
    let kids: Tlv[];
    try {
      kids = children(t);
    } catch {
      return; // a constructed tag over opaque contents (e.g. [0] IMPLICIT OCTET STRING): a leaf here
    }
    kids.forEach(walk);
  };
  walk(readOne(der));
  return out;
}

/** One damage to apply; offsets are reduced modulo the buffer or header list at apply time. */
export type Mutation =
  | { kind: 'flip'; at: number; mask: number }
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'tag'; header: number; tag: number }
  | { kind: 'length'; header: number; delta: number }
  | { kind: 'longLength'; header: number; octets: number; zeros: number }
  | { kind: 'indefinite'; header: number };

const pos = fc.nat({ max: 1 << 20 });
export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: pos, mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('set' as const), at: pos, byte: fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff, 0x30, 0x31, 0x02, 0x05, 0x06) }),
  fc.record({ kind: fc.constant('truncate' as const), at: pos }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: pos, bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: pos, count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('tag' as const), header: pos, tag: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x12, 0x13, 0x16, 0x17, 0x18, 0x1a, 0x1e, 0x1f, 0x30, 0x31, 0x80, 0xa0, 0xa3)) }),
  fc.record({ kind: fc.constant('length' as const), header: pos, delta: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(-128, 127, 255)) }),
  fc.record({ kind: fc.constant('longLength' as const), header: pos, octets: fc.integer({ min: 1, max: 5 }), zeros: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('indefinite' as const), header: pos }),
);

/** Length field of the TLV at `h`: where it starts, how many octets it takes, its value (null: not a definite length). */
function lengthAt(b: Buffer, h: number): { at: number; size: number; len: number } | null {
  const first = b[h + 1];
  if (first === undefined) return null;
  if (first < 0x80) return { at: h + 1, size: 1, len: first };
  const n = first & 0x7f;
  if (n === 0 || n > 4 || h + 2 + n > b.length) return null;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + b[h + 2 + i]!;
  return { at: h + 1, size: 1 + n, len };
}

function encodeLength(len: number, octets: number, zeros: number): Buffer {
  const bytes: number[] = [];
  for (let v = len; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  while (bytes.length < octets) bytes.unshift(0);
  for (let i = 0; i < zeros; i++) bytes.unshift(0);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Applies one mutation to a copy of `der`; `headers` are the seed's TLV header offsets. */
export function mutate(der: Buffer, headers: readonly number[], m: Mutation): Buffer {
  const b = Buffer.from(der);
  const at = (n: number) => n % Math.max(b.length, 1);
  switch (m.kind) {
    case 'flip': b[at(m.at)]! ^= m.mask; return b;
    case 'set': b[at(m.at)] = m.byte; return b;
    case 'truncate': return b.subarray(0, at(m.at));
    case 'append': return Buffer.concat([b, m.bytes]);
    case 'insert': return Buffer.concat([b.subarray(0, at(m.at)), m.bytes, b.subarray(at(m.at))]);
    case 'delete': return Buffer.concat([b.subarray(0, at(m.at)), b.subarray(at(m.at) + m.count)]);
    default: break;
  }
  const h = headers[m.header % headers.length]!;
  if (m.kind === 'tag') {
    b[h] = m.tag;
    return b;
  }
  const l = lengthAt(b, h);
  if (!l) return b;
  const before = b.subarray(0, l.at);
  const after = b.subarray(l.at + l.size);
  switch (m.kind) {
    case 'length': return withLength(before, Math.max(0, l.len + m.delta), after);
    case 'longLength': return Buffer.concat([before, encodeLength(l.len, m.octets, m.zeros), after]);
    case 'indefinite': return Buffer.concat([before, Buffer.from([0x80]), after, Buffer.from([0, 0])]);
  }
}

function withLength(before: Buffer, len: number, after: Buffer): Buffer {
  const enc = len < 0x80 ? Buffer.from([len]) : encodeLength(len, 0, 0);
  return Buffer.concat([before, enc, after]);
}

/**
 * A seed picked from `seeds`, damaged by 1 to 3 mutations. A counterexample
 * prints as the seed index and the mutations (with the header offsets they
 * hit), not as a kilobyte of bytes.
 */
export function mutatedFrom(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  const headers = seeds.map(tlvHeaderOffsets);
  return fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.array(mutationArb, { minLength: 1, maxLength: 3 })).map(([i, ms]) => {
    const out = ms.reduce((b, m) => mutate(b, headers[i]!, m), seeds[i]!);
    const how = ms.map((m) => ('header' in m ? { ...m, offset: headers[i]![m.header % headers[i]!.length] } : m));
    return Object.assign(out, { [fc.toStringMethod]: () => `seed ${i} + ${JSON.stringify(how)} = ${out.toString('hex')}` });
  });
}

/**
 * fast-check parameters for a property: a fixed seed and a bounded number of
 * runs, so CI is fast and a failure reproduces. TRELLIS_FUZZ_RUNS and
 * TRELLIS_FUZZ_SEED override them for a longer local search.
 */
export function fuzzParams(seed: number, numRuns: number): { seed: number; numRuns: number } {
  const env = (name: string) => (process.env[name] ? Number(process.env[name]) : undefined);
  return { seed: env('TRELLIS_FUZZ_SEED') ?? seed, numRuns: env('TRELLIS_FUZZ_RUNS') ?? numRuns };
}
