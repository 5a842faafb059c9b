/** X.501 Name encoding and parsing for the attributes profiles may use. */
import { children, oid, printable, readOid, readString, seq, setOf, utf8, isPrintableString, type Tlv, Tag, expectTag } from './der.js';
import { OID } from './oids.js';
import { PkiError } from '../errors/pki-error.js';

/** Attribute short names Trellis encodes, in the RDN order used in issued certificates. */
export const nameOrder = ['C', 'ST', 'L', 'O', 'OU', 'CN', 'serialNumber'] as const;
export type NameAttribute = (typeof nameOrder)[number];
/** A dotted OID naming an attribute type Trellis has no short name for (declared by a profile's `subject.attributes`). */
export type AttributeOid = `${number}.${string}`;
/** A subject to encode: the standard attributes by short name, any other by its dotted OID. */
export type NameValues = Partial<Record<NameAttribute | AttributeOid, string>>;

const oidOf: Record<NameAttribute, string> = {
  C: OID.C, ST: OID.ST, L: OID.L, O: OID.O, OU: OID.OU, CN: OID.CN, serialNumber: OID.serialNumber,
};
const nameOf = new Map<string, string>([...Object.entries(oidOf).map(([k, v]) => [v, k] as [string, string]), [OID.emailAddress, 'emailAddress']]);

/** One attribute of a parsed Name, in the order it appeared. */
export interface NameEntry {
  /** Short name when known (CN, O, …), else the dotted OID. */
  type: string;
  value: string;
}

/** X.520 upper bounds (RFC 5280 Appendix A). */
const maxLength: Record<NameAttribute, number> = { C: 2, ST: 128, L: 128, O: 64, OU: 64, CN: 64, serialNumber: 64 };
/** Upper bound for attributes named by OID: their profile's pattern decides the form, this bounds the size. */
export const maxOidAttributeLength = 64;

const dottedOid = /^[0-2](\.(0|[1-9]\d*))+$/;
/** True for a key of {@link NameValues} that is a dotted OID rather than a short name. */
export const isAttributeOid = (key: string): key is AttributeOid => dottedOid.test(key);

/** Compares dotted OIDs arc by arc, numerically. */
function compareOids(a: string, b: string): number {
  const x = a.split('.').map(BigInt);
  const y = b.split('.').map(BigInt);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return x.length - y.length;
}

/**
 * Encodes a Name with one attribute per RDN, in {@link nameOrder}, then the
 * attributes named by OID in OID order (e.g. Matter's VID before its PID).
 * RFC 5280 §4.1.2.6 / Appendix A: countryName and serialNumber are
 * PrintableString; the others, and every attribute named by OID, UTF8String
 * (required since 2004).
 */
export function encodeName(attrs: NameValues): Buffer {
  const rdns: Buffer[] = [];
  for (const type of nameOrder) {
    const v = attrs[type];
    if (v === undefined) continue;
    if (v.length === 0 || v.length > maxLength[type]) throw new PkiError('badCSR', `subject ${type} must be 1..${maxLength[type]} characters`);
    const printableOnly = type === 'C' || type === 'serialNumber';
    if (printableOnly && !isPrintableString(v)) throw new PkiError('badCSR', `subject ${type} must use PrintableString characters`);
    rdns.push(setOf(seq(oid(oidOf[type]), printableOnly ? printable(v) : utf8(v))));
  }
  const byOid = Object.keys(attrs).filter((k) => !(nameOrder as readonly string[]).includes(k));
  for (const type of byOid.sort(compareOids)) {
    const v = attrs[type as AttributeOid];
    if (v === undefined) continue;
    if (!isAttributeOid(type) || nameOf.has(type)) throw new PkiError('badCSR', `subject attribute ${type} is not supported`);
    if (v.length === 0 || v.length > maxOidAttributeLength) throw new PkiError('badCSR', `subject ${type} must be 1..${maxOidAttributeLength} characters`);
    rdns.push(setOf(seq(oid(type), utf8(v))));
  }
  return seq(...rdns);
}

/** Parses a Name TLV into its attributes (multi-valued RDNs flattened). */
export function parseName(t: Tlv): NameEntry[] {
  expectTag(t, Tag.SEQUENCE, 'Name');
  const out: NameEntry[] = [];
  for (const rdn of children(t)) {
    expectTag(rdn, Tag.SET, 'RelativeDistinguishedName');
    for (const atv of children(rdn)) {
      const [type, val] = children(expectTag(atv, Tag.SEQUENCE, 'AttributeTypeAndValue'));
      if (!type || !val) throw new PkiError('malformed', 'malformed DER: AttributeTypeAndValue');
      const o = readOid(type);
      out.push({ type: nameOf.get(o) ?? o, value: readString(val) });
    }
  }
  return out;
}

/** One-line display form, e.g. "CN=device-1, O=Example" (order as encoded; commas in values escaped). */
export function formatName(entries: NameEntry[]): string {
  return entries.map((e) => `${e.type}=${e.value.replace(/([,\\+=<>#;"])/g, '\\$1')}`).join(', ');
}

