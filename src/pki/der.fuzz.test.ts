/**
 * The DER reader under hostile input (issue 12): random bytes reach every
 * reader and may only produce a value or a `malformed` PkiError; what the
 * writer encodes, the reader reads back. Plain regression tests keep the
 * counterexamples the properties found.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import {
  checkDer, children, generalizedTime, int, isConstructed, oid, readBitString, readBoolean, readOid, readOne, readSmallInt, readString, readTime,
  readTlv, readUnsigned, Tag, time, tlv, value, type Tlv,
} from './der.js';
import { fuzzParams } from './testing/mutate.js';

const runs = fuzzParams(0xde12, 2000);

/** Runs `f`; a `malformed` PkiError counts as a clean refusal, anything else escapes. */
function refusesCleanly(f: () => unknown): void {
  try {
    f();
  } catch (err) {
    if (!isPkiError(err, 'malformed')) throw err;
  }
}

/** Every reader applied to a TLV, recursively through constructed values. */
function readAll(t: Tlv): void {
  for (const read of [readOid, readUnsigned, readSmallInt, readBitString, readBoolean, readTime, readString]) refusesCleanly(() => read(t));
  if (isConstructed(t)) refusesCleanly(() => children(t).forEach(readAll));
}

const tags = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(...Object.values(Tag)));
/** A TLV with a chosen tag and random contents, its header well-formed or not. */
const tlvLike = fc.oneof(
  fc.tuple(tags, fc.uint8Array({ maxLength: 40 })).map(([tag, body]) => tlv(tag, body)),
  fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b)),
);

describe('DER reader under hostile input', () => {
  test('any bytes: readTlv, readOne and every typed reader return or throw a malformed PkiError', () => {
    fc.assert(
      fc.property(tlvLike, fc.nat({ max: 8 }), (der, offset) => {
        refusesCleanly(() => readTlv(der, offset));
        refusesCleanly(() => readAll(readOne(der)));
      }),
      runs,
    );
  });

  test('a TLV whose tag is each string or time type, random contents: readString and readTime never throw anything but malformed', () => {
    const stringTag = fc.constantFrom(Tag.UTF8String, Tag.PrintableString, Tag.IA5String, Tag.T61String, Tag.BMPString, Tag.NumericString, Tag.VisibleString, Tag.UniversalString, Tag.UTCTime, Tag.GeneralizedTime);
    fc.assert(
      fc.property(stringTag, fc.oneof(fc.uint8Array({ maxLength: 24 }), fc.stringMatching(/^[0-9]{10,16}(\.[0-9]{1,3})?Z?$/).map((s) => Buffer.from(s))), (tag, body) => {
        const t = readOne(tlv(tag, body));
        refusesCleanly(() => readString(t));
        refusesCleanly(() => readTime(t));
      }),
      runs,
    );
  });

  test('readOid agrees with the plain BigInt decoder on any contents: the same string, or both refuse', () => {
    /** X.690 §8.19 read the slow, obvious way: a BigInt per byte. */
    const reference = (b: Uint8Array): string | 'refused' => {
      if (b.length === 0) return 'refused';
      const arcs: bigint[] = [];
      let v = 0n;
      for (let i = 0; i < b.length; i++) {
        if (v === 0n && b[i] === 0x80) return 'refused';
        v = (v << 7n) | BigInt(b[i]! & 0x7f);
        if (!(b[i]! & 0x80)) {
          arcs.push(v);
          v = 0n;
        } else if (i === b.length - 1) return 'refused';
      }
      const first = arcs[0]!;
      const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
      return [...head, ...arcs.slice(1)].join('.');
    };
    // Bytes biased to continuation octets, so that long arcs (past 2^45 and 2^53) are common.
    const contents = fc.array(fc.oneof(fc.integer({ min: 0x80, max: 0xff }), fc.integer({ min: 0, max: 0xff })), { maxLength: 30 });
    fc.assert(
      fc.property(contents, (bytes) => {
        let got: string;
        try {
          got = readOid(readOne(tlv(Tag.OID, Buffer.from(bytes))));
        } catch (err) {
          if (!isPkiError(err, 'malformed')) throw err;
          got = 'refused';
        }
        expect(got).toBe(reference(Uint8Array.from(bytes)));
      }),
      runs,
    );
  });

  test('round trip: INTEGER, OID, UTCTime and GeneralizedTime read back what the writer encoded', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 160n) - 1n }), (n) => {
        expect(BigInt(`0x${readUnsigned(readOne(int(n))).toString('hex') || '0'}`)).toBe(n);
      }),
      runs,
    );
    const arcs = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 39 }), fc.array(fc.bigInt({ min: 0n, max: 1n << 70n }), { maxLength: 8 }));
    fc.assert(
      fc.property(arcs, ([a, b, rest]) => {
        const dotted = [a, b, ...rest].join('.');
        expect(readOid(readOne(oid(dotted)))).toBe(dotted);
      }),
      runs,
    );
    // Arcs on both sides of the number/bigint switch (2^45), and a first subidentifier past 2^45 (2.x with a huge x).
    for (const dotted of ['2.999', '1.39.35184372088831', '1.2.35184372088832', '1.2.4503599627370495', '1.2.9007199254740993', '2.35184372088753', `2.${(1n << 80n) - 80n}.5`, '0.0', '2.5.29.17']) {
      expect(readOid(readOne(oid(dotted)))).toBe(dotted);
    }
    const dates = fc.date({ min: new Date('1950-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => new Date(Math.floor(d.getTime() / 1000) * 1000));
    fc.assert(
      fc.property(dates, (d) => {
        expect(readTime(readOne(time(d))).getTime()).toBe(d.getTime());
        expect(readTime(readOne(generalizedTime(d))).getTime()).toBe(d.getTime());
      }),
      runs,
    );
  });
});

