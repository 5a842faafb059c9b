/**
 * Name constraints (RFC 5280 §4.2.1.10) read from a CA certificate's DER, and
 * the names of a certificate they apply to, with the matching rules of
 * §4.2.1.10 and §7 (what OpenSSL's `NAME_CONSTRAINTS_check` does, where the
 * RFC leaves room, noted below).
 */
import { isIP } from 'node:net';
import { PkiError } from '../errors/pki-error.js';
import { bytesToIp, ipToBytes } from './ip.js';
import { findExtension, type ParsedCertificate } from './certificate.js';
import { children, expectTag, readOid, readOne, readSmallInt, readString, Tag, value, type Tlv } from './der.js';
import { decodeBasicConstraints } from './extensions.js';
import type { GeneralName } from './general-name.js';
import { formatName, parseName } from './name.js';
import { OID } from './oids.js';

/** The name forms constraints apply to, with RFC 5280's names for messages. */
export type ConstrainedType = 'dns' | 'email' | 'uri' | 'ip' | 'dirName';
export const constrainedTypeLabel: Record<ConstrainedType, string> = {
  dns: 'dNSName', email: 'rfc822Name', uri: 'uniformResourceIdentifier', ip: 'iPAddress', dirName: 'directoryName',
};

/** One attribute of an RDN, value normalised for comparison (RFC 5280 §7.1: case and spacing do not count). */
interface Atv {
  oid: string;
  value: string;
}
type Rdn = Atv[];

/** A GeneralSubtree base of a form Trellis can check. */
export type ConstraintBase =
  | { type: 'dns' | 'email' | 'uri'; value: string }
  | { type: 'ip'; addr: Buffer; mask: Buffer }
  | { type: 'dirName'; rdns: Rdn[] };

/** One GeneralSubtree. `unusable`: minimum/maximum present (RFC 5280: MUST be 0 / absent); names of its type are then refused. */
export interface Subtree {
  base: ConstraintBase;
  /** Display form, e.g. "example.com", "10.0.0.0/8", "O=Example". */
  text: string;
  unusable?: string;
}

/** A decoded NameConstraints extension. Subtrees of other forms (otherName, x400Address, …) are dropped: Trellis issues no such names. */
export interface NameConstraints {
  permitted: Subtree[];
  excluded: Subtree[];
}

/** A name of a certificate that constraints apply to. */
export type ConstrainedName =
  | { type: 'dns' | 'email' | 'uri'; value: string; from: string }
  | { type: 'ip'; value: string; addr: Buffer; from: string }
  | { type: 'dirName'; value: string; rdns: Rdn[]; from: string };

/** A CA whose certificate carries name constraints, named for messages. */
export interface ConstrainingCa {
  /** The CA's subject, e.g. "CN=Issuing CA, O=Example". */
  name: string;
  constraints: NameConstraints;
}

/** Why a name is refused. */
export interface NameConstraintViolation {
  name: ConstrainedName;
  ca: string;
  detail: string;
}

// ---------------------------------------------------------------- decoding

const malformed = (what: string) => new PkiError('malformed', `malformed nameConstraints: ${what}`);

/** RFC 5280 §7.1 / RFC 4518 (simplified): trim, fold inner white space, ignore case. */
const foldCase = (s: string): string => s.trim().replace(/\s+/g, ' ').toLowerCase();

function readAtvValue(t: Tlv): string {
  try {
    return foldCase(readString(t));
  } catch {
    // A string type we do not decode compares by its encoding.
    return `#${t.tag.toString(16)}:${value(t).toString('hex')}`;
  }
}

/** Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF AttributeTypeAndValue), kept as RDNs. */
function readRdns(nameT: Tlv): Rdn[] {
  expectTag(nameT, Tag.SEQUENCE, 'Name');
  return children(nameT).map((rdn) =>
    children(expectTag(rdn, Tag.SET, 'RelativeDistinguishedName')).map((atv) => {
      const [type, val, extra] = children(expectTag(atv, Tag.SEQUENCE, 'AttributeTypeAndValue'));
      if (!type || !val || extra) throw malformed('AttributeTypeAndValue');
      return { oid: readOid(type), value: readAtvValue(val) };
    }),
  );
}

