/**
 * The DER writer's TLV against OpenSSL: the length octets at every boundary
 * of the short and long forms, contents given in one piece or several, and
 * the reader reading back what was written.
 */
import { describe, expect, test } from 'vitest';
import { opensslRun } from '../../test/helpers/openssl.js';
import { children, readOne, readSmallInt, seq, int, Tag, tlv, value } from './der.js';

/** Contents of `n` bytes, not all alike (so a misplaced piece shows). */
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));

/** The header length (hl=) and contents length (l=) openssl asn1parse reads off the first TLV. */
async function asn1Header(der: Buffer): Promise<{ hl: number; l: number; type: string }> {
  const r = await opensslRun(['asn1parse', '-inform', 'DER'], der);
  expect(r.code, r.stderr).toBe(0);
  const m = /^\s*0:d=0\s+hl=(\d+)\s+l=\s*(\d+)\s+(prim|cons):\s+(\S+(?: \S+)?)/.exec(r.stdout);
  expect(m, r.stdout).not.toBeNull();
  return { hl: Number(m![1]), l: Number(m![2]), type: m![4]!.trim() };
}

describe('tlv', () => {
  test.each([0, 1, 127, 128, 129, 255, 256, 300, 65535, 65536, 70000])('an OCTET STRING of %i bytes reads as OpenSSL reads it', async (n) => {
    const body = bytes(n);
    // The same contents in one piece and in three: one encoding.
    const one = tlv(Tag.OCTET_STRING, body);
    const three = tlv(Tag.OCTET_STRING, body.subarray(0, n >> 2), body.subarray(n >> 2, n >> 1), body.subarray(n >> 1));
    expect(three).toEqual(one);
    const hl = n < 0x80 ? 2 : n < 0x100 ? 3 : n < 0x10000 ? 4 : 5;
    expect(one.length).toBe(hl + n);
    expect(await asn1Header(one)).toEqual({ hl, l: n, type: 'OCTET STRING' });
    expect(value(readOne(one, Tag.OCTET_STRING))).toEqual(body);
  });

  test('a SEQUENCE of TLVs: OpenSSL and the reader find the same children', async () => {
    const items = [int(0), tlv(Tag.OCTET_STRING, bytes(200)), seq(), tlv(Tag.UTF8String, Buffer.from('é'))];
    const der = seq(...items);
    expect(await asn1Header(der)).toEqual({ hl: 3, l: items.reduce((a, b) => a + b.length, 0), type: 'SEQUENCE' });
    expect(children(readOne(der, Tag.SEQUENCE)).map((c) => c.buf.subarray(c.headerStart, c.end))).toEqual(items);
  });
});

describe('readSmallInt', () => {
  test.each([0, 1, 127, 128, 255, 256, 65535, 2 ** 32 + 5, 2 ** 48 - 1])('reads back %i', (n) => {
    expect(readSmallInt(readOne(int(n), Tag.INTEGER))).toBe(n);
  });
});
