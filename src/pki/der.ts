/**
 * A small DER writer and reader for the hot paths (certificate TBS, CSR, CRL,
 * OCSP). Generic ASN.1 libraries build object graphs per field; here a value is
 * just the Buffer of its encoding, so a TBS costs a few concatenations.
 * X.690 §8 (BER) and §10 (DER restrictions).
 */
import { PkiError } from '../errors/pki-error.js';

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8String: 0x0c,
  SEQUENCE: 0x30,
  SET: 0x31,
  NumericString: 0x12,
  PrintableString: 0x13,
  T61String: 0x14,
  IA5String: 0x16,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
  VisibleString: 0x1a,
  UniversalString: 0x1c,
  BMPString: 0x1e,
} as const;

/** Number of DER length octets for a contents length (X.690 §8.1.3: definite form, minimal). */
const lengthSize = (len: number): number => (len < 0x80 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : len < 0x1000000 ? 4 : 5);

/**
 * Encodes one TLV with a single-octet tag: the identifier, the minimal
 * definite length and the contents written into one buffer (the one
 * allocation per value; every byte of it is written).
 */
export function tlv(tag: number, ...contents: Uint8Array[]): Buffer {
  let len = 0;
  for (const c of contents) len += c.length;
  const n = lengthSize(len);
  const out = Buffer.allocUnsafe(1 + n + len);
  out[0] = tag;
  if (n === 1) out[1] = len;
  else {
    out[1] = 0x80 | (n - 1);
    for (let i = n, v = len; i >= 2; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  }
  let p = 1 + n;
  for (const c of contents) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

export const seq = (...items: Uint8Array[]): Buffer => tlv(Tag.SEQUENCE, ...items);

/** SEQUENCE of an array of any length (spreading a million arguments would overflow the stack). */
export const seqOf = (items: readonly Uint8Array[]): Buffer => tlv(Tag.SEQUENCE, Buffer.concat(items));

/** SET OF with DER ordering (X.690 §11.6: components sorted by their encodings). */
export const setOf = (...items: Buffer[]): Buffer => tlv(Tag.SET, ...[...items].sort(Buffer.compare));

/** Context-specific tag [n]; constructed for EXPLICIT tagging or constructed IMPLICIT types. */
export const ctx = (n: number, constructed: boolean, ...contents: Uint8Array[]): Buffer =>
  tlv((constructed ? 0xa0 : 0x80) | n, ...contents);

export const derNull = Buffer.from([0x05, 0x00]);

export const bool = (v: boolean): Buffer => Buffer.from([Tag.BOOLEAN, 1, v ? 0xff : 0x00]);

/** INTEGER from non-negative magnitude bytes (adds the 0x00 sign octet and strips redundant zeros). */
export function uintFromBytes(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0 && bytes[i + 1]! < 0x80) i++;
  const b = Buffer.from(bytes.subarray(i));
  return b[0]! >= 0x80 ? tlv(Tag.INTEGER, Buffer.from([0]), b) : tlv(Tag.INTEGER, b);
}

export function int(n: number | bigint): Buffer {
  const v = BigInt(n);
  if (v < 0n) throw new RangeError('negative INTEGER not supported');
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return uintFromBytes(Buffer.from(hex, 'hex'));
}

const oidCache = new Map<string, Buffer>();
/** OBJECT IDENTIFIER from dotted decimal (cached: OIDs repeat in every certificate). */
export function oid(dotted: string): Buffer {
  let enc = oidCache.get(dotted);
  if (enc) return enc;
  const arcs = dotted.split('.').map((a) => BigInt(a));
  if (arcs.length < 2) throw new RangeError(`bad OID ${dotted}`);
  const out: number[] = [];
  const push = (v: bigint) => {
    const tmp = [Number(v & 0x7fn)];
    for (v >>= 7n; v > 0n; v >>= 7n) tmp.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...tmp);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  enc = tlv(Tag.OID, Buffer.from(out));
  oidCache.set(dotted, enc);
  return enc;
}

export const octetString = (b: Uint8Array): Buffer => tlv(Tag.OCTET_STRING, b);
/** BIT STRING with zero unused bits. */
export const bitString = (b: Uint8Array): Buffer => tlv(Tag.BIT_STRING, Buffer.from([0]), b);
export const utf8 = (s: string): Buffer => tlv(Tag.UTF8String, Buffer.from(s, 'utf8'));
export const printable = (s: string): Buffer => tlv(Tag.PrintableString, Buffer.from(s, 'latin1'));
export const ia5 = (s: string): Buffer => tlv(Tag.IA5String, Buffer.from(s, 'latin1'));

/** PrintableString alphabet (X.680 §41.4). */
export const isPrintableString = (s: string): boolean => /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s);

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/**
 * RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, both in
 * UTC with seconds and no fraction.
 */
export function time(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(Tag.UTCTime, Buffer.from(pad(y % 100) + rest, 'latin1'));
  return tlv(Tag.GeneralizedTime, Buffer.from(pad(y, 4) + rest, 'latin1'));
}