const latin1 = (t: Tlv) => value(t).toString('latin1');

function maskBits(mask: Buffer): number | null {
  let bits = 0;
  let ended = false;
  for (const byte of mask) {
    for (let b = 7; b >= 0; b--) {
      if (byte & (1 << b)) {
        if (ended) return null;
        bits++;
      } else ended = true;
    }
  }
  return bits;
}

// GeneralSubtree ::= SEQUENCE { base GeneralName, minimum [0] BaseDistance DEFAULT 0, maximum [1] BaseDistance OPTIONAL }
function readSubtree(t: Tlv): Subtree | null {
  const [base, ...rest] = children(expectTag(t, Tag.SEQUENCE, 'GeneralSubtree'));
  if (!base) throw malformed('GeneralSubtree without a base');
  let unusable: string | undefined;
  for (const r of rest) {
    if (r.tag === 0x80) {
      // Implicitly tagged INTEGER: read its contents as one.
      if (readSmallInt({ ...r, tag: Tag.INTEGER }) !== 0) unusable = 'minimum other than 0';
    } else if (r.tag === 0x81) unusable = 'maximum present';
    else throw malformed(`GeneralSubtree field 0x${r.tag.toString(16)}`);
  }
  const withUnusable = (s: Subtree): Subtree => (unusable ? { ...s, unusable: `${unusable}, which RFC 5280 forbids` } : s);
  switch (base.tag) {
    case 0x81: // rfc822Name
      return withUnusable({ base: { type: 'email', value: latin1(base) }, text: latin1(base) });
    case 0x82: // dNSName
      return withUnusable({ base: { type: 'dns', value: latin1(base) }, text: latin1(base) });
    case 0x86: // uniformResourceIdentifier
      return withUnusable({ base: { type: 'uri', value: latin1(base) }, text: latin1(base) });
    case 0x87: {
      // iPAddress: address then mask, 8 octets for IPv4, 32 for IPv6 (§4.2.1.10).
      const v = value(base);
      if (v.length !== 8 && v.length !== 32) throw malformed(`iPAddress constraint of ${v.length} octets (need 8 or 32)`);
      const addr = v.subarray(0, v.length / 2);
      const mask = v.subarray(v.length / 2);
      const bits = maskBits(mask);
      const text = `${bytesToIp(addr)}/${bits ?? `mask ${mask.toString('hex')}`}`;
      return withUnusable({ base: { type: 'ip', addr, mask }, text, ...(bits === null ? { unusable: 'mask is not a prefix' } : {}) });
    }
    case 0xa4: {
      // directoryName [4] is EXPLICIT (a CHOICE): the Name is inside.
      const [nameT] = children(base);
      if (!nameT) throw malformed('empty directoryName');
      return withUnusable({ base: { type: 'dirName', rdns: readRdns(nameT) }, text: formatName(parseName(nameT)) || '(empty name)' });
    }
    default:
      return null;
  }
}

// NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees OPTIONAL, excludedSubtrees [1] GeneralSubtrees OPTIONAL }
/** Decodes a NameConstraints extension value; malformed DER is a `malformed` PkiError. */
export function decodeNameConstraints(valueDer: Buffer): NameConstraints {
  const out: NameConstraints = { permitted: [], excluded: [] };
  for (const part of children(readOne(valueDer, Tag.SEQUENCE))) {
    const list = part.tag === 0xa0 ? out.permitted : part.tag === 0xa1 ? out.excluded : null;
    if (!list) throw malformed(`unexpected field 0x${part.tag.toString(16)}`);
    for (const s of children(part)) {
      const subtree = readSubtree(s);
      if (subtree) list.push(subtree);
    }
  }
  return out;
}

