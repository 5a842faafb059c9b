/**
 * ACME JWS, JWK and payload JSON under hostile input (issue 12). Whatever
 * the JSON body, parseJws, checkRequestHeader, importJwk, verifyJws,
 * parseKeyChange and the payload schemas return or throw a PkiError of a
 * client type (the ACME problem a client gets), never anything else; a
 * damaged request never verifies.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isPkiError, type ErrorType } from '../errors/pki-error.js';
import { fuzzParams } from '../pki/testing/mutate.js';
import { canonicalJwk, importJwk } from './jwk.js';
import { checkRequestHeader, parseJws, parseKeyChange, parsePayloadJson, verifyJws } from './jws.js';
import { accountUpdatePayload, finalizePayload, newAccountPayload, newOrderPayload, parsePayload, revokePayload } from './schemas.js';

const runs = fuzzParams(0xacee, 600);
const clientTypes: readonly ErrorType[] = ['malformed', 'badSignatureAlgorithm', 'unauthorized', 'badNonce', 'badPublicKey'];

/** Runs `f`; a PkiError of a client type is a clean refusal, anything else escapes and fails the property. */
function refusesCleanly<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (err) {
    if (isPkiError(err) && clientTypes.includes(err.type)) return undefined;
    throw err;
  }
}

const url = 'https://acme.example.test/acme/new-order';
const keys = { ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }), EdDSA: generateKeyPairSync('ed25519'), RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }) };
const jwkOf = (k: KeyObject) => k.export({ format: 'jwk' }) as Record<string, unknown>;
const b64json = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function signedBody(alg: keyof typeof keys, header: Record<string, unknown>, payload: unknown) {
  const protectedB64 = b64json({ alg, url, nonce: 'n0nce', ...header });
  const payloadB64 = payload === '' ? '' : b64json(payload);
  const data = Buffer.from(`${protectedB64}.${payloadB64}`);
  const priv = keys[alg].privateKey;
  const sig = alg === 'ES256' ? sign('sha256', data, { key: priv, dsaEncoding: 'ieee-p1363' }) : alg === 'RS256' ? sign('sha256', data, priv) : sign(null, data, priv);
  return { protected: protectedB64, payload: payloadB64, signature: sig.toString('base64url') };
}

const valid = [
  signedBody('ES256', { jwk: jwkOf(keys.ES256.publicKey) }, { identifiers: [{ type: 'dns', value: 'a.example.test' }] }),
  signedBody('EdDSA', { jwk: jwkOf(keys.EdDSA.publicKey) }, ''),
  signedBody('RS256', { jwk: jwkOf(keys.RS256.publicKey) }, { contact: ['mailto:a@example.test'] }),
];

/** The whole outer-JWS path of a newAccount-like request; returns whether it verified. */
function verifyRequest(body: unknown): boolean | undefined {
  return refusesCleanly(() => {
    const jws = parseJws(body);
    const ref = checkRequestHeader(jws.header, { url, key: 'jwk' });
    if (ref.kind !== 'jwk') throw new Error('checkRequestHeader gave a kid for key: jwk');
    return verifyJws(jws, importJwk(ref.jwk).key);
  });
}

/** One string of a valid body changed: characters replaced, inserted or cut. */
const damagedBody = fc
  .tuple(fc.nat({ max: valid.length - 1 }), fc.constantFrom('protected', 'payload', 'signature'), fc.nat(), fc.nat({ max: 4 }), fc.string({ unit: fc.constantFrom(...'Aa0-_+/=.%é '.split('')), maxLength: 4 }))
  .map(([i, member, at, cut, insert]) => {
    const body = { ...valid[i]! } as Record<string, string>;
    const s = body[member]!;
    const p = s.length ? at % s.length : 0;
    body[member] = s.slice(0, p) + insert + s.slice(p + cut);
    return { body, original: valid[i]! };
  });

