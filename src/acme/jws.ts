/**
 * JWS for ACME requests (RFC 8555 §6.2, RFC 7515): the flattened JSON
 * serialization, the protected-header rules, signature verification with
 * node:crypto, and the keyChange inner JWS (RFC 8555 §7.3.5). The external
 * account binding, the other inner JWS, is in `eab.ts`.
 *
 * A request goes: parseJws → checkRequestHeader (before any lookup) → the
 * key (importJwk for "jwk", the account's stored key for "kid") → verifyJws
 * → only then the nonce is redeemed (acme/pipeline.ts).
 */
import { isUtf8 } from 'node:buffer';
import { constants, verify, type KeyObject } from 'node:crypto';
import { PkiError } from '../errors/pki-error.js';
import { describeKey, keyLabel, type PublicKeyInfo } from '../pki/public-key.js';
import { canonicalJwk, decodeBase64url, importJwk, type ImportedJwk } from './jwk.js';

/**
 * The JWS algorithms ACME requests may use. RFC 8555 §6.2: servers MUST
 * support ES256 and SHOULD support EdDSA (Ed25519); RS256 and ES384 are what
 * other common clients send.
 */
export const supportedAlgorithms = ['ES256', 'ES384', 'RS256', 'EdDSA'] as const;

/** One of {@link supportedAlgorithms}. */
export type SupportedAlgorithm = (typeof supportedAlgorithms)[number];

/**
 * The protected header members ACME uses (RFC 8555 §6.2, §6.4, §6.5). Other
 * members are ignored (RFC 7515 §4: unknown parameters that are not in "crit").
 */
export interface ProtectedHeader {
  alg: string;
  /** Required in every ACME JWS (RFC 8555 §6.4), inner ones included. */
  url: string;
  /** Required on outer requests (§6.5), forbidden in inner JWSs (§7.3.4, §7.3.5). */
  nonce?: string;
  /** Exactly one of jwk and kid is present (§6.2). */
  jwk?: Record<string, unknown>;
  kid?: string;
}

/** A parsed RFC 7515 §7.2.2 flattened JWS. Nothing is verified yet. */
export interface FlattenedJws {
  /** The members as sent; the signing input is ASCII(protectedB64 + "." + payloadB64). */
  protectedB64: string;
  payloadB64: string;
  signatureB64: string;
  header: ProtectedHeader;
  /** Decoded payload bytes; empty for POST-as-GET (payload "", RFC 8555 §6.3). */
  payload: Buffer;
  /** Decoded signature bytes. */
  signature: Buffer;
}

/** How the outer JWS names its key (RFC 8555 §6.2). */
export type KeyReference = { kind: 'jwk'; jwk: Record<string, unknown> } | { kind: 'kid'; kid: string };

/** A verified keyChange request (RFC 8555 §7.3.5). */
export interface KeyChange {
  /** The new account key, from the inner JWS's "jwk", which signed it. */
  newKey: ImportedJwk;
  /** The keyChange object's "account": equal to the outer "kid". */
  account: string;
  /** The keyChange object's "oldKey": the same key as the account's current one. */
  oldKey: Record<string, unknown>;
}

const flattenedMembers = new Set(['protected', 'payload', 'signature']);

// RFC 7518 §3.4: R || S, each the full size of the curve order.
const ecdsa = {
  ES256: { curve: 'P-256', hash: 'sha256', signatureOctets: 64 },
  ES384: { curve: 'P-384', hash: 'sha384', signatureOctets: 96 },
} as const;

/**
 * Parses an RFC 7515 §7.2.2 flattened JWS from the already JSON-parsed body.
 * Refused, all as `malformed`: not an object; the general serialization
 * ("signatures"); an unprotected "header" (RFC 8555 §6.2); any other
 * top-level member; strict base64url violations (padding, '+/', non-canonical
 * bits); a protected header that is not a UTF-8 JSON object; "alg" or "url"
 * missing or not strings; "crit" present (we implement no extension, RFC 7515
 * §4.1.11); "nonce", "kid" or "jwk" of the wrong type; both or neither of
 * "jwk" and "kid". The algorithm is not checked here (inner EAB JWSs use
 * HMAC): see {@link checkRequestHeader} and {@link verifyJws}.
 */
