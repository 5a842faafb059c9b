/** IP address text ↔ the octets of an X.509 iPAddress GeneralName (RFC 5280 §4.2.1.6). */
import { isIP } from 'node:net';

/** Parses IPv4/IPv6 text into 4 or 16 octets; null if it is not an address. */
export function ipToBytes(text: string): Buffer | null {
  const kind = isIP(text);
  if (kind === 4) return Buffer.from(text.split('.').map(Number));
  if (kind !== 6) return null;
  let t = text;
  const v4 = t.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const b = Buffer.from(v4[1]!.split('.').map(Number));
    t = t.slice(0, -v4[1]!.length) + `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = t.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const tl = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Formats 4 or 16 octets as canonical text (RFC 5952 for IPv6); null for other lengths. */
export function bytesToIp(b: Uint8Array): string | null {
  if (b.length === 4) return Array.from(b).join('.');
  if (b.length !== 16) return null;
  const g = Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/**
 * True when a DNS name would be read as an IPv4 address: its last label
 * (after one trailing dot) is all digits, or "0x" and hex digits. RFC 1123
 * §2.1: a host name never has the dotted-decimal form, "since at least the
 * highest-level component label will be alphabetic"; RFC 3696 §2: top-level
 * domains are never all-numeric. The WHATWG URL host parser ("ends in a
 * number") turns such hosts into IPv4 addresses: `0x7f.1`, `127.1` and
 * `2130706433` all become 127.0.0.1 in a browser, so a certificate for one
 * of them is a certificate for an address nobody checked.
 */
export function dnsNameLooksLikeIpv4(name: string): boolean {
  const end = name.endsWith('.') ? name.length - 1 : name.length;
  const last = name.slice(name.lastIndexOf('.', end - 1) + 1, end);
  return /^[0-9]+$/.test(last) || /^0x[0-9a-f]*$/i.test(last);
}

/**
 * The unspecified address (0.0.0.0, ::, or ::ffff:0.0.0.0): "this host" as a
 * source only, never a destination (RFC 1122 §3.2.1.3, RFC 4291 §2.5.2), so
 * no certificate names it.
 */
export function isUnspecifiedIp(text: string): boolean {
  const b = ipToBytes(text);
  if (!b) return false;
  const mapped = b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  return (mapped ? b.subarray(12) : b).every((x) => x === 0);
}
