/**
 * Which addresses the validator may connect to. The ACME client names the
 * target (its DNS records, its redirects), so without a guard the validator
 * is a request forger into the CA's own networks. Every address is checked
 * right before the connection to it, after each DNS answer and each redirect.
 *
 * Denied by default: the IANA special-purpose registries (RFC 6890 and the
 * later entries) minus the globally reachable anycast blocks, and for IPv6
 * everything outside global unicast 2000::/3 (RFC 4291 §2.4). Operators of a
 * private PKI open their own networks with `allow` (`trellis serve
 * --acme-allow-address`), which wins over the deny list.
 */
import { isIP } from 'node:net';
import { PkiError } from '../errors/pki-error.js';
import { bytesToIp, ipToBytes } from '../pki/ip.js';

/** A parsed CIDR block. `network` has no bits set past `prefixLength`. */
export interface Cidr {
  /** As written in the configuration. */
  readonly text: string;
  readonly family: 4 | 6;
  /** 4 or 16 octets. */
  readonly network: Buffer;
  readonly prefixLength: number;
}

/** The outcome for one address; `address` is what to connect to (an IPv4-mapped IPv6 address becomes plain IPv4). */
export type AddressDecision = { allowed: true; address: string } | { allowed: false; address: string; reason: string };

/** Decides, per address, whether the validator may connect to it. */
export interface AddressPolicy {
  check(address: string): AddressDecision;
}

/**
 * Parses IPv4 or IPv6 text to octets; null for anything else, including
 * zone indexes (`fe80::1%eth0`), which `net.isIP` accepts but which name an
 * interface rather than an address.
 */
export function parseIpAddress(text: string): Buffer | null {
  if (text.includes('%') || isIP(text) === 0) return null;
  return ipToBytes(text);
}

const invalid = (text: string, why: string) =>
  new PkiError('invalidConfig', `"${text}" is not a CIDR block (${why}); expected e.g. 10.0.0.0/8, fd00::/8 or a single address`);

/**
 * Parses `ADDRESS/PREFIX` or a bare address (a /32 or /128). Host bits past
 * the prefix are refused rather than masked: `10.0.0.1/8` is more likely a
 * typo than a wish to allow all of 10/8. Throws `invalidConfig`.
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const network = parseIpAddress(addressText);
  if (!network) throw invalid(text, `"${addressText}" is not an IP address`);
  const family = network.length === 4 ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  let prefixLength = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw invalid(text, `the prefix length must be 0 to ${max}`);
    prefixLength = Number(p);
  }
  const masked = mask(network, prefixLength);
  if (!masked.equals(network)) throw invalid(text, `bits are set past /${prefixLength}; did you mean ${bytesToIp(masked)}/${prefixLength}?`);
  return { text, family, network, prefixLength };
}

/** Parses a list of CIDRs (a configuration flag given several times); throws `invalidConfig` on the first bad one. */
export const parseCidrs = (texts: readonly string[]): Cidr[] => texts.map(parseCidr);

function mask(bytes: Buffer, prefixLength: number): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.min(8, Math.max(0, prefixLength - i * 8));
    out[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  return out;
}

/** True when `address` (4 or 16 octets) lies in `cidr`; never across families. */
export function cidrContains(cidr: Cidr, address: Uint8Array): boolean {
  if (address.length !== cidr.network.length) return false;
  return mask(Buffer.from(address), cidr.prefixLength).equals(cidr.network);
}

/** One block of the default deny list and why it is there. */
export interface DeniedRange {
  readonly cidr: Cidr;
  readonly reason: string;
}

const deny = (text: string, reason: string): DeniedRange => ({ cidr: parseCidr(text), reason });

/**
 * The default deny list, most specific first so that the reason names the
 * narrowest block. IPv6 outside 2000::/3 is denied separately (see `check`).
 */
