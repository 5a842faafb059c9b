/**
 * Account keys as JWKs (RFC 7517, RFC 7518 §6, RFC 8037 §2): strict
 * base64url, validation of the public members, the RFC 7638 canonical form and
 * thumbprint, import into a node KeyObject, and the RFC 8555 §8.1 key
 * authorization built from the thumbprint.
 *
 * Why strict: the canonical JSON is built from the client's own member
 * strings, and it is what identifies an account (thumbprint, stored JWK, EAB
 * and keyChange comparisons). Accepting only the one valid encoding of each
 * value (no padding, no '+/', zero trailing bits, full-size EC coordinates, no
 * leading zero octets in RSA integers) makes equal keys give equal text, so
 * one key can never register two accounts.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { PkiError } from '../errors/pki-error.js';

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const base64urlText = /^[A-Za-z0-9_-]*$/;

/**
 * Throws `malformed` unless `text` is base64url as RFC 7515 §2 defines it: the
 * URL-safe alphabet (RFC 4648 §5), no padding, no whitespace, and canonical
 * (the unused low bits of the last character are zero, RFC 4648 §3.5), so each
 * octet string has exactly one encoding. `what` names the value in the detail.
 */
export function checkBase64url(text: string, what: string): void {
  if (!base64urlText.test(text)) {
    const why = text.includes('=') ? 'padding' : /[+/]/.test(text) ? "'+' or '/' (base64, not base64url)" : 'characters outside the base64url alphabet';
    throw new PkiError('malformed', `${what} is not base64url: it contains ${why} (RFC 7515 §2)`);
  }
  const rem = text.length % 4;
  if (rem === 1) throw new PkiError('malformed', `${what} is not base64url: impossible length ${text.length} (RFC 7515 §2)`);
  // 2 trailing characters carry 1 octet (4 spare bits), 3 carry 2 (2 spare bits).
  const spare = rem === 2 ? 0x0f : rem === 3 ? 0x03 : 0;
  if (spare !== 0 && (alphabet.indexOf(text[text.length - 1]!) & spare) !== 0) {
    throw new PkiError('malformed', `${what} is not canonical base64url: the unused bits of its last character are not zero (RFC 4648 §3.5)`);
  }
}

/** Decodes strict base64url (see {@link checkBase64url}); `malformed` otherwise. The empty string gives an empty buffer. */
export function decodeBase64url(text: string, what: string): Buffer {
  checkBase64url(text, what);
  return Buffer.from(text, 'base64url');
}

/**
 * A public key in RFC 7638 §3.2 canonical form: only the required members,
 * keys in lexicographic order (the property order of these literals).
 */
export type PublicJwk =
  | { crv: 'P-256' | 'P-384'; kty: 'EC'; x: string; y: string }
  | { e: string; kty: 'RSA'; n: string }
  | { crv: 'Ed25519'; kty: 'OKP'; x: string };

/** A validated public JWK: the canonical members and their JSON text (what the store keeps, `AcmeAccountRecord.jwk`). */
export interface CanonicalJwk {
  publicJwk: PublicJwk;
  /** RFC 7638 §3 JSON: no whitespace, required members only, sorted. */
  canonicalJson: string;
}

/** What {@link importJwk} returns. */
export interface ImportedJwk {
  key: KeyObject;
  /** RFC 7638 thumbprint: base64url SHA-256 of {@link canonicalJson}. */
  thumbprint: string;
  canonicalJson: string;
}

// RFC 7518 §6.2.2, §6.3.2, §6.4.1 and RFC 8037 §2: members that carry private
// or symmetric key material. An account key sent with them has leaked.
const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

// RFC 7518 §6.2.1.2-3: coordinates are the full size of the curve's field;
// as canonical base64url that is a fixed number of characters.
const ecCurves = { 'P-256': { coordinateChars: 43, alg: 'ES256' }, 'P-384': { coordinateChars: 64, alg: 'ES384' } } as const;
const ed25519Chars = 43; // RFC 8032 §5.1.5: 32-octet public key

// CA/B BR §6.1.5 (at least 2048 bits, as ca/policy.ts); 8192 bounds what one
// request's verification can cost, since account keys are checked on every POST.
const rsaMinBits = 2048;
const rsaMaxBits = 8192;
// CA/B BR §6.1.6 (as ca/policy.ts): an odd public exponent in [2^16+1, 2^256-1].
const rsaMinExponent = 65537n;
const rsaExponentLimit = 1n << 256n;

/**
 * Validates a public JWK and returns its RFC 7638 canonical form, without
 * importing the key (enough to compare keys or compute a thumbprint).
 * Private members ('d', 'p', ..., 'k'), missing or non-string members and bad
 * encodings → `malformed`; an unsupported kty or crv, an RSA modulus outside
 * 2048..8192 bits or an exponent that is even or outside [65537, 2^256) →
 * `badPublicKey`. An optional "alg" member must name the one algorithm this
 * key can sign with (RFC 7517 §4.4). Other optional members are ignored.
 */