const constrainingCache = new WeakMap<ParsedCertificate, ConstrainingCa | null>();

/**
 * The name constraints a CA certificate imposes, or null when it has none.
 * Cached per parsed certificate: a loaded issuer decodes its chain once.
 */
export function constrainingCaOf(cert: ParsedCertificate): ConstrainingCa | null {
  let c = constrainingCache.get(cert);
  if (c === undefined) {
    const ext = findExtension(cert, OID.nameConstraints);
    c = ext ? { name: formatName(cert.subject) || '(empty subject)', constraints: decodeNameConstraints(ext.valueDer) } : null;
    constrainingCache.set(cert, c);
  }
  return c;
}

// ---------------------------------------------------------------- the names of a certificate

/**
 * OpenSSL's test for a commonName that is a host name (`cn2dnsid`): letters,
 * digits, '_', '-' and '.', at least one inner dot, no dot or hyphen at either
 * end or next to a dot. A one-label CN is not treated as a host name.
 */
const hostLikeCn = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]|(?<![.-])\.(?![.-]))*[A-Za-z0-9_]$/;
const looksLikeHost = (cn: string): boolean => hostLikeCn.test(cn) && cn.includes('.');

/**
 * The names of a certificate that name constraints apply to (RFC 5280
 * §4.2.1.10): the subject as a directoryName (when not empty), each subject
 * emailAddress attribute as an rfc822Name, each subjectAltName, and, for an
 * end-entity certificate without a dNSName SAN, each commonName that looks
 * like a host name, as a dNSName. The last is what browsers and OpenSSL
 * (`NAME_CONSTRAINTS_check_CN`) do for legacy certificates; RFC 5280 does
 * not say so, but a relying party that does it would reject the leaf.
 */
export function constrainedNames(subjectDer: Buffer, sans: readonly ConstrainedName[], endEntity: boolean): ConstrainedName[] {
  const names: ConstrainedName[] = [];
  const subjectT = readOne(subjectDer, Tag.SEQUENCE);
  const rdns = readRdns(subjectT);
  if (rdns.length) names.push({ type: 'dirName', value: formatName(parseName(subjectT)), rdns, from: 'subject' });
  const entries = parseName(subjectT);
  for (const e of entries) if (e.type === 'emailAddress') names.push({ type: 'email', value: e.value, from: 'subject emailAddress' });
  names.push(...sans);
  if (endEntity && !sans.some((s) => s.type === 'dns')) {
    for (const e of entries) if (e.type === 'CN' && looksLikeHost(e.value)) names.push({ type: 'dns', value: e.value, from: 'subject commonName' });
  }
  return names;
}

/** Request SANs (already validated) as constrained names. */
export function sanNames(sans: readonly GeneralName[]): ConstrainedName[] {
  const out: ConstrainedName[] = [];
  for (const s of sans) {
    if (s.type === 'ip') {
      const addr = ipToBytes(s.value);
      if (addr) out.push({ type: 'ip', value: s.value, addr, from: 'subjectAltName' });
    } else if (s.type !== 'other') out.push({ type: s.type, value: s.value, from: 'subjectAltName' });
  }
  return out;
}

/** The subjectAltName extension value of a certificate as constrained names (directoryName SANs included). */
export function sanNamesOfExtension(valueDer: Buffer): ConstrainedName[] {
  const out: ConstrainedName[] = [];
  for (const g of children(readOne(valueDer, Tag.SEQUENCE))) {
    switch (g.tag) {
      case 0x81:
        out.push({ type: 'email', value: latin1(g), from: 'subjectAltName' });
        break;
      case 0x82:
        out.push({ type: 'dns', value: latin1(g), from: 'subjectAltName' });
        break;
      case 0x86:
        out.push({ type: 'uri', value: latin1(g), from: 'subjectAltName' });
        break;
      case 0x87: {
        const addr = value(g);
        out.push({ type: 'ip', value: bytesToIp(addr) ?? `0x${addr.toString('hex')}`, addr, from: 'subjectAltName' });
        break;
      }
      case 0xa4: {
        const [nameT] = children(g);
        if (nameT) out.push({ type: 'dirName', value: formatName(parseName(nameT)), rdns: readRdns(nameT), from: 'subjectAltName' });
        break;
      }
      default:
        // otherName, x400Address, ediPartyName, registeredID: Trellis issues none (a lint refuses them).
        break;
    }
  }
  return out;
}

