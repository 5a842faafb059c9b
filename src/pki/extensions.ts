/**
 * Certificate extensions (RFC 5280 §4.2): DER encoders used by the CA core and
 * decoders used by the lints. Each encoder returns a whole Extension.
 */
import { bool, children, ctx, derNull, expectTag, int, octetString, oid, readBitString, readBoolean, readOid, readOne, readSmallInt, seq, Tag, tlv, value, type Tlv } from './der.js';
import { encodeGeneralNames, parseGeneralName, parseGeneralNames, type GeneralName } from './general-name.js';
import { ipToBytes } from './ip.js';
import { OID } from './oids.js';
import { PkiError } from '../errors/pki-error.js';

// Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
export const extension = (extnId: string, critical: boolean, valueDer: Buffer): Buffer =>
  critical ? seq(oid(extnId), bool(true), octetString(valueDer)) : seq(oid(extnId), octetString(valueDer));

/** KeyUsage bit positions (RFC 5280 §4.2.1.3). */
export const keyUsageBits = {
  digitalSignature: 0, nonRepudiation: 1, keyEncipherment: 2, dataEncipherment: 3, keyAgreement: 4,
  keyCertSign: 5, cRLSign: 6, encipherOnly: 7, decipherOnly: 8,
} as const;
export type KeyUsage = keyof typeof keyUsageBits;

// KeyUsage ::= BIT STRING; DER (X.690 §11.2.2) drops trailing zero bits of a named bit list.
export function keyUsageExtension(usages: readonly KeyUsage[]): Buffer {
  let bits = 0;
  for (const u of usages) bits |= 1 << keyUsageBits[u];
  if (bits === 0) throw new PkiError('badProfile', 'keyUsage must name at least one usage');
  const highest = 31 - Math.clz32(bits);
  const nBytes = highest >= 8 ? 2 : 1;
  const bytes = Buffer.alloc(nBytes);
  for (let b = 0; b <= highest; b++) if (bits & (1 << b)) bytes[b >> 3]! |= 0x80 >> (b & 7);
  const unused = nBytes * 8 - 1 - highest;
  return extension(OID.keyUsage, true, tlv(Tag.BIT_STRING, Buffer.from([unused]), bytes));
}

export function decodeKeyUsage(valueDer: Buffer): Set<KeyUsage> {
  const { bytes } = readBitString(readOne(valueDer));
  const out = new Set<KeyUsage>();
  for (const [name, bit] of Object.entries(keyUsageBits) as [KeyUsage, number][]) if ((bytes[bit >> 3] ?? 0) & (0x80 >> (bit & 7))) out.add(name);
  return out;
}

// ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId
export const extKeyUsageExtension = (oids: readonly string[]): Buffer => extension(OID.extKeyUsage, false, seq(...oids.map(oid)));
export const decodeExtKeyUsage = (valueDer: Buffer): string[] => children(readOne(valueDer, Tag.SEQUENCE)).map(readOid);

// BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }
export function basicConstraintsExtension(ca: boolean, pathLen?: number): Buffer {
  const parts: Buffer[] = [];
  if (ca) parts.push(bool(true));
  if (ca && pathLen !== undefined) parts.push(int(pathLen));
  return extension(OID.basicConstraints, true, seq(...parts));
}
export function decodeBasicConstraints(valueDer: Buffer): { ca: boolean; pathLen?: number } {
  const f = children(readOne(valueDer, Tag.SEQUENCE));
  let i = 0;
  const ca = f[0]?.tag === Tag.BOOLEAN ? readBoolean(f[i++]!) : false;
  const pathLen = f[i] ? readSmallInt(f[i++]!) : undefined;
  if (i !== f.length) throw new PkiError('malformed', 'malformed DER: basicConstraints has an unexpected field');
  return pathLen === undefined ? { ca } : { ca, pathLen };
}

// SubjectKeyIdentifier ::= KeyIdentifier (OCTET STRING)
export const subjectKeyIdentifierExtension = (keyId: Buffer): Buffer => extension(OID.subjectKeyIdentifier, false, octetString(keyId));
export const decodeSubjectKeyIdentifier = (valueDer: Buffer): Buffer => value(readOne(valueDer, Tag.OCTET_STRING));

// AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] KeyIdentifier OPTIONAL, … }
export const authorityKeyIdentifierExtension = (keyId: Buffer): Buffer => extension(OID.authorityKeyIdentifier, false, seq(ctx(0, false, keyId)));
export function decodeAuthorityKeyIdentifier(valueDer: Buffer): Buffer | null {
  const f = children(readOne(valueDer, Tag.SEQUENCE)).find((t) => t.tag === 0x80);
  return f ? value(f) : null;
}

// SubjectAltName ::= GeneralNames; critical when the subject is empty (§4.2.1.6).
export const subjectAltNameExtension = (names: GeneralName[], critical: boolean): Buffer => extension(OID.subjectAltName, critical, encodeGeneralNames(names));
export const decodeSubjectAltName = (valueDer: Buffer): GeneralName[] => parseGeneralNames(readOne(valueDer, Tag.SEQUENCE));

