/**
 * Checks a validation request before anything touches the network. The RA
 * builds these from stored state, so a failure here is a caller bug, reported
 * as `malformed` rather than thrown so that one bad record cannot crash a
 * validation worker.
 */
import { bytesToIp } from '../pki/ip.js';
import { parseIpAddress } from './address-policy.js';
import { ValidationFailure } from './failure.js';
import type { ValidationChallengeType, ValidationRequest } from './types.js';

/** The identifier in the form each challenge needs it. */
export type ValidationTarget = { type: 'dns'; name: string } | { type: 'ip'; address: string; bytes: Buffer };

/** A request that passed `parseRequest`. */
export interface ParsedRequest {
  type: ValidationChallengeType;
  target: ValidationTarget;
  token: string;
  keyAuthorization: string;
}

const malformed = (detail: string) => new ValidationFailure('malformed', detail);

// RFC 8555 §8.3 / RFC 8737 §3: the token is base64url (RFC 4648 §5) without
// '=' padding and carries at least 128 bits, i.e. at least 22 characters.
const base64url = /^[A-Za-z0-9_-]+$/;
const MIN_TOKEN_CHARS = 22;

// RFC 1123 §2.1 host names (LDH labels), the only DNS names Trellis issues for.
const label = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Parses a DNS identifier: lower case, no trailing dot, LDH labels, at most 253 octets; null when it is not one. */
export function parseDnsName(value: string): string | null {
  const name = value.toLowerCase();
  if (name.length === 0 || name.length > 253 || parseIpAddress(name)) return null;
  return name.split('.').every((l) => label.test(l)) ? name : null;
}

/** Validates and normalises a request; throws a `malformed` ValidationFailure. */
export function parseRequest(req: ValidationRequest): ParsedRequest {
  if (req.type !== 'http-01' && req.type !== 'tls-alpn-01') throw malformed(`unsupported challenge type ${JSON.stringify(req.type)}`);
  const { type, value } = req.identifier;
  let target: ValidationTarget;
  if (type === 'dns') {
    const name = parseDnsName(value);
    if (!name) throw malformed(`dns identifier ${JSON.stringify(value)} is not a host name (a wildcard is validated through its base name)`);
    target = { type: 'dns', name };
  } else if (type === 'ip') {
    // RFC 8738 §3: the value is the textual form of the address, no brackets, no zone.
    const bytes = parseIpAddress(value);
    if (!bytes) throw malformed(`ip identifier ${JSON.stringify(value)} is not an IPv4 or IPv6 address`);
    target = { type: 'ip', address: bytesToIp(bytes)!, bytes };
  } else {
    throw malformed(`unsupported identifier type ${JSON.stringify(type)}`);
  }
  if (!base64url.test(req.token) || req.token.length < MIN_TOKEN_CHARS) {
    throw malformed(`token must be unpadded base64url of at least ${MIN_TOKEN_CHARS} characters (128 bits, RFC 8555 §8.3)`);
  }
  // RFC 8555 §8.1: keyAuthorization = token || '.' || base64url(Thumbprint(accountKey)).
  const [tokenPart, thumbprint, ...rest] = req.keyAuthorization.split('.');
  if (tokenPart !== req.token || !thumbprint || !base64url.test(thumbprint) || rest.length) {
    throw malformed('keyAuthorization must be the token, ".", and the base64url JWK thumbprint (RFC 8555 §8.1)');
  }
  return { type: req.type, target, token: req.token, keyAuthorization: req.keyAuthorization };
}

/**
 * The reverse-mapping DNS name of an address: `d.c.b.a.in-addr.arpa` (RFC
 * 1034 §5.2.1) or 32 reversed nibbles under `ip6.arpa` (RFC 3596 §2.5). RFC
 * 8738 §6 puts it in the SNI of tls-alpn-01 for an IP identifier, because SNI
 * cannot carry a literal address (RFC 6066 §3).
 */
export function reverseDnsName(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${[...bytes].reverse().join('.')}.in-addr.arpa`;
  if (bytes.length !== 16) throw new RangeError(`an IP address has 4 or 16 octets, not ${bytes.length}`);
  const nibbles = [...Buffer.from(bytes).toString('hex')].reverse();
  return `${nibbles.join('.')}.ip6.arpa`;
}