/** GeneralizedTime always (CRL invalidityDate, OCSP). */
export function generalizedTime(d: Date): Buffer {
  const s = `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  return tlv(Tag.GeneralizedTime, Buffer.from(s, 'latin1'));
}

// ---------------------------------------------------------------- reader

/** One decoded TLV: `tag` is the first identifier octet; `bytes` the whole encoding; `value` the contents. */
export interface Tlv {
  tag: number;
  /** Offset of the contents in `buf`. */
  start: number;
  /** Offset just past the contents. */
  end: number;
  /** Offset of the identifier octet. */
  headerStart: number;
  buf: Buffer;
}

export const value = (t: Tlv): Buffer => t.buf.subarray(t.start, t.end);
export const whole = (t: Tlv): Buffer => t.buf.subarray(t.headerStart, t.end);
export const isConstructed = (t: Tlv): boolean => (t.tag & 0x20) !== 0;

const malformed = (what: string): PkiError => new PkiError('malformed', `malformed DER: ${what}`);

/** Reads the TLV at `offset` within [offset, limit); strict DER lengths, single-octet tags only. */
export function readTlv(buf: Buffer, offset = 0, limit = buf.length): Tlv {
  if (offset + 2 > limit) throw malformed('truncated header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw malformed('multi-octet tags are not supported');
  // X.680 §8.6: universal tag 0 is reserved for the encoding rules (BER's end-of-contents), never a value.
  if ((tag & 0xdf) === 0) throw malformed('universal tag 0 (end-of-contents) is not a value');
  // X.690 §10.2: DER encodes strings primitive; of the universal types only SEQUENCE and SET are constructed here.
  if ((tag & 0xe0) === 0x20 && tag !== Tag.SEQUENCE && tag !== Tag.SET) throw malformed(`constructed encoding of universal type ${tag & 0x1f}`);
  let p = offset + 1;
  let len = buf[p++]!;
  if (len === 0x80) throw malformed('indefinite length');
  if (len > 0x80) {
    const n = len & 0x7f;
    if (n > 4 || p + n > limit) throw malformed('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
    if (len < 0x80 || (n > 1 && buf[p - n] === 0)) throw malformed('non-minimal length');
  }
  if (p + len > limit) throw malformed('truncated contents');
  return { tag, start: p, end: p + len, headerStart: offset, buf };
}

/** Decodes exactly one TLV spanning the whole buffer. */
export function readOne(buf: Buffer, expectTag?: number): Tlv {
  const t = readTlv(buf, 0, buf.length);
  if (t.end !== buf.length) throw malformed('trailing data');
  if (expectTag !== undefined && t.tag !== expectTag) throw malformed(`expected tag 0x${expectTag.toString(16)}, got 0x${t.tag.toString(16)}`);
  return t;
}

/** The children of a constructed TLV. */
export function children(t: Tlv): Tlv[] {
  if (!isConstructed(t)) throw malformed('expected a constructed value');
  const out: Tlv[] = [];
  for (let p = t.start; p < t.end; ) {
    const c = readTlv(t.buf, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw malformed(`${what}: unexpected ${t ? `tag 0x${t.tag.toString(16)}` : 'end'}`);
  return t;
}

/**
 * Dotted-decimal string of an OID TLV. Arcs are summed as numbers while they
 * stay below 2^45 (every OID a certificate or CSR normally holds) and as
 * bigints beyond. Issuance reads a few dozen OIDs per certificate (the CSR,
 * then the linted certificate); a BigInt per byte cost ~430 ns per OID,
 * this ~70 ns (measured over the OIDs of a P-256 server certificate).
 */
export function readOid(t: Tlv): string {
  expectTag(t, Tag.OID, 'OBJECT IDENTIFIER');
  const { buf, start, end } = t;
  if (start === end) throw malformed('empty OID');
  let out = '';
  let v = 0;
  let big: bigint | null = null;
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    if (v === 0 && big === null && byte === 0x80) throw malformed('non-minimal OID arc');
    if (big !== null) big = (big << 7n) | BigInt(byte & 0x7f);
    else if (v < 2 ** 45) v = v * 128 + (byte & 0x7f);
    else big = (BigInt(v) << 7n) | BigInt(byte & 0x7f);
    if (byte & 0x80) {
      if (i === end - 1) throw malformed('truncated OID');
      continue;
    }
    if (out === '') {
      // X.690 §8.19.4: the first subidentifier holds the first two arcs (40 * X + Y, X ≤ 2).
      if (big !== null) out = `2.${big - 80n}`;
      else out = v < 40 ? `0.${v}` : v < 80 ? `1.${v - 40}` : `2.${v - 80}`;
    } else out += `.${big ?? v}`;
    v = 0;
    big = null;
  }
  return out;
}

/** Non-negative INTEGER contents as unsigned big-endian bytes (sign octet removed); negative → malformed. */
export function readUnsigned(t: Tlv): Buffer {
  expectTag(t, Tag.INTEGER, 'INTEGER');
  const b = value(t);
  if (b.length === 0) throw malformed('empty INTEGER');
  if (b.length > 1 && ((b[0] === 0 && b[1]! < 0x80) || (b[0] === 0xff && b[1]! >= 0x80))) throw malformed('non-minimal INTEGER');
  if (b[0]! & 0x80) throw malformed('negative INTEGER');
  return b[0] === 0 && b.length > 1 ? b.subarray(1) : b;
}

export function readSmallInt(t: Tlv): number {
  const b = readUnsigned(t);
  if (b.length > 6) throw malformed('INTEGER too large');
  let n = 0;
  for (let i = 0; i < b.length; i++) n = n * 256 + b[i]!;
  return n;
}

export function readBitString(t: Tlv): { unused: number; bytes: Buffer } {
  expectTag(t, Tag.BIT_STRING, 'BIT STRING');
  const b = value(t);
  if (b.length === 0 || b[0]! > 7) throw malformed('bad BIT STRING');
  return { unused: b[0]!, bytes: b.subarray(1) };
}

export function readBoolean(t: Tlv): boolean {
  expectTag(t, Tag.BOOLEAN, 'BOOLEAN');
  const b = value(t);
  if (b.length !== 1 || (b[0] !== 0 && b[0] !== 0xff)) throw malformed('non-DER BOOLEAN');
  return b[0] === 0xff;
}

/**
 * UTCTime or GeneralizedTime (Z form, seconds) → Date. A field out of range
 * (month 13, 31 April, hour 24, second 60) is refused, not carried over
 * into the next unit as Date.UTC would.
 */
export function readTime(t: Tlv): Date {
  const s = value(t).toString('latin1');
  let m: RegExpMatchArray | null;
  let f: number[] | undefined;
  let ms = 0;
  if (t.tag === Tag.UTCTime && (m = s.match(/^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/))) {
    const yy = Number(m[1]);
    f = [yy >= 50 ? 1900 + yy : 2000 + yy, ...m.slice(2, 7).map(Number)];
  } else if (t.tag === Tag.GeneralizedTime && (m = s.match(/^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\.\d+)?Z$/))) {
    f = m.slice(1, 7).map(Number);
    ms = m[7] ? Math.min(999, Math.round(Number(m[7]) * 1000)) : 0;
  }
  if (!f) throw malformed(`bad time "${s}"`);
  const [y, mo, d, h, mi, sec] = f as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, sec, ms));
  // Date.UTC maps years 0..99 to 1900..1999; setUTCFullYear puts them back.
  date.setUTCFullYear(y);
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || date.getUTCHours() !== h || date.getUTCMinutes() !== mi || date.getUTCSeconds() !== sec) {
    throw malformed(`time out of range "${s}"`);
  }
  return date;
}

/** Decodes the string types used in names (UTF8, Printable, IA5, Numeric, Visible, T61 as latin1, BMP, Universal). */
export function readString(t: Tlv): string {
  const b = value(t);
  switch (t.tag) {
    case Tag.UTF8String:
      return b.toString('utf8');
    case Tag.PrintableString:
    case Tag.IA5String:
    case Tag.T61String:
    case Tag.NumericString:
    case Tag.VisibleString:
      return b.toString('latin1');
    case Tag.UniversalString: {
      // UCS-4, four octets a character (big-endian code points).
      if (b.length % 4 !== 0) throw malformed('UniversalString of a length not a multiple of 4');
      const points: number[] = [];
      for (let i = 0; i < b.length; i += 4) points.push(b.readUInt32BE(i));
      if (points.some((p) => p > 0x10ffff)) throw malformed('UniversalString code point out of range');
      return String.fromCodePoint(...points);
    }
    case Tag.BMPString:
      // UCS-2, two octets a character: an odd length is not a BMPString.
      if (b.length % 2 !== 0) throw malformed('BMPString of an odd number of octets');
      return Buffer.from(b).swap16().toString('utf16le');
    default:
      throw malformed(`unsupported string type 0x${t.tag.toString(16)}`);
  }
}

/**
 * Checks that a value we keep without reading it (an attribute we skip, an
 * algorithm's parameters) is DER all the way down: the structure of every
 * constructed value, and the contents of the universal primitive types a
 * reader here knows (BOOLEAN, INTEGER, BIT STRING, NULL, OID, times, the
 * string types with a fixed width). Throws a `malformed` PkiError.
 */
export function checkDer(t: Tlv): void {
  if (isConstructed(t)) {
    children(t).forEach(checkDer);
    return;
  }
  switch (t.tag) {
    case Tag.BOOLEAN: readBoolean(t); break;
    case Tag.INTEGER:
    case Tag.ENUMERATED: {
      const b = value(t);
      if (b.length === 0 || (b.length > 1 && ((b[0] === 0 && b[1]! < 0x80) || (b[0] === 0xff && b[1]! >= 0x80)))) throw malformed('non-minimal INTEGER');
      break;
    }
    case Tag.BIT_STRING: readBitString(t); break;
    case Tag.NULL: if (t.end !== t.start) throw malformed('NULL with contents'); break;
    case Tag.OID: readOid(t); break;
    case Tag.UTCTime:
    case Tag.GeneralizedTime: readTime(t); break;
    case Tag.BMPString:
    case Tag.UniversalString: readString(t); break;
    default: break;
  }
}