export const deniedRanges: readonly DeniedRange[] = [
  // IPv4: IANA IPv4 Special-Purpose Address Registry (RFC 6890 §2.2.2 and updates).
  deny('0.0.0.0/8', '"this network", RFC 791 / RFC 1122 §3.2.1.3'),
  deny('10.0.0.0/8', 'private-use, RFC 1918'),
  deny('100.64.0.0/10', 'shared address space (carrier-grade NAT), RFC 6598'),
  deny('127.0.0.0/8', 'loopback, RFC 1122 §3.2.1.3'),
  deny('169.254.0.0/16', 'link-local, RFC 3927'),
  deny('172.16.0.0/12', 'private-use, RFC 1918'),
  deny('192.0.0.0/24', 'IETF protocol assignments, RFC 6890'),
  deny('192.0.2.0/24', 'documentation (TEST-NET-1), RFC 5737'),
  deny('192.88.99.0/24', 'deprecated 6to4 relay anycast, RFC 7526'),
  deny('192.168.0.0/16', 'private-use, RFC 1918'),
  deny('198.18.0.0/15', 'benchmarking, RFC 2544'),
  deny('198.51.100.0/24', 'documentation (TEST-NET-2), RFC 5737'),
  deny('203.0.113.0/24', 'documentation (TEST-NET-3), RFC 5737'),
  deny('224.0.0.0/4', 'multicast, RFC 5771'),
  deny('255.255.255.255/32', 'limited broadcast, RFC 919 / RFC 8190'),
  deny('240.0.0.0/4', 'reserved, RFC 1112 §4'),
  // IPv6: IANA IPv6 Special-Purpose Address Registry (RFC 6890 §2.2.3 and updates).
  deny('::/128', 'unspecified address, RFC 4291 §2.5.2'),
  deny('::1/128', 'loopback, RFC 4291 §2.5.3'),
  deny('64:ff9b::/96', 'IPv4/IPv6 translation (NAT64), RFC 6052'),
  deny('64:ff9b:1::/48', 'local-use IPv4/IPv6 translation, RFC 8215'),
  deny('100::/64', 'discard-only, RFC 6666'),
  deny('2001::/23', 'IETF protocol assignments (Teredo, ORCHID, benchmarking), RFC 2928'),
  deny('2001:db8::/32', 'documentation, RFC 3849'),
  deny('2002::/16', '6to4, embeds an IPv4 address, RFC 3056'),
  deny('3fff::/20', 'documentation, RFC 9637'),
  deny('fc00::/7', 'unique local, RFC 4193'),
  deny('fe80::/10', 'link-local unicast, RFC 4291 §2.5.6'),
  deny('fec0::/10', 'deprecated site-local, RFC 3879'),
  deny('ff00::/8', 'multicast, RFC 4291 §2.7'),
];

const mapped = parseCidr('::ffff:0:0/96');
const globalUnicast = parseCidr('2000::/3');

/**
 * Builds the policy: an address in an `allow` block is permitted; otherwise
 * one on the deny list is refused. An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) reaches the IPv4 host, so it is judged,
 * and connected to, as that IPv4 address. Throws `invalidConfig` for a bad CIDR.
 */
export function createAddressPolicy(allow: readonly string[] = []): AddressPolicy {
  const allowed = parseCidrs(allow);
  return {
    check(text: string): AddressDecision {
      const raw = parseIpAddress(text);
      if (!raw) return { allowed: false, address: text, reason: 'not an IP address' };
      const bytes = raw.length === 16 && cidrContains(mapped, raw) ? raw.subarray(12) : raw;
      const address = bytesToIp(bytes)!;
      if (allowed.some((c) => cidrContains(c, bytes) || cidrContains(c, raw))) return { allowed: true, address };
      const hit = deniedRanges.find((r) => cidrContains(r.cidr, bytes));
      if (hit) return { allowed: false, address, reason: `${hit.cidr.text}: ${hit.reason}` };
      if (bytes.length === 16 && !cidrContains(globalUnicast, bytes)) {
        return { allowed: false, address, reason: 'outside global unicast 2000::/3, RFC 4291 §2.4' };
      }
      return { allowed: true, address };
    },
  };
}