// CRLDistributionPoints ::= SEQUENCE OF DistributionPoint
// DistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL, … }
// DistributionPointName ::= CHOICE { fullName [0] GeneralNames, … }
export const distributionPointName = (url: string): Buffer => ctx(0, true, ctx(0, true, ctx(6, false, Buffer.from(url, 'latin1'))));
export const crlDistributionPointsExtension = (url: string): Buffer => extension(OID.cRLDistributionPoints, false, seq(seq(distributionPointName(url))));
export function decodeCrlDistributionPoints(valueDer: Buffer): string[] {
  const urls: string[] = [];
  for (const dp of children(readOne(valueDer, Tag.SEQUENCE))) {
    const dpn = children(dp).find((t) => t.tag === 0xa0);
    const full = dpn && children(dpn).find((t) => t.tag === 0xa0);
    if (full) for (const gn of children(full)) if (gn.tag === 0x86) urls.push(value(gn).toString('latin1'));
  }
  return urls;
}

// AuthorityInfoAccessSyntax ::= SEQUENCE OF AccessDescription { accessMethod OID, accessLocation GeneralName }
export function authorityInfoAccessExtension(urls: { ocsp?: string; caIssuers?: string }): Buffer {
  const ads: Buffer[] = [];
  if (urls.ocsp) ads.push(seq(oid(OID.ocsp), ctx(6, false, Buffer.from(urls.ocsp, 'latin1'))));
  if (urls.caIssuers) ads.push(seq(oid(OID.caIssuers), ctx(6, false, Buffer.from(urls.caIssuers, 'latin1'))));
  return extension(OID.authorityInfoAccess, false, seq(...ads));
}
export function decodeAuthorityInfoAccess(valueDer: Buffer): { method: string; url: string }[] {
  return children(readOne(valueDer, Tag.SEQUENCE)).map((ad) => {
    const f = children(expectTag(ad, Tag.SEQUENCE, 'AccessDescription'));
    if (f.length !== 2) throw new PkiError('malformed', 'malformed DER: AccessDescription must have accessMethod and accessLocation');
    const [m, loc] = f as [Tlv, Tlv];
    parseGeneralName(loc);
    return { method: readOid(m), url: value(loc).toString('latin1') };
  });
}

// certificatePolicies ::= SEQUENCE SIZE (1..MAX) OF PolicyInformation { policyIdentifier CertPolicyId }
export const certificatePoliciesExtension = (policyOids: readonly string[]): Buffer =>
  extension(OID.certificatePolicies, false, seq(...policyOids.map((p) => seq(oid(p)))));

// id-pkix-ocsp-nocheck: extnValue is NULL (RFC 6960 §4.2.2.2.1)
export const ocspNoCheckExtension = (): Buffer => extension(OID.ocspNoCheck, false, derNull);

// NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees OPTIONAL, excludedSubtrees [1] GeneralSubtrees OPTIONAL }
// GeneralSubtree ::= SEQUENCE { base GeneralName, minimum [0] DEFAULT 0, maximum [1] OPTIONAL }
// RFC 5280 §4.2.1.10: conforming CAs MUST mark it critical; iPAddress bases are address + mask.
export interface NameConstraintSet { dns?: string[]; ip?: string[]; email?: string[]; uri?: string[] }
function subtrees(set: NameConstraintSet): Buffer[] {
  const out: Buffer[] = [];
  for (const d of set.dns ?? []) out.push(seq(ctx(2, false, Buffer.from(d, 'latin1'))));
  for (const e of set.email ?? []) out.push(seq(ctx(1, false, Buffer.from(e, 'latin1'))));
  for (const u of set.uri ?? []) out.push(seq(ctx(6, false, Buffer.from(u, 'latin1'))));
  for (const cidr of set.ip ?? []) {
    const [addr, bitsText] = cidr.split('/');
    const a = ipToBytes(addr ?? '');
    const bits = Number(bitsText);
    if (!a || !Number.isInteger(bits) || bits < 0 || bits > a.length * 8) throw new PkiError('badProfile', `bad CIDR in name constraints: ${cidr}`);
    const mask = Buffer.alloc(a.length);
    for (let b = 0; b < bits; b++) mask[b >> 3]! |= 0x80 >> (b & 7);
    out.push(seq(ctx(7, false, Buffer.concat([a, mask]))));
  }
  return out;
}
export function nameConstraintsExtension(permitted?: NameConstraintSet, excluded?: NameConstraintSet): Buffer {
  const parts: Buffer[] = [];
  const p = permitted ? subtrees(permitted) : [];
  const x = excluded ? subtrees(excluded) : [];
  if (p.length) parts.push(ctx(0, true, ...p));
  if (x.length) parts.push(ctx(1, true, ...x));
  return extension(OID.nameConstraints, true, seq(...parts));
}

/** Human-readable check helper for lints: DER NULL value. */
export const isNullValue = (valueDer: Buffer): boolean => valueDer.equals(derNull);
