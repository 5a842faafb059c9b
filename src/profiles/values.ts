/**
 * Checks for the string values inside a profile: regular expressions, CIDRs,
 * OIDs and name-constraint bases. Each returns null when the value is good,
 * or the reason it is not, phrased for the operator who wrote the file.
 */
import { isIP } from 'node:net';
import { bytesToIp, ipToBytes } from '../pki/ip.js';

/**
 * A SAN or device-id pattern must compile as the RA compiles it (`new
 * RegExp(p)`, no flags) and be anchored at both ends in every top-level
 * alternative: an unanchored `example\.com` also matches
 * `example.com.attacker.test`, the classic way to mis-issue.
 */
export function patternProblem(pattern: string): string | null {
  try {
    new RegExp(pattern);
  } catch (err) {
    return `invalid regular expression: ${(err as Error).message}`;
  }
  for (const alt of topLevelAlternatives(pattern)) {
    if (!alt.startsWith('^') || !endsWithAnchor(alt)) {
      return `pattern must be anchored: start with ^ and end with $${alt === pattern ? '' : ' in every alternative (or group them: ^(a|b)$)'}`;
    }
  }
  return null;
}

/** Splits at `|` outside groups and character classes. */
function topLevelAlternatives(pattern: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let inClass = false;
  let start = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') i++;
    else if (inClass) inClass = c !== ']';
    else if (c === '[') inClass = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) {
      out.push(pattern.slice(start, i));
      start = i + 1;
    }
  }
  out.push(pattern.slice(start));
  return out;
}

/** True when the text ends with a `$` that is not escaped. */
function endsWithAnchor(text: string): boolean {
  if (!text.endsWith('$')) return false;
  let backslashes = 0;
  for (let i = text.length - 2; i >= 0 && text[i] === '\\'; i--) backslashes++;
  return backslashes % 2 === 0;
}

/**
 * `address/prefix` with an IPv4 or IPv6 address and a prefix that fits it.
 * Host bits must be zero (RFC 4632 §3.1): "10.0.0.1/8" is almost always a
 * typo, and name constraints encode the address as written (RFC 5280 §4.2.1.10).
 */
export function cidrProblem(text: string): string | null {
  const parts = text.split('/');
  const family = isIP(parts[0] ?? '');
  if (parts.length !== 2 || family === 0 || !/^(0|[1-9]\d{0,2})$/.test(parts[1]!)) {
    return `"${text}" is not a CIDR: write address/prefix, e.g. 10.0.0.0/8 or 2001:db8::/32`;
  }
  const bits = Number(parts[1]);
  const width = family === 4 ? 32 : 128;
  if (bits > width) return `"${text}": an IPv${family} prefix is at most /${width}`;
  const bytes = ipToBytes(parts[0]!)!;
  const network = Buffer.from(bytes);
  for (let b = bits; b < width; b++) network[b >> 3]! &= ~(0x80 >> (b & 7));
  if (!network.equals(bytes)) return `"${text}" has host bits set: write ${bytesToIp(network)}/${bits}`;
  return null;
}

/**
 * Dotted-decimal OID (X.660): first arc 0, 1 or 2; second arc at most 39
 * under 0 and 1; no leading zeros in any arc.
 */
export function oidProblem(text: string): string | null {
  if (!/^[0-2](\.(0|[1-9]\d*))+$/.test(text)) return `"${text}" is not a dotted-decimal OID (e.g. 1.3.6.1.4.1.99999.1)`;
  const [first, second] = text.split('.').map(Number);
  if (first! < 2 && second! > 39) return `"${text}" is not a valid OID: the second arc is at most 39 under ${first}`;
  return null;
}

// RFC 1034 §3.5 LDH labels, lower case as the RA compares names.
const label = '(?!-)[a-z0-9-]{1,63}(?<!-)';
const hostName = new RegExp(`^${label}(\\.${label})*$`);
const isHost = (text: string) => text.length <= 253 && hostName.test(text);

/**
 * dNSName base (RFC 5280 §4.2.1.10): a host name; it already covers every
 * name built by adding labels on the left, so no leading dot or wildcard.
 */
export function dnsConstraintProblem(text: string): string | null {
  if (text.startsWith('.') || text.startsWith('*')) return `"${text}": write the domain without a leading dot or wildcard; it already covers its subdomains (RFC 5280 §4.2.1.10)`;
  return isHost(text) ? null : `"${text}" is not a lower-case DNS name`;
}

/**
 * rfc822Name base (RFC 5280 §4.2.1.10): a mailbox (`user@host`), every
 * mailbox at one host (`host`), or at any host in a domain (`.domain`).
 */
export function emailConstraintProblem(text: string): string | null {
  const at = text.lastIndexOf('@');
  if (at >= 0) {
    const local = text.slice(0, at);
    return local.length > 0 && /^[\x21-\x7e]+$/.test(local) && !local.includes('@') && isHost(text.slice(at + 1)) ? null : `"${text}" is not a mailbox`;
  }
  return isHost(text.startsWith('.') ? text.slice(1) : text) ? null : `"${text}" is not a host, .domain or mailbox`;
}

/**
 * uniformResourceIdentifier base (RFC 5280 §4.2.1.10): a host (`host`) or a
 * domain (`.domain`); the constraint applies to the host part of URIs.
 */
export function uriConstraintProblem(text: string): string | null {
  return isHost(text.startsWith('.') ? text.slice(1) : text) ? null : `"${text}" is not a host or .domain (URI constraints apply to the host part)`;
}
