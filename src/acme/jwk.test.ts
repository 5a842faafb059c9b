import { createHash, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import type { ErrorType } from '../errors/pki-error.js';
import { canonicalJwk, checkBase64url, decodeBase64url, importJwk, jwkThumbprint, keyAuthorization } from './jwk.js';

// RFC 7638 §3.1: the example RSA key (with its optional "alg" and "kid") and its thumbprint.
const rfc7638Key = {
  kty: 'RSA',
  n:
    '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
  e: 'AQAB',
  alg: 'RS256',
  kid: '2011-04-29',
};
// RFC 8037 Appendix A.2 / A.3: the Ed25519 public key and its thumbprint.
const rfc8037Key = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };

const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p256Jwk = p256.publicKey.export({ format: 'jwk' }) as Record<string, string>;
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const rsa2048 = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaJwk = rsa2048.publicKey.export({ format: 'jwk' }) as Record<string, string>;
const ed25519 = generateKeyPairSync('ed25519');

const sha256b64url = (text: string) => createHash('sha256').update(text).digest('base64url');
const b64 = (bytes: Uint8Array | number[]) => Buffer.from(bytes).toString('base64url');
/** `text` with its last character's value OR-ed with `bits` (non-canonical trailing bits). */
const dirtyLastChar = (text: string, bits: number) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  return text.slice(0, -1) + alphabet[alphabet.indexOf(text.at(-1)!) | bits];
};