export function parseJws(body: unknown): FlattenedJws {
  if (!isJsonObject(body)) throw malformed('the request body is not a JSON object (a flattened JWS, RFC 7515 §7.2.2)');
  for (const name of Object.keys(body)) {
    if (flattenedMembers.has(name)) continue;
    if (name === 'signatures') throw malformed('the general JWS JSON serialization is not accepted; use the flattened one (RFC 8555 §6.2)');
    if (name === 'header') throw malformed('an unprotected JWS "header" is not allowed (RFC 8555 §6.2)');
    throw malformed(`unknown JWS member ${JSON.stringify(name.slice(0, 32))} (RFC 7515 §7.2.2)`);
  }
  const protectedB64 = stringMember(body, 'protected');
  const payloadB64 = stringMember(body, 'payload');
  const signatureB64 = stringMember(body, 'signature');
  if (protectedB64 === '') throw malformed('the JWS "protected" header is empty (RFC 8555 §6.2)');
  // An empty signature is left to verifyJws: it is what alg "none" sends
  // (RFC 7518 §3.6), which deserves badSignatureAlgorithm, and no supported
  // algorithm's length check passes it.
  const headerBytes = decodeBase64url(protectedB64, 'JWS "protected"');
  const payload = decodeBase64url(payloadB64, 'JWS "payload"');
  const signature = decodeBase64url(signatureB64, 'JWS "signature"');
  return { protectedB64, payloadB64, signatureB64, header: parseHeader(headerBytes), payload, signature };
}

/** Throws `badSignatureAlgorithm` (listing {@link supportedAlgorithms}, RFC 8555 §6.2) unless `alg` is supported; "none" and MACs never are. */
export function checkAlgorithm(alg: string): asserts alg is SupportedAlgorithm {
  if ((supportedAlgorithms as readonly string[]).includes(alg)) return;
  const why =
    alg === 'none' ? '"none" is never accepted (RFC 8555 §6.2)'
    : /^HS\d+$/.test(alg) ? `${alg} is a MAC, not a signature; MACs are only for the external account binding (RFC 8555 §6.2)`
    : `${JSON.stringify(alg.slice(0, 32))} is not supported`;
  throw new PkiError('badSignatureAlgorithm', `JWS alg ${why}; use one of ${supportedAlgorithms.join(', ')}`, { extra: { algorithms: [...supportedAlgorithms] } });
}

/**
 * The RFC 8555 header rules for the outer JWS of a request, to apply right
 * after {@link parseJws} and before any lookup: a supported alg
 * (`badSignatureAlgorithm`), "url" equal to the URL the request was sent to
 * (`unauthorized`, §6.4), a "nonce" (`badNonce`, §6.5; checking its value is
 * the nonce module's job), and the key reference this endpoint takes
 * (`malformed`, §6.2): "jwk" for newAccount, "kid" for everything signed by
 * an account, either for revokeCert (§7.6).
 */
export function checkRequestHeader(header: ProtectedHeader, expected: { url: string; key: 'jwk' | 'kid' | 'either' }): KeyReference & { nonce: string } {
  checkAlgorithm(header.alg);
  if (header.url !== expected.url) throw new PkiError('unauthorized', 'the JWS "url" is not the URL this request was sent to (RFC 8555 §6.4)');
  if (header.nonce === undefined) throw new PkiError('badNonce', 'the JWS protected header has no "nonce" (RFC 8555 §6.5)');
  if (header.jwk !== undefined) {
    if (expected.key === 'kid') throw malformed('this request must be signed by an account: use "kid", not "jwk" (RFC 8555 §6.2)');
    return { kind: 'jwk', jwk: header.jwk, nonce: header.nonce };
  }
  if (expected.key === 'jwk') throw malformed('this request must carry its key in "jwk", not "kid" (RFC 8555 §6.2)');
  return { kind: 'kid', kid: header.kid!, nonce: header.nonce };
}

/**
 * Verifies the signature over ASCII(protectedB64 + "." + payloadB64) with
 * `key`: false when it does not verify. The alg must be supported and fit the
 * key (ES256: P-256, ES384: P-384, RS256: RSA, EdDSA: Ed25519), else
 * `badSignatureAlgorithm`; a signature of the wrong length for the key (e.g. a
 * DER-encoded ECDSA signature where RFC 7518 §3.4 wants R || S) → `malformed`.
 */
