import { findExtension } from '../../pki/certificate.js';
import { decodeSubjectAltName } from '../../pki/extensions.js';
import { dnsNameLooksLikeIpv4, isUnspecifiedIp } from '../../pki/ip.js';
import { OID } from '../../pki/oids.js';
import type { LintRule } from '../types.js';

const sans = (cert: Parameters<LintRule['check']>[0]['cert']) => {
  const ext = findExtension(cert, OID.subjectAltName);
  return ext ? decodeSubjectAltName(ext.valueDer) : [];
};

/**
 * The last label of a dNSName is never all-numeric or 0x-hex: RFC 1123 §2.1
 * ("at least the highest-level component label will be alphabetic"),
 * RFC 3696 §2 (no all-numeric TLD). The WHATWG URL host parser reads such
 * names as IPv4 addresses (`0x7f.1`, `127.1`, `2130706433` → 127.0.0.1), so
 * a certificate for one would vouch for an address nobody validated. The
 * CA's re-check of the RA's refusal (ra/csr-request.ts, ACME newOrder).
 */
export const dnsNameNumericTld: LintRule = {
  id: 'e_dns_name_numeric_tld',
  source: 'RFC 1123 §2.1; RFC 3696 §2; WHATWG URL Standard §3.5 (host parsing: ends in a number)',
  check: ({ cert }) => {
    const bad = sans(cert).find((n) => n.type === 'dns' && dnsNameLooksLikeIpv4(n.value));
    return bad ? `dNSName "${bad.value}" ends in a numeric or hex label (an IPv4 address to URL parsers)` : null;
  },
};

/** The unspecified address (0.0.0.0, ::) is never a destination (RFC 1122 §3.2.1.3, RFC 4291 §2.5.2): no certificate names it. */
export const ipAddressUnspecified: LintRule = {
  id: 'e_ip_address_unspecified',
  source: 'RFC 1122 §3.2.1.3; RFC 4291 §2.5.2',
  check: ({ cert }) => {
    const bad = sans(cert).find((n) => n.type === 'ip' && isUnspecifiedIp(n.value));
    return bad ? `iPAddress ${bad.value} is the unspecified address` : null;
  },
};