/** The constrained names of a parsed certificate (for lints over the TBS about to be signed). */
export function constrainedNamesOfCertificate(cert: ParsedCertificate): ConstrainedName[] {
  const san = findExtension(cert, OID.subjectAltName);
  const bc = findExtension(cert, OID.basicConstraints);
  const endEntity = !bc || !decodeBasicConstraints(bc.valueDer).ca;
  return constrainedNames(cert.subjectDer, san ? sanNamesOfExtension(san.valueDer) : [], endEntity);
}

// ---------------------------------------------------------------- matching

/**
 * dNSName (§4.2.1.10): the base and every name made by adding labels on the
 * left. A leading dot ("`.example.com`", not in RFC 5280 for dNSName but
 * common, and read so by OpenSSL and Go) means the names below only. An empty
 * base matches every name. ASCII case is ignored.
 */
export function dnsMatches(name: string, base: string): boolean {
  const n = name.toLowerCase();
  const b = base.toLowerCase();
  if (b === '') return true;
  if (b.startsWith('.')) return n.length > b.length && n.endsWith(b);
  return n === b || n.endsWith(`.${b}`);
}

/**
 * True when a wildcard name ("*.example.com") can stand for a name inside
 * the subtree: the subtree itself is one label below the wildcard's domain.
 * Only excluded subtrees need it: a wildcard is inside a permitted subtree
 * only if all of its names are, which {@link dnsMatches} already decides
 * ("*" is one more label). OpenSSL compares strings only and would accept
 * "*.example.com" under an excluded "bad.example.com"; Trellis refuses it.
 */
function wildcardReaches(name: string, base: string): boolean {
  if (!name.startsWith('*.')) return false;
  const domain = name.slice(2).toLowerCase();
  const b = base.toLowerCase();
  if (b.startsWith('.') || !b.endsWith(`.${domain}`)) return false;
  return !b.slice(0, -(domain.length + 1)).includes('.');
}

/**
 * rfc822Name (§4.2.1.10): a mailbox ("user@host": local part exact, host
 * ignoring case, §7.5), a host ("host": every mailbox there), or a domain
 * (".example.com": every host below it, not the domain itself).
 */
export function emailMatches(address: string, base: string): boolean {
  const at = address.lastIndexOf('@');
  if (at < 1) return false;
  const local = address.slice(0, at);
  const host = address.slice(at + 1).toLowerCase();
  const bAt = base.lastIndexOf('@');
  if (bAt >= 0) return local === base.slice(0, bAt) && host === base.slice(bAt + 1).toLowerCase();
  const b = base.toLowerCase();
  if (b.startsWith('.')) return host.length > b.length && host.endsWith(b);
  return host === b;
}

/** The host of a URI with an authority ("scheme://[user@]host[:port]/…"), lower case; null when it has none or it is an IP literal. */
export function uriHost(uri: string): string | null {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(uri);
  if (!m) return null;
  let auth = m[1]!;
  const at = auth.lastIndexOf('@');
  if (at >= 0) auth = auth.slice(at + 1);
  if (auth.startsWith('[')) return null;
  const host = auth.replace(/:\d*$/, '').replace(/\.$/, '').toLowerCase();
  if (!host || isIP(host)) return null;
  return host;
}

/**
 * uniformResourceIdentifier (§4.2.1.10): the constraint applies to the host
 * part; "host.example.com" is that host only, ".example.com" every host below.
 */
export function uriHostMatches(host: string, base: string): boolean {
  const b = base.toLowerCase();
  if (b.startsWith('.')) return host.length > b.length && host.endsWith(b);
  return host === b;
}