export function verifyJws(jws: FlattenedJws, key: KeyObject): boolean {
  const alg = jws.header.alg;
  checkAlgorithm(alg);
  const info = describeKey(key);
  // The members were checked to be base64url, so latin1 is their ASCII.
  const data = Buffer.from(`${jws.protectedB64}.${jws.payloadB64}`, 'latin1');
  switch (alg) {
    case 'ES256':
    case 'ES384': {
      const { curve, hash, signatureOctets } = ecdsa[alg];
      if (info.kind !== 'ec' || info.curve !== curve) throw keyMismatch(alg, `an ECDSA ${curve}`, info);
      checkSignatureLength(jws, signatureOctets, `${alg} signatures are R || S (RFC 7518 §3.4), not DER`);
      return verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, jws.signature);
    }
    case 'RS256': {
      if (info.kind !== 'rsa') throw keyMismatch(alg, 'an RSA', info);
      // RFC 8017 §8.2.2 step 1: the signature has exactly the modulus's length.
      checkSignatureLength(jws, Math.ceil(info.bits / 8), 'RSASSA-PKCS1-v1_5 signatures have the length of the modulus (RFC 8017 §8.2.2)');
      return verify('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }, jws.signature);
    }
    case 'EdDSA': {
      if (info.kind !== 'ed25519') throw keyMismatch(alg, 'an Ed25519', info);
      checkSignatureLength(jws, 64, 'Ed25519 signatures are 64 octets (RFC 8032 §5.1.6)');
      // RFC 8037 §3.1: EdDSA signs the message itself, no prehash.
      return verify(null, data, key, jws.signature);
    }
  }
}

/**
 * Decodes a JWS payload as a JSON value (UTF-8, RFC 8259); `malformed` when it
 * is empty (POST-as-GET), not UTF-8 or not JSON. `what` names it in the detail.
 */
export function parsePayloadJson(jws: FlattenedJws, what: string): unknown {
  if (jws.payload.length === 0) throw malformed(`${what} has an empty payload; a JSON object was expected`);
  return parseJsonBytes(jws.payload, `${what} payload`);
}

/**
 * Checks the inner JWS of a keyChange request (RFC 8555 §7.3.5, steps 2-8):
 * a flattened JWS with a supported alg, the new key in "jwk", no "nonce", the
 * outer "url"; signed by that new key; its payload exactly
 * `{ account, oldKey }` with "account" equal to the outer "kid" and "oldKey"
 * the account's current key (compared in RFC 7638 canonical form).
 * Structure → `malformed`, an unsupported alg → `badSignatureAlgorithm`, the
 * new key refused → `badPublicKey`; a signature that does not verify and
 * any mismatch with the outer request → `unauthorized`. Step 9 (no account
 * already has the new key) is the caller's: it needs the store.
 */