export function canonicalJwk(jwk: unknown): CanonicalJwk {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw new PkiError('malformed', 'JWK is not a JSON object (RFC 7517 §4)');
  const members = jwk as Record<string, unknown>;
  for (const name of privateMembers) {
    if (Object.hasOwn(members, name)) throw new PkiError('malformed', `JWK contains the private key member "${name}"; send the public key only`);
  }
  const kty = member(members, 'kty');
  let publicJwk: PublicJwk;
  let alg: string;
  switch (kty) {
    case 'EC': {
      const crv = member(members, 'crv');
      if (crv !== 'P-256' && crv !== 'P-384') throw new PkiError('badPublicKey', `EC curve ${quote(crv)} is not supported; use P-256 or P-384`);
      const { coordinateChars } = ecCurves[crv];
      const x = coordinate(members, 'x', crv, coordinateChars);
      const y = coordinate(members, 'y', crv, coordinateChars);
      publicJwk = { crv, kty, x, y };
      alg = ecCurves[crv].alg;
      break;
    }
    case 'RSA': {
      const n = unsignedInteger(members, 'n');
      const e = unsignedInteger(members, 'e');
      const bits = (n.bytes.length - 1) * 8 + (32 - Math.clz32(n.bytes[0]!));
      if (bits < rsaMinBits || bits > rsaMaxBits) throw new PkiError('badPublicKey', `RSA ${bits} key refused: the modulus must have ${rsaMinBits} to ${rsaMaxBits} bits`);
      // Bounded first: at most 32 octets reach BigInt, anything longer is too large anyway.
      const exponent = e.bytes.length > 32 ? rsaExponentLimit : BigInt(`0x${e.bytes.toString('hex')}`);
      if (exponent % 2n === 0n || exponent < rsaMinExponent || exponent >= rsaExponentLimit) {
        throw new PkiError('badPublicKey', `RSA public exponent refused: it must be odd and in [65537, 2^256) (CA/B BR §6.1.6)`);
      }
      publicJwk = { e: e.text, kty, n: n.text };
      alg = 'RS256';
      break;
    }
    case 'OKP': {
      const crv = member(members, 'crv');
      if (crv !== 'Ed25519') throw new PkiError('badPublicKey', `OKP curve ${quote(crv)} is not supported; use Ed25519 (RFC 8037)`);
      publicJwk = { crv, kty, x: coordinate(members, 'x', crv, ed25519Chars) };
      alg = 'EdDSA';
      break;
    }
    default:
      throw new PkiError('badPublicKey', `JWK key type ${quote(kty)} is not supported; use EC, RSA or OKP`);
  }
  if (Object.hasOwn(members, 'alg') && members.alg !== alg) {
    throw new PkiError('malformed', `JWK "alg" ${quote(members.alg)} does not fit this ${kty} key, which signs with ${alg} (RFC 7517 §4.4)`);
  }
  return { publicJwk, canonicalJson: JSON.stringify(publicJwk) };
}

/** RFC 7638 thumbprint (base64url SHA-256 of the canonical JSON) of a public JWK; validates it as {@link canonicalJwk} does. */
export function jwkThumbprint(jwk: unknown): string {
  return thumbprintOf(canonicalJwk(jwk).canonicalJson);
}

/**
 * Validates (see {@link canonicalJwk}) and imports a public JWK: EC P-256 or
 * P-384, RSA, or OKP Ed25519. An EC point that is not on its curve →
 * `badPublicKey` (OpenSSL checks it during the import). Only the canonical
 * members reach node's JWK importer.
 */
export function importJwk(jwk: unknown): ImportedJwk {
  const { publicJwk, canonicalJson } = canonicalJwk(jwk);
  let key: KeyObject;
  try {
    // JWK import is the cheapest path into OpenSSL for EC keys (about half the
    // cost of an SPKI, see pki/public-key.ts) and still checks the point.
    key = createPublicKey({ key: publicJwk, format: 'jwk' });
  } catch (err) {
    throw new PkiError('badPublicKey', `JWK ${publicJwk.kty} public key cannot be imported (for EC: the point is not on the curve)`, { cause: err });
  }
  return { key, thumbprint: thumbprintOf(canonicalJson), canonicalJson };
}

/** RFC 8555 §8.1 key authorization: the challenge token, ".", the account key's RFC 7638 thumbprint. */
export function keyAuthorization(token: string, thumbprint: string): string {
  return `${token}.${thumbprint}`;
}

function thumbprintOf(canonicalJson: string): string {
  // RFC 7638 §3: SHA-256 over the UTF-8 of the canonical JSON (ASCII here).
  return createHash('sha256').update(canonicalJson).digest('base64url');
}

function member(members: Record<string, unknown>, name: string): string {
  if (!Object.hasOwn(members, name)) throw new PkiError('malformed', `JWK has no "${name}" member`);
  const v = members[name];
  if (typeof v !== 'string') throw new PkiError('malformed', `JWK "${name}" is not a string`);
  return v;
}

function coordinate(members: Record<string, unknown>, name: string, crv: string, chars: number): string {
  const text = member(members, name);
  checkBase64url(text, `JWK "${name}"`);
  if (text.length !== chars) {
    throw new PkiError('malformed', `JWK "${name}" must encode exactly ${(chars * 3) >> 2} octets for ${crv} (RFC 7518 §6.2.1.2, RFC 8037 §2)`);
  }
  return text;
}

/** RFC 7518 §2 Base64urlUInt: non-empty and the minimum number of octets (no leading zero). */
function unsignedInteger(members: Record<string, unknown>, name: string): { text: string; bytes: Buffer } {
  const text = member(members, name);
  const bytes = decodeBase64url(text, `JWK "${name}"`);
  if (bytes.length === 0 || bytes[0] === 0) {
    throw new PkiError('malformed', `JWK "${name}" must be a non-zero integer in its minimum number of octets, without leading zero octets (RFC 7518 §2 Base64urlUInt)`);
  }
  return { text, bytes };
}

/** A client value for a detail: JSON-quoted and cut short. */
function quote(v: unknown): string {
  const text = typeof v === 'string' ? v : String(v);
  return JSON.stringify(text.length > 32 ? `${text.slice(0, 32)}...` : text);
}
