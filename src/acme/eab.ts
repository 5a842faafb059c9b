/**
 * External account binding (RFC 8555 §7.3.4): the inner JWS a newAccount
 * request carries in "externalAccountBinding", MACed with a key the operator
 * handed out (`trellis acme eab create`), binding the new account key to it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { PkiError } from '../errors/pki-error.js';
import { canonicalJwk } from './jwk.js';
import { parseJws, parsePayloadJson, type FlattenedJws } from './jws.js';

/** The MAC algorithms an external account binding may use (RFC 8555 §7.3.4, RFC 7518 §3.2). */
export const eabAlgorithms = ['HS256', 'HS384', 'HS512'] as const;

const hashes = { HS256: { hash: 'sha256', octets: 32 }, HS384: { hash: 'sha384', octets: 48 }, HS512: { hash: 'sha512', octets: 64 } } as const;

/**
 * Verifies the binding and returns its key id. It must be a flattened JWS
 * with alg HS256/HS384/HS512, "kid" = the EAB key id, "url" = the outer
 * JWS's, no "nonce", and a payload that is the outer JWS's "jwk" (compared as
 * RFC 7638 canonical public keys, so member order and optional members do
 * not matter). The MAC is compared in constant time. `lookup` returns the
 * HMAC key for a key id, or null.
 *
 * Errors: structure → `malformed`; another alg, or a key shorter than the
 * hash (RFC 7518 §3.2) → `badSignatureAlgorithm`; unknown key id →
 * `externalAccountRequired`; url mismatch, bad MAC or a payload that is
 * another key → `unauthorized`. Whether the key is already bound is the
 * caller's question (the store binds a key once).
 */
export async function verifyExternalAccountBinding(
  eab: unknown,
  outer: { url: string; accountJwkCanonical: string },
  lookup: (keyId: string) => Promise<Buffer | null>,
): Promise<string> {
  let jws: FlattenedJws;
  try {
    jws = parseJws(eab);
  } catch (err) {
    if (!(err instanceof PkiError)) throw err;
    throw new PkiError('malformed', `externalAccountBinding is not a valid JWS: ${err.message}`, { cause: err });
  }
  const { header } = jws;
  if (!isEabAlgorithm(header.alg)) {
    throw new PkiError('badSignatureAlgorithm', `externalAccountBinding alg ${JSON.stringify(header.alg.slice(0, 32))} is not a MAC; use one of ${eabAlgorithms.join(', ')} (RFC 8555 §7.3.4)`, {
      extra: { algorithms: [...eabAlgorithms] },
    });
  }
  if (header.kid === undefined) throw new PkiError('malformed', 'externalAccountBinding must name its key with "kid", not carry a "jwk" (RFC 8555 §7.3.4)');
  if (header.nonce !== undefined) throw new PkiError('malformed', 'externalAccountBinding must not have a "nonce" (RFC 8555 §7.3.4)');
  if (header.url !== outer.url) throw new PkiError('unauthorized', 'externalAccountBinding "url" differs from the newAccount request\'s (RFC 8555 §7.3.4)');
  // Structure first, so a malformed payload is reported as such whatever the key.
  const boundKey = canonicalJwk(parsePayloadJson(jws, 'externalAccountBinding'));

  const hmacKey = await lookup(header.kid);
  if (hmacKey === null) throw new PkiError('externalAccountRequired', 'externalAccountBinding names an unknown key id');
  const { hash, octets } = hashes[header.alg];
  if (hmacKey.length < octets) {
    const fit = eabAlgorithms.filter((a) => hmacKey.length >= hashes[a].octets);
    throw new PkiError('badSignatureAlgorithm', `this EAB key is ${hmacKey.length * 8} bits, too short for ${header.alg} (RFC 7518 §3.2); use ${fit.join(', ') || 'another key'}`, {
      extra: { algorithms: fit },
    });
  }
  const mac = createHmac(hash, hmacKey).update(jws.protectedB64, 'latin1').update('.', 'latin1').update(jws.payloadB64, 'latin1').digest();
  // The MAC length is public (it is the hash's); only equal lengths reach timingSafeEqual.
  if (jws.signature.length !== mac.length || !timingSafeEqual(jws.signature, mac)) {
    throw new PkiError('unauthorized', 'externalAccountBinding MAC does not verify (wrong key id or HMAC key)');
  }
  if (boundKey.canonicalJson !== outer.accountJwkCanonical) {
    throw new PkiError('unauthorized', 'externalAccountBinding binds a different key than the one in the newAccount request (RFC 8555 §7.3.4)');
  }
  return header.kid;
}

function isEabAlgorithm(alg: string): alg is (typeof eabAlgorithms)[number] {
  return (eabAlgorithms as readonly string[]).includes(alg);
}