describe('DER reader: counterexamples kept as regression tests', () => {
  const malformed = (f: () => unknown) => expect(f).toThrow(expect.objectContaining({ name: 'PkiError', type: 'malformed' }));

  test('rejects: BMPString of an odd number of octets (was a RangeError from swap16)', () => {
    malformed(() => readString(readOne(tlv(Tag.BMPString, Buffer.from([0x00, 0x41, 0x00])))));
    expect(readString(readOne(tlv(Tag.BMPString, Buffer.from([0x00, 0x41, 0x00, 0xe9]))))).toBe('Aé');
  });

  test('reads NumericString, VisibleString and UniversalString name values (pkijs and OpenSSL read them)', () => {
    expect(readString(readOne(tlv(Tag.NumericString, Buffer.from('0123 45'))))).toBe('0123 45');
    expect(readString(readOne(tlv(Tag.VisibleString, Buffer.from('Visible'))))).toBe('Visible');
    expect(readString(readOne(tlv(Tag.UniversalString, Buffer.from([0, 0, 0, 0x41, 0, 1, 0xf6, 0x00]))))).toBe('A\u{1f600}');
  });

  test('rejects: UniversalString of a length not a multiple of 4, or a code point past U+10FFFF', () => {
    malformed(() => readString(readOne(tlv(Tag.UniversalString, Buffer.from([0, 0, 0x41])))));
    malformed(() => readString(readOne(tlv(Tag.UniversalString, Buffer.from([0, 0x11, 0, 0])))));
  });

  test.each([
    ['month 13', Tag.UTCTime, '261301000000Z'],
    ['31 April', Tag.UTCTime, '260431000000Z'],
    ['hour 24', Tag.GeneralizedTime, '20260101240000Z'],
    ['second 60', Tag.GeneralizedTime, '20261231235960Z'],
    ['day 0', Tag.UTCTime, '260100000000Z'],
  ])('rejects: time with %s (Date.UTC used to roll it into the next unit)', (_why, tag, text) => {
    malformed(() => readTime(readOne(tlv(tag, Buffer.from(text, 'latin1')))));
  });

  test('reads GeneralizedTime years before 100 as those years', () => {
    expect(readTime(readOne(tlv(Tag.GeneralizedTime, Buffer.from('00500101000000Z')))).toISOString()).toBe('0050-01-01T00:00:00.000Z');
  });

  test('rejects: universal tag 0 (end-of-contents) as a value, primitive or constructed (pkijs refuses it)', () => {
    malformed(() => readOne(Buffer.from([0x00, 0x01, 0x41])));
    malformed(() => readOne(Buffer.from([0x20, 0x00])));
  });

  test('rejects: constructed encodings of universal string and primitive types (X.690 §10.2)', () => {
    malformed(() => readOne(tlv(0x2c, tlv(Tag.UTF8String, Buffer.from('a')))));
    malformed(() => readOne(tlv(0x23, tlv(Tag.BIT_STRING, Buffer.from([0])))));
    expect(readOne(tlv(Tag.SET, tlv(Tag.NULL, Buffer.alloc(0)))).tag).toBe(Tag.SET);
  });

  test('checkDer: rejects bad contents deep inside a value kept unread, accepts DER', () => {
    malformed(() => checkDer(readOne(tlv(Tag.SEQUENCE, tlv(Tag.SET, tlv(Tag.BIT_STRING, Buffer.from([9])))))));
    malformed(() => checkDer(readOne(tlv(Tag.SEQUENCE, tlv(Tag.INTEGER, Buffer.from([0, 1]))))));
    malformed(() => checkDer(readOne(tlv(Tag.SEQUENCE, tlv(Tag.UTCTime, Buffer.from('261301000000Z'))))));
    expect(() => checkDer(readOne(tlv(Tag.SEQUENCE, tlv(Tag.INTEGER, Buffer.from([0xff])), oid('1.2.3'), tlv(Tag.NULL, Buffer.alloc(0)))))).not.toThrow();
  });

  test('value() of a readOne TLV is its contents', () => {
    expect(value(readOne(tlv(Tag.OCTET_STRING, Buffer.from([1, 2, 3]))))).toEqual(Buffer.from([1, 2, 3]));
  });
});