export function parseKeyChange(inner: unknown, outer: { url: string; kid: string; accountJwkCanonical: string }): KeyChange {
  let jws: FlattenedJws;
  try {
    jws = parseJws(inner);
  } catch (err) {
    if (!(err instanceof PkiError)) throw err;
    throw new PkiError('malformed', `keyChange: the payload is not a valid inner JWS: ${err.message}`, { cause: err });
  }
  const { header } = jws;
  checkAlgorithm(header.alg);
  if (header.jwk === undefined) throw malformed('keyChange: the inner JWS must carry the new key in "jwk", not "kid" (RFC 8555 §7.3.5)');
  if (header.nonce !== undefined) throw malformed('keyChange: the inner JWS must not have a "nonce" (RFC 8555 §7.3.5)');
  if (header.url !== outer.url) throw new PkiError('unauthorized', 'keyChange: the inner JWS "url" differs from the outer one (RFC 8555 §7.3.5)');
  const newKey = importJwk(header.jwk);
  if (!verifyJws(jws, newKey.key)) throw new PkiError('unauthorized', 'keyChange: the inner JWS signature does not verify with its "jwk" (RFC 8555 §7.3.5)');
  const body = parsePayloadJson(jws, 'keyChange inner JWS');
  if (!isJsonObject(body)) throw malformed('keyChange: the inner payload is not a JSON object (RFC 8555 §7.3.5)');
  for (const name of Object.keys(body)) {
    if (name !== 'account' && name !== 'oldKey') throw malformed(`keyChange: unknown member ${JSON.stringify(name.slice(0, 32))} in the inner payload (RFC 8555 §7.3.5)`);
  }
  const { account, oldKey } = body;
  if (typeof account !== 'string') throw malformed('keyChange: "account" is missing or not a string (RFC 8555 §7.3.5)');
  if (!isJsonObject(oldKey)) throw malformed('keyChange: "oldKey" is missing or not a JWK object (RFC 8555 §7.3.5)');
  if (account !== outer.kid) throw new PkiError('unauthorized', 'keyChange: "account" is not the account that signed the request (RFC 8555 §7.3.5)');
  if (canonicalJwk(oldKey).canonicalJson !== outer.accountJwkCanonical) {
    throw new PkiError('unauthorized', 'keyChange: "oldKey" is not the current key of the account (RFC 8555 §7.3.5)');
  }
  return { newKey, account, oldKey };
}

function parseHeader(bytes: Buffer): ProtectedHeader {
  // RFC 7515 §4 allows a parser that keeps the last of duplicate names,
  // which JSON.parse does; the signature covers the bytes either way.
  const h = parseJsonBytes(bytes, 'JWS protected header');
  if (!isJsonObject(h)) throw malformed('the JWS protected header is not a JSON object (RFC 7515 §4)');
  if (Object.hasOwn(h, 'crit')) throw malformed('the JWS protected header has "crit"; no JWS extension is supported (RFC 7515 §4.1.11)');
  const { alg, url, nonce, jwk, kid } = h;
  if (typeof alg !== 'string' || alg === '') throw malformed('the JWS protected header has no "alg" string (RFC 7515 §4.1.1)');
  if (typeof url !== 'string') throw malformed('the JWS protected header has no "url" string (RFC 8555 §6.4)');
  const header: ProtectedHeader = { alg, url };
  if (nonce !== undefined) {
    if (typeof nonce !== 'string') throw malformed('the JWS "nonce" is not a string (RFC 8555 §6.5.2)');
    header.nonce = nonce;
  }
  if (jwk !== undefined && kid !== undefined) throw malformed('the JWS protected header has both "jwk" and "kid"; they are mutually exclusive (RFC 8555 §6.2)');
  if (jwk !== undefined) {
    if (!isJsonObject(jwk)) throw malformed('the JWS "jwk" is not a JSON object (RFC 7515 §4.1.3)');
    header.jwk = jwk;
  } else if (kid !== undefined) {
    if (typeof kid !== 'string' || kid === '') throw malformed('the JWS "kid" is not a non-empty string (RFC 8555 §6.2)');
    header.kid = kid;
  } else {
    throw malformed('the JWS protected header has neither "jwk" nor "kid" (RFC 8555 §6.2)');
  }
  return header;
}

function parseJsonBytes(bytes: Buffer, what: string): unknown {
  if (!isUtf8(bytes)) throw malformed(`the ${what} is not UTF-8 (RFC 7515 §5.2)`);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new PkiError('malformed', `the ${what} is not JSON`, { cause: err });
  }
}

function checkSignatureLength(jws: FlattenedJws, octets: number, rule: string): void {
  if (jws.signature.length !== octets) throw malformed(`the JWS signature has ${jws.signature.length} octets; this key needs ${octets}: ${rule}`);
}

function keyMismatch(alg: SupportedAlgorithm, needed: string, info: PublicKeyInfo): PkiError {
  return new PkiError('badSignatureAlgorithm', `JWS alg ${alg} needs ${needed} key, but the key is ${keyLabel(info)}`, { extra: { algorithms: [...supportedAlgorithms] } });
}

function stringMember(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (typeof v !== 'string') throw malformed(`the JWS "${name}" member is missing or not a string (RFC 7515 §7.2.1)`);
  return v;
}

function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function malformed(detail: string): PkiError {
  return new PkiError('malformed', detail);
}