/** A JWK-shaped object: kty and crv from the real sets, members of random or nearly right form. */
const jwkLike = fc.record(
  {
    kty: fc.constantFrom('EC', 'RSA', 'OKP', 'oct', '', 1),
    crv: fc.constantFrom('P-256', 'P-384', 'P-521', 'Ed25519', 'X25519', null),
    x: fc.oneof(fc.base64String({ maxLength: 90 }), fc.string({ maxLength: 50 }), fc.constant(jwkOf(keys.ES256.publicKey).x)),
    y: fc.oneof(fc.base64String({ maxLength: 90 }), fc.constant(jwkOf(keys.ES256.publicKey).y), fc.integer()),
    n: fc.oneof(fc.string({ maxLength: 50 }), fc.constant(jwkOf(keys.RS256.publicKey).n)),
    e: fc.constantFrom('AQAB', 'Aw', 'AAEAAQ', '', 'AQAB='),
    alg: fc.constantFrom('ES256', 'RS256', 'EdDSA', 'none'),
    d: fc.string(),
  },
  { requiredKeys: ['kty'] },
);

describe('ACME JWS under hostile input', () => {
  test('the valid requests verify', () => {
    for (const body of valid) expect(verifyRequest(body)).toBe(true);
  });

  test('any JSON body: the outer JWS path returns or throws a client-type PkiError', () => {
    const jwsLike = fc.record({
      protected: fc.oneof(fc.jsonValue().map(b64json), fc.string(), fc.base64String()),
      payload: fc.oneof(fc.jsonValue().map(b64json), fc.string(), fc.constant('')),
      signature: fc.oneof(fc.base64String(), fc.string()),
    }, { requiredKeys: [] });
    fc.assert(fc.property(fc.oneof(fc.jsonValue(), jwsLike, fc.record({ protected: fc.record({ alg: fc.constantFrom('ES256', 'none', 'HS256'), url: fc.constant(url), nonce: fc.string(), jwk: fc.oneof(jwkLike, fc.jsonValue()), kid: fc.jsonValue() }, { requiredKeys: [] }).map(b64json), payload: fc.constant(''), signature: fc.base64String() })), (body) => void verifyRequest(body)), runs);
  });

  test('a valid request with one member damaged: a client-type PkiError or false; true only if the signed members are unchanged', () => {
    fc.assert(
      fc.property(damagedBody, ({ body, original }) => {
        if (verifyRequest(body) === true) expect([body.protected, body.payload]).toEqual([original.protected, original.payload]);
      }),
      runs,
    );
  });

  test('JWK-shaped objects: canonicalJwk and importJwk return or throw a client-type PkiError', () => {
    fc.assert(fc.property(fc.oneof(jwkLike, fc.jsonValue()), (jwk) => {
      refusesCleanly(() => canonicalJwk(jwk));
      refusesCleanly(() => importJwk(jwk));
    }), runs);
  });

  test('keyChange inner JWS of any shape: a client-type PkiError or a key change', () => {
    const outer = { url, kid: 'https://acme.example.test/acme/acct/1', accountJwkCanonical: canonicalJwk(jwkOf(keys.ES256.publicKey)).canonicalJson };
    const inner = fc.oneof(fc.jsonValue(), damagedBody.map((d) => d.body), fc.constant(signedBody('EdDSA', { jwk: jwkOf(keys.EdDSA.publicKey), nonce: undefined }, { account: outer.kid, oldKey: jwkOf(keys.ES256.publicKey) })));
    fc.assert(fc.property(inner, (body) => void refusesCleanly(() => parseKeyChange(body, outer))), runs);
  });

  test('payloads of any JSON: each endpoint schema parses or throws malformed', () => {
    const schemas = [newAccountPayload, accountUpdatePayload, newOrderPayload, finalizePayload, revokePayload];
    fc.assert(
      fc.property(fc.jsonValue(), fc.uint8Array({ maxLength: 40 }), (payload, bytes) => {
        for (const schema of schemas) refusesCleanly(() => parsePayload(schema as never, payload));
        refusesCleanly(() => parsePayloadJson({ payload: Buffer.from(bytes) } as never, 'fuzz'));
      }),
      runs,
    );
  });
});