describe('thumbprints (RFC 7638)', () => {
  test('RFC 7638 §3.1 known answer: the example RSA key', () => {
    expect(jwkThumbprint(rfc7638Key)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
    // §3.1 spells out the hash input: required members only, sorted, no whitespace.
    expect(canonicalJwk(rfc7638Key).canonicalJson).toBe(`{"e":"AQAB","kty":"RSA","n":"${rfc7638Key.n}"}`);
    const imported = importJwk(rfc7638Key);
    expect(imported.thumbprint).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
    expect(imported.key.asymmetricKeyDetails).toEqual({ modulusLength: 2048, publicExponent: 65537n });
  });

  test('RFC 8037 Appendix A.3 known answer: the example Ed25519 key', () => {
    expect(jwkThumbprint(rfc8037Key)).toBe('kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
    expect(importJwk(rfc8037Key).canonicalJson).toBe('{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}');
  });

  test('member order and optional members do not change the canonical form', () => {
    const decorated = { y: p256Jwk.y, use: 'sig', x: p256Jwk.x, kid: 'k1', crv: 'P-256', key_ops: ['verify'], alg: 'ES256', kty: 'EC' };
    expect(canonicalJwk(decorated).canonicalJson).toBe(`{"crv":"P-256","kty":"EC","x":"${p256Jwk.x}","y":"${p256Jwk.y}"}`);
    expect(jwkThumbprint(decorated)).toBe(jwkThumbprint(p256Jwk));
  });
});

describe('importJwk', () => {
  const cases: [string, JsonWebKey, string][] = [
    ['EC P-256', p256Jwk, `{"crv":"P-256","kty":"EC","x":"${p256Jwk.x}","y":"${p256Jwk.y}"}`],
    ['EC P-384', p384.publicKey.export({ format: 'jwk' }), ''],
    ['RSA 2048', rsaJwk, `{"e":"AQAB","kty":"RSA","n":"${rsaJwk.n}"}`],
    ['OKP Ed25519', ed25519.publicKey.export({ format: 'jwk' }), ''],
  ];
  const originals = [p256.publicKey, p384.publicKey, rsa2048.publicKey, ed25519.publicKey];
  test.each(cases.map((c, i) => [...c, i] as const))('imports %s: the same key, its canonical JSON and thumbprint', (_name, jwk, expectedJson, i) => {
    const imported = importJwk(jwk);
    expect(imported.key.type).toBe('public');
    expect(imported.key.equals(originals[i]!)).toBe(true);
    if (expectedJson) expect(imported.canonicalJson).toBe(expectedJson);
    expect(imported.thumbprint).toBe(sha256b64url(imported.canonicalJson));
    // The stored form (AcmeAccountRecord.jwk) imports back to the same key.
    expect(importJwk(JSON.parse(imported.canonicalJson)).key.equals(imported.key)).toBe(true);
  });

  test('accepts an RSA key with a larger odd exponent', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x1000001 });
    expect(importJwk(publicKey.export({ format: 'jwk' })).key.asymmetricKeyDetails?.publicExponent).toBe(0x1000001n);
  });

  const p256Private = p256.privateKey.export({ format: 'jwk' });
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
  // Not a real key: rejected on size before anything is imported.
  const rsa8200 = { kty: 'RSA', n: b64([0x80, ...Buffer.alloc(1024, 0xff)]), e: 'AQAB' };
  const offCurveY = b64(Buffer.from(p256Jwk.y!, 'base64url').map((b, i) => (i === 31 ? b ^ 1 : b)));
  const rejects: [string, unknown, ErrorType, RegExp][] = [
    ['rejects: not an object (null)', null, 'malformed', /not a JSON object/],
    ['rejects: not an object (array)', [p256Jwk], 'malformed', /not a JSON object/],
    ['rejects: jwk with d', p256Private, 'malformed', /private key member "d"/],
    ['rejects: RSA jwk with p', { ...rsaJwk, p: 'AQAB' }, 'malformed', /private key member "p"/],
    ['rejects: symmetric jwk (k)', { kty: 'oct', k: 'c2VjcmV0' }, 'malformed', /private key member "k"/],
    ['rejects: kty missing', { crv: 'P-256', x: p256Jwk.x, y: p256Jwk.y }, 'malformed', /no "kty" member/],
    ['rejects: kty not a string', { ...p256Jwk, kty: 1 }, 'malformed', /"kty" is not a string/],
    ['rejects: kty oct without k', { kty: 'oct' }, 'badPublicKey', /key type "oct" is not supported/],
    ['rejects: EC P-521', { ...p256Jwk, crv: 'P-521' }, 'badPublicKey', /curve "P-521" is not supported/],
    ['rejects: EC secp256k1', { ...p256Jwk, crv: 'secp256k1' }, 'badPublicKey', /curve "secp256k1"/],
    ['rejects: OKP X25519', { kty: 'OKP', crv: 'X25519', x: rfc8037Key.x }, 'badPublicKey', /OKP curve "X25519"/],
    ['rejects: OKP Ed448', { kty: 'OKP', crv: 'Ed448', x: rfc8037Key.x }, 'badPublicKey', /OKP curve "Ed448"/],
    ['rejects: EC without y', { kty: 'EC', crv: 'P-256', x: p256Jwk.x }, 'malformed', /no "y" member/],
    ['rejects: padding in base64url', { ...p256Jwk, x: `${p256Jwk.x}=` }, 'malformed', /"x" is not base64url: it contains padding/],
    ['rejects: base64 "+/" in base64url', { ...p256Jwk, x: p256Jwk.x!.slice(0, -2) + '+/' }, 'malformed', /'\+' or '\/'/],
    ['rejects: whitespace in base64url', { ...p256Jwk, x: ` ${p256Jwk.x!.slice(1)}` }, 'malformed', /outside the base64url alphabet/],
    ['rejects: non-canonical trailing bits', { ...p256Jwk, x: dirtyLastChar(p256Jwk.x!, 1) }, 'malformed', /not canonical base64url/],
    ['rejects: P-256 coordinate of 31 octets', { ...p256Jwk, x: b64(Buffer.from(p256Jwk.x!, 'base64url').subarray(1)) }, 'malformed', /exactly 32 octets for P-256/],
    ['rejects: P-256 coordinate with a leading zero octet', { ...p256Jwk, x: b64(Buffer.concat([Buffer.alloc(1), Buffer.from(p256Jwk.x!, 'base64url')])) }, 'malformed', /exactly 32 octets/],
    ['rejects: Ed25519 key of 31 octets', { ...rfc8037Key, x: b64(Buffer.alloc(31, 1)) }, 'malformed', /exactly 32 octets for Ed25519/],
    ['rejects: EC point not on the curve', { ...p256Jwk, y: offCurveY }, 'badPublicKey', /cannot be imported/],
    ['rejects: RSA 1024 key', rsa1024, 'badPublicKey', /RSA 1024 key refused/],
    ['rejects: RSA modulus over 8192 bits', rsa8200, 'badPublicKey', /RSA 8200 key refused/],
    ['rejects: RSA exponent 3', { ...rsaJwk, e: 'Aw' }, 'badPublicKey', /exponent refused/],
    ['rejects: RSA exponent even', { ...rsaJwk, e: b64([0x01, 0x00, 0x02]) }, 'badPublicKey', /exponent refused/],
    ['rejects: RSA exponent of 2^256 + 1', { ...rsaJwk, e: b64([0x01, ...Buffer.alloc(31), 0x01]) }, 'badPublicKey', /exponent refused/],
    ['rejects: RSA exponent 65535', { ...rsaJwk, e: b64([0xff, 0xff]) }, 'badPublicKey', /exponent refused/],
    ['rejects: RSA modulus with a leading zero octet', { ...rsaJwk, n: b64(Buffer.concat([Buffer.alloc(1), Buffer.from(rsaJwk.n!, 'base64url')])) }, 'malformed', /"n" must be .* minimum number of octets/],
    ['rejects: RSA exponent with a leading zero octet', { ...rsaJwk, e: 'AAEAAQ' }, 'malformed', /"e" must be .* minimum number of octets/],
    ['rejects: RSA exponent empty', { ...rsaJwk, e: '' }, 'malformed', /"e" must be a non-zero integer/],
    ['rejects: jwk "alg" that does not fit the key', { ...p256Jwk, alg: 'ES384' }, 'malformed', /"alg" "ES384" does not fit this EC key, which signs with ES256/],
    ['rejects: jwk "alg" RS256 on an Ed25519 key', { ...rfc8037Key, alg: 'RS256' }, 'malformed', /signs with EdDSA/],
  ];
  test.each(rejects)('%s', (_name, jwk, type, detail) => {
    const refusal = expect.objectContaining({ type, message: expect.stringMatching(detail) });
    expect(() => importJwk(jwk)).toThrow(refusal);
    // Rejections that need no import are the same without one.
    if (!detail.source.includes('cannot be imported')) expect(() => jwkThumbprint(jwk)).toThrow(refusal);
  });

  test('the detail never echoes private key material', () => {
    expect(() => importJwk(p256Private)).toThrow(expect.objectContaining({ type: 'malformed', message: expect.not.stringContaining(p256Private.d!) }));
  });
});

describe('base64url (RFC 7515 §2)', () => {
  test.each([
    ['', []],
    ['AQ', [1]],
    ['AQI', [1, 2]],
    ['AQAB', [1, 0, 1]],
    ['-_8', [0xfb, 0xff]],
  ])('decodes %j', (text, bytes) => {
    expect([...decodeBase64url(text, 'x')]).toEqual(bytes);
  });

  test.each([
    ['AQ==', /padding/],
    ['+_8', /'\+' or '\/'/],
    ['A Q', /outside the base64url alphabet/],
    ['AQABA', /impossible length 5/],
    ['AR', /not canonical/], // 'R' = 17: the low 4 bits are spare for one octet
    ['AQF', /not canonical/], // 'F' = 5: the low 2 bits are spare for two octets
  ])('rejects %j', (text, detail) => {
    expect(() => checkBase64url(text, 'value')).toThrow(expect.objectContaining({ type: 'malformed', message: expect.stringMatching(detail) }));
  });
});

test('keyAuthorization is token "." thumbprint (RFC 8555 §8.1)', () => {
  const token = 'evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA';
  expect(keyAuthorization(token, jwkThumbprint(rfc7638Key))).toBe('evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
});
