/** GeneralName (RFC 5280 §4.2.1.6) for the SAN types Trellis issues. */
import { checkDer, children, ctx, readOid, seq, Tag, value, type Tlv } from './der.js';
import { parseName } from './name.js';
import { bytesToIp, dnsNameLooksLikeIpv4, ipToBytes, isUnspecifiedIp } from './ip.js';
import { PkiError } from '../errors/pki-error.js';

export type SanType = 'dns' | 'ip' | 'uri' | 'email';

/** A subject alternative name. Unsupported CSR types come back as {type:'other'} so policy can name them. */
export type GeneralName = { type: SanType; value: string } | { type: 'other'; value: string };

// GeneralName ::= CHOICE { otherName [0], rfc822Name [1] IA5String, dNSName [2] IA5String,
//   x400Address [3], directoryName [4], ediPartyName [5], uniformResourceIdentifier [6] IA5String,
//   iPAddress [7] OCTET STRING, registeredID [8] OBJECT IDENTIFIER }
const otherNames: Record<number, string> = { 0: 'otherName', 3: 'x400Address', 4: 'directoryName', 5: 'ediPartyName', 8: 'registeredID' };

const isIa5 = (b: Buffer) => b.every((x) => x < 0x80);

// The identifier octet each alternative must have: IMPLICIT over a primitive type is primitive, the rest constructed.
const tagOf: Record<number, number> = { 0: 0xa0, 1: 0x81, 2: 0x82, 3: 0xa3, 4: 0xa4, 5: 0xa5, 6: 0x86, 7: 0x87, 8: 0x88 };

/** Decodes one GeneralName TLV; a tag outside the CHOICE or a form it does not allow is `malformed`. */
export function parseGeneralName(t: Tlv): GeneralName {
  const n = t.tag & 0x1f;
  if (tagOf[n] !== t.tag) throw new PkiError('malformed', `malformed DER: GeneralName with tag 0x${t.tag.toString(16)}`);
  // Alternatives Trellis does not issue are still read as DER: directoryName [4] EXPLICIT holds one Name.
  if (n === 4) {
    const inner = children(t);
    if (inner.length !== 1) throw new PkiError('malformed', 'malformed DER: directoryName must hold one Name');
    parseName(inner[0]!);
  } else if (n === 0) {
    // otherName ::= SEQUENCE { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY DEFINED BY type-id } (IMPLICIT [0])
    const f = children(t);
    if (f.length !== 2 || f[1]!.tag !== 0xa0 || children(f[1]!).length !== 1) throw new PkiError('malformed', 'malformed DER: otherName must hold a type-id and one [0] value');
    readOid(f[0]!);
    checkDer(t);
  } else if (n === 8) readOid({ ...t, tag: Tag.OID });
  else checkDer(t);
  const v = value(t);
  const text = (type: SanType): GeneralName => {
    if (!isIa5(v)) throw new PkiError('badCSR', `${type} name is not IA5String`);
    return { type, value: v.toString('latin1') };
  };
  switch (n) {
    case 1: return text('email');
    case 2: return text('dns');
    case 6: return text('uri');
    case 7: {
      const ip = bytesToIp(v);
      if (ip === null) throw new PkiError('badCSR', `iPAddress of ${v.length} octets (need 4 or 16)`);
      return { type: 'ip', value: ip };
    }
    default:
      return { type: 'other', value: otherNames[n] ?? `[${n}]` };
  }
}

/** Decodes GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName. */
export function parseGeneralNames(t: Tlv): GeneralName[] {
  return children(t).map(parseGeneralName);
}

/** Encodes one GeneralName; values must already be validated. */
export function encodeGeneralName(g: GeneralName): Buffer {
  switch (g.type) {
    case 'email': return ctx(1, false, Buffer.from(g.value, 'latin1'));
    case 'dns': return ctx(2, false, Buffer.from(g.value, 'latin1'));
    case 'uri': return ctx(6, false, Buffer.from(g.value, 'latin1'));
    case 'ip': {
      const b = ipToBytes(g.value);
      if (!b) throw new PkiError('badCSR', `not an IP address: ${g.value}`);
      return ctx(7, false, b);
    }
    case 'other':
      throw new PkiError('badCSR', `SAN type ${g.value} is not supported`);
  }
}

export const encodeGeneralNames = (names: GeneralName[]): Buffer => seq(...names.map(encodeGeneralName));

/**
 * Why no certificate may carry this name, in every profile: a DNS name
 * that reads as an IPv4 address, or the unspecified IP address; null
 * otherwise. The RA refuses such requests and a CA lint checks again.
 */
export function addressLikeName(g: GeneralName): string | null {
  if (g.type === 'dns' && dnsNameLooksLikeIpv4(g.value)) {
    return `DNS name "${g.value}" ends in a numeric or hex label, which URL parsers read as an IPv4 address (RFC 1123 §2.1, RFC 3696 §2); use an IP address SAN for addresses`;
  }
  if (g.type === 'ip' && isUnspecifiedIp(g.value)) return `IP address ${g.value} is the unspecified address, never a destination (RFC 1122 §3.2.1.3, RFC 4291 §2.5.2)`;
  return null;
}