/** iPAddress (§4.2.1.10): same family (4 or 16 octets) and equal under the mask. A v4 base never matches a v6 address. */
export function ipMatches(addr: Buffer, base: { addr: Buffer; mask: Buffer }): boolean {
  if (addr.length !== base.addr.length) return false;
  for (let i = 0; i < addr.length; i++) if ((addr[i]! & base.mask[i]!) !== (base.addr[i]! & base.mask[i]!)) return false;
  return true;
}

const sameRdn = (a: Rdn, b: Rdn): boolean => a.length === b.length && a.every((x) => b.some((y) => y.oid === x.oid && y.value === x.value));

/** directoryName (§4.2.1.10, §7.1): the base's RDNs are the first RDNs of the name. */
export function dirNameMatches(rdns: readonly Rdn[], base: readonly Rdn[]): boolean {
  if (base.length > rdns.length) return false;
  return base.every((rdn, i) => sameRdn(rdns[i]!, rdn));
}

/** Whether `name` is inside `subtree`; for an excluded subtree, also whether a wildcard can reach into it. */
function within(name: ConstrainedName, subtree: Subtree, excluded: boolean): boolean {
  const b = subtree.base;
  switch (name.type) {
    case 'dns':
      return b.type === 'dns' && (dnsMatches(name.value, b.value) || (excluded && wildcardReaches(name.value, b.value)));
    case 'email':
      return b.type === 'email' && emailMatches(name.value, b.value);
    case 'uri': {
      if (b.type !== 'uri') return false;
      const host = uriHost(name.value);
      return host !== null && uriHostMatches(host, b.value);
    }
    case 'ip':
      return b.type === 'ip' && ipMatches(name.addr, b);
    case 'dirName':
      return b.type === 'dirName' && dirNameMatches(name.rdns, b.rdns);
  }
}

const describe = (n: ConstrainedName) => `${constrainedTypeLabel[n.type]} "${n.value}"${n.from === 'subjectAltName' ? '' : ` (${n.from})`}`;

/**
 * Checks one name against one CA's constraints: an excluded subtree that
 * holds it refuses it whatever is permitted; permitted subtrees apply per
 * name form (a form with none is not restricted by them).
 */
export function violationOf(name: ConstrainedName, ca: ConstrainingCa): NameConstraintViolation | null {
  const { permitted, excluded } = ca.constraints;
  const refuse = (detail: string): NameConstraintViolation => ({ name, ca: ca.name, detail: `${describe(name)} ${detail} of CA "${ca.name}" (RFC 5280 §4.2.1.10)` });
  const ofType = (s: Subtree) => s.base.type === name.type;
  for (const s of [...permitted, ...excluded]) {
    if (ofType(s) && s.unusable) return refuse(`cannot be checked against the ${constrainedTypeLabel[name.type]} constraint ${s.text} (${s.unusable})`);
  }
  if (name.type === 'uri' && [...permitted, ...excluded].some(ofType) && uriHost(name.value) === null) {
    return refuse('has no host name to check against the uniformResourceIdentifier constraints');
  }
  for (const s of excluded) if (ofType(s) && within(name, s, true)) return refuse(`is in the excluded ${constrainedTypeLabel[name.type]} subtree ${s.text}`);
  const allowed = permitted.filter(ofType);
  if (allowed.length && !allowed.some((s) => within(name, s, false))) {
    return refuse(`is not within the permitted ${constrainedTypeLabel[name.type]} subtrees (${allowed.map((s) => s.text).join(', ')})`);
  }
  return null;
}

/** The first name refused by any of the CAs (issuing CA first, root last), or null. */
export function findNameConstraintViolation(names: readonly ConstrainedName[], cas: readonly ConstrainingCa[]): NameConstraintViolation | null {
  for (const ca of cas) {
    for (const n of names) {
      const v = violationOf(n, ca);
      if (v) return v;
    }
  }
  return null;
}
