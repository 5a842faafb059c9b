/** X.501 Name encoding and parsing for the attributes profiles may use. */
import { children, oid, printable, readOid, readString, seq, setOf, utf8, isPrintableString, type Tlv, Tag, expectTag } from './der.js';
import { OID } from './oids.js';
import { PkiError } from '../errors/pki-error.js';

/** Attribute short names Trellis encodes, in the RDN order used in issued certificates. */
export const nameOrder = ['C', 'ST', 'L', 'O', 'OU', 'CN', 'serialNumber'] as const;
export type NameAttribute = (typeof nameOrder)[number];

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

/**
 * Encodes a Name with one attribute per RDN, in {@link nameOrder}.
 * RFC 5280 §4.1.2.6 / Appendix A: countryName and serialNumber are
 * PrintableString; the others UTF8String (required since 2004).
 */
export function encodeName(attrs: Partial<Record<NameAttribute, string>>): Buffer {
  const rdns: Buffer[] = [];
  for (const type of nameOrder) {
    const v = attrs[type];
    if (v === undefined) continue;
    if (v.length === 0 || v.length > maxLength[type]) throw new PkiError('badCSR', `subject ${type} must be 1..${maxLength[type]} characters`);
    const printableOnly = type === 'C' || type === 'serialNumber';
    if (printableOnly && !isPrintableString(v)) throw new PkiError('badCSR', `subject ${type} must use PrintableString characters`);
    rdns.push(setOf(seq(oid(oidOf[type]), printableOnly ? printable(v) : utf8(v))));
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

