import { constants, createHmac, generateKeyPairSync, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import type { ErrorType } from '../errors/pki-error.js';
import { importJwk, jwkThumbprint } from './jwk.js';
import { checkAlgorithm, checkRequestHeader, parseJws, parseKeyChange, supportedAlgorithms, verifyJws, type FlattenedJws, type SupportedAlgorithm } from './jws.js';

const pairs = {
  ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  ES384: generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  EdDSA: generateKeyPairSync('ed25519'),
};
const publicJwk = (key: KeyObject) => key.export({ format: 'jwk' }) as Record<string, unknown>;
const jwks = Object.fromEntries(Object.entries(pairs).map(([alg, p]) => [alg, publicJwk(p.publicKey)])) as Record<SupportedAlgorithm, Record<string, unknown>>;

/** What a client sends: the signature as node:crypto makes it for `alg` (R || S for ECDSA, RFC 7518 §3.4). */
function signWith(alg: SupportedAlgorithm, privateKey: KeyObject, input: string): Buffer {
  const data = Buffer.from(input);
  switch (alg) {
    case 'ES256':
      return sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    case 'ES384':
      return sign('sha384', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    case 'RS256':
      return sign('sha256', data, { key: privateKey, padding: constants.RSA_PKCS1_PADDING });
    case 'EdDSA':
      return sign(null, data, privateKey);
  }
}

const b64json = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

/**
 * A flattened JWS body over `header` and `payload` ('' for POST-as-GET),
 * signed as `signAs` with `privateKey` (by default the key of header.alg).
 */
function signedBody(header: Record<string, unknown>, payload: unknown, signAs = header.alg as SupportedAlgorithm, privateKey: KeyObject = pairs[signAs].privateKey) {
  const protectedB64 = b64json(header);
  const payloadB64 = payload === '' ? '' : b64json(payload);
  return { protected: protectedB64, payload: payloadB64, signature: b64(signWith(signAs, privateKey, `${protectedB64}.${payloadB64}`)) };
}

const url = 'https://ca.test/acme/new-account';
const nonce = 'bm9uY2Utb25l';
const accountUrl = 'https://ca.test/acme/acct/Xy7';

describe('signed requests parse and verify', () => {
  test.each(supportedAlgorithms)('accepts: %s with "jwk" (newAccount)', (alg) => {
    const payload = { termsOfServiceAgreed: true, contact: ['mailto:ops@example.test'] };
    const jws = parseJws(signedBody({ alg, nonce, url, jwk: jwks[alg] }, payload));
    const ref = checkRequestHeader(jws.header, { url, key: 'jwk' });
    expect(ref).toEqual({ kind: 'jwk', jwk: jwks[alg], nonce });
    const imported = importJwk(ref.kind === 'jwk' ? ref.jwk : null);
    expect(imported.thumbprint).toBe(jwkThumbprint(jwks[alg]));
    expect(verifyJws(jws, imported.key)).toBe(true);
    expect(JSON.parse(jws.payload.toString('utf8'))).toEqual(payload);
  });

  test.each(supportedAlgorithms)('accepts: %s POST-as-GET with "kid" (payload "")', (alg) => {
    const jws = parseJws(signedBody({ alg, nonce, url, kid: accountUrl }, ''));
    expect(jws.payload.length).toBe(0);
    expect(checkRequestHeader(jws.header, { url, key: 'kid' })).toEqual({ kind: 'kid', kid: accountUrl, nonce });
    // The account's key as the store keeps it: canonical JSON text.
    const stored = importJwk(jwks[alg]).canonicalJson;
    expect(verifyJws(jws, importJwk(JSON.parse(stored)).key)).toBe(true);
  });

  test('ignores header members it does not know ("typ")', () => {
    const jws = parseJws(signedBody({ alg: 'ES256', nonce, url, kid: accountUrl, typ: 'JOSE' }, {}));
    expect(jws.header).toEqual({ alg: 'ES256', nonce, url, kid: accountUrl });
  });

  // Known-answer tests with keys and signatures from the RFCs. Their headers
  // carry no "url"/"jwk" (they are not ACME requests), so the parsed form is
  // built by hand; verifyJws reads only alg, the members and the signature.
  const kat = (protectedB64: string, payloadB64: string, signatureB64: string, alg: string): FlattenedJws => ({
    protectedB64,
    payloadB64,
    signatureB64,
    header: { alg, url: '' },
    payload: Buffer.from(payloadB64, 'base64url'),
    signature: Buffer.from(signatureB64, 'base64url'),
  });

  test('RFC 7515 Appendix A.3 known answer: ES256', () => {
    const key = importJwk({ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }).key;
    const jws = kat(
      'eyJhbGciOiJFUzI1NiJ9',
      'eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ',
      'DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q',
      'ES256',
    );
    expect(verifyJws(jws, key)).toBe(true);
    expect(verifyJws({ ...jws, payloadB64: b64json({ iss: 'joe' }) }, key)).toBe(false);
  });

  test('RFC 8037 Appendix A.4/A.5 known answer: EdDSA with Ed25519', () => {
    const key = importJwk({ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }).key;
    const jws = kat('eyJhbGciOiJFZERTQSJ9', 'RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc', 'hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg', 'EdDSA');
    expect(jws.payload.toString()).toBe('Example of Ed25519 signing');
    expect(verifyJws(jws, key)).toBe(true);
  });

  describe('a signature that does not match is false', () => {
    const body = signedBody({ alg: 'ES256', nonce, url, kid: accountUrl }, { status: 'deactivated' });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const cases: [string, Record<string, string>, KeyObject][] = [
      ['payload swapped', { ...body, payload: b64json({ status: 'valid' }) }, pairs.ES256.publicKey],
      ['protected header swapped (another nonce)', { ...body, protected: b64json({ alg: 'ES256', nonce: 'b3RoZXI', url, kid: accountUrl }) }, pairs.ES256.publicKey],
      ['signed by another P-256 key', body, other.publicKey],
      ['one signature bit flipped', { ...body, signature: b64(Buffer.from(body.signature, 'base64url').map((b, i) => (i === 10 ? b ^ 0x01 : b))) }, pairs.ES256.publicKey],
    ];
    test.each(cases)('%s', (_name, tampered, key) => {
      expect(verifyJws(parseJws(tampered), key)).toBe(false);
    });
    test.each(supportedAlgorithms)('%s signature over another payload', (alg) => {
      const good = signedBody({ alg, nonce, url, kid: accountUrl }, { a: 1 });
      const jws = parseJws({ ...good, payload: b64json({ a: 2 }) });
      expect(verifyJws(jws, pairs[alg].publicKey)).toBe(false);
    });
  });
});

describe('parseJws rejects', () => {
  const header = { alg: 'ES256', nonce, url, kid: accountUrl };
  const good = signedBody(header, { identifiers: [] });
  const withHeader = (h: unknown) => ({ ...good, protected: b64json(h) });
  const cases: [string, unknown, RegExp][] = [
    ['rejects: body null', null, /not a JSON object/],
    ['rejects: body a string', JSON.stringify(good), /not a JSON object/],
    ['rejects: body an array', [good], /not a JSON object/],
    ['rejects: general serialization', { payload: good.payload, signatures: [{ protected: good.protected, signature: good.signature }] }, /general JWS JSON serialization/],
    ['rejects: unprotected header', { ...good, header: { kid: accountUrl } }, /unprotected JWS "header"/],
    ['rejects: unknown top-level member', { ...good, extra: 1 }, /unknown JWS member "extra"/],
    ['rejects: "__proto__" member', JSON.parse(`{"__proto__":{},${JSON.stringify(good).slice(1)}`), /unknown JWS member "__proto__"/],
    ['rejects: protected missing', { payload: good.payload, signature: good.signature }, /"protected" member is missing/],
    ['rejects: protected not a string', { ...good, protected: header }, /"protected" member is missing or not a string/],
    ['rejects: payload missing', { protected: good.protected, signature: good.signature }, /"payload" member is missing/],
    ['rejects: signature missing', { protected: good.protected, payload: good.payload }, /"signature" member is missing/],
    ['rejects: protected empty', { ...good, protected: '' }, /"protected" header is empty/],
    ['rejects: padding in base64url', { ...good, signature: `${good.signature}==` }, /"signature" is not base64url: it contains padding/],
    ['rejects: padding in the payload', { ...good, payload: Buffer.from('{"a":1}').toString('base64') }, /"payload" is not base64url: it contains padding/],
    ['rejects: base64 "+/" characters', { ...good, protected: `+/${good.protected.slice(2)}` }, /"protected" is not base64url: it contains '\+' or '\/'/],
    ['rejects: line break in base64url', { ...good, payload: `${good.payload.slice(0, 4)}\n${good.payload.slice(4)}` }, /outside the base64url alphabet/],
    ['rejects: non-canonical base64url', { ...good, signature: `${good.signature.slice(0, -1)}${good.signature.endsWith('B') ? 'C' : 'B'}` }, /not canonical base64url/],
    ['rejects: protected header not JSON', { ...good, protected: b64(Buffer.from('{alg: ES256}')) }, /protected header is not JSON/],
    ['rejects: protected header a JSON array', withHeader([header]), /protected header is not a JSON object/],
    ['rejects: protected header not UTF-8', { ...good, protected: b64(Buffer.from([0x7b, 0xff, 0x7d])) }, /protected header is not UTF-8/],
    ['rejects: alg missing', withHeader({ nonce, url, kid: accountUrl }), /no "alg" string/],
    ['rejects: alg not a string', withHeader({ ...header, alg: ['ES256'] }), /no "alg" string/],
    ['rejects: url missing', withHeader({ alg: 'ES256', nonce, kid: accountUrl }), /no "url" string/],
    ['rejects: crit present', withHeader({ ...header, crit: ['b64'], b64: false }), /"crit"; no JWS extension is supported/],
    ['rejects: both jwk and kid', withHeader({ ...header, jwk: jwks.ES256 }), /both "jwk" and "kid"/],
    ['rejects: neither jwk nor kid', withHeader({ alg: 'ES256', nonce, url }), /neither "jwk" nor "kid"/],
    ['rejects: jwk a string', withHeader({ alg: 'ES256', nonce, url, jwk: JSON.stringify(jwks.ES256) }), /"jwk" is not a JSON object/],
    ['rejects: kid not a string', withHeader({ ...header, kid: 7 }), /"kid" is not a non-empty string/],
    ['rejects: kid empty', withHeader({ ...header, kid: '' }), /"kid" is not a non-empty string/],
    ['rejects: nonce not a string', withHeader({ ...header, nonce: 12 }), /"nonce" is not a string/],
  ];
  test.each(cases)('%s', (_name, body, detail) => {
    expect(() => parseJws(body)).toThrow(expect.objectContaining({ type: 'malformed', message: expect.stringMatching(detail) }));
  });
});

describe('checkAlgorithm', () => {
  test.each(supportedAlgorithms)('accepts: %s', (alg) => {
    expect(() => checkAlgorithm(alg)).not.toThrow();
  });
  test.each([
    ['none', /"none" is never accepted/],
    ['HS256', /HS256 is a MAC/],
    ['HS512', /HS512 is a MAC/],
    ['RS384', /"RS384" is not supported/],
    ['PS256', /"PS256" is not supported/],
    ['ES512', /"ES512" is not supported/],
    ['ES256K', /"ES256K" is not supported/],
    ['eddsa', /"eddsa" is not supported/],
  ])('rejects: alg %s', (alg, detail) => {
    // RFC 8555 §6.2: the problem document lists the supported algorithms.
    expect(() => checkAlgorithm(alg)).toThrow(
      expect.objectContaining({ type: 'badSignatureAlgorithm', message: expect.stringMatching(detail), extra: { algorithms: ['ES256', 'ES384', 'RS256', 'EdDSA'] } }),
    );
  });
});

describe('checkRequestHeader', () => {
  const jwkHeader = { alg: 'ES256', nonce, url, jwk: jwks.ES256 };
  const kidHeader = { alg: 'ES256', nonce, url, kid: accountUrl };

  test('revokeCert takes either reference', () => {
    expect(checkRequestHeader(parseJws(signedBody(jwkHeader, {})).header, { url, key: 'either' }).kind).toBe('jwk');
    expect(checkRequestHeader(parseJws(signedBody(kidHeader, {})).header, { url, key: 'either' }).kind).toBe('kid');
  });

  const hmacBody = (header: Record<string, unknown>) => {
    const protectedB64 = b64json(header);
    const payloadB64 = b64json({});
    return { protected: protectedB64, payload: payloadB64, signature: b64(createHmac('sha256', Buffer.alloc(32, 7)).update(`${protectedB64}.${payloadB64}`).digest()) };
  };
  const cases: [string, Record<string, string>, { url: string; key: 'jwk' | 'kid' | 'either' }, ErrorType, RegExp][] = [
    ['rejects: HS256 on the outer JWS', hmacBody({ ...kidHeader, alg: 'HS256' }), { url, key: 'kid' }, 'badSignatureAlgorithm', /HS256 is a MAC/],
    ['rejects: alg none (with the empty signature of RFC 7518 §3.6)', { ...signedBody(kidHeader, {}), protected: b64json({ ...kidHeader, alg: 'none' }), signature: '' }, { url, key: 'kid' }, 'badSignatureAlgorithm', /"none"/],
    ['rejects: url of another resource', signedBody(kidHeader, {}), { url: 'https://ca.test/acme/new-order', key: 'kid' }, 'unauthorized', /"url" is not the URL this request was sent to/],
    ['rejects: url differing by a trailing slash', signedBody(kidHeader, {}), { url: `${url}/`, key: 'kid' }, 'unauthorized', /RFC 8555 §6.4/],
    ['rejects: nonce missing', signedBody({ alg: 'ES256', url, kid: accountUrl }, {}), { url, key: 'kid' }, 'badNonce', /no "nonce"/],
    ['rejects: jwk where the endpoint wants kid', signedBody(jwkHeader, {}), { url, key: 'kid' }, 'malformed', /use "kid", not "jwk"/],
    ['rejects: kid on newAccount', signedBody(kidHeader, {}), { url, key: 'jwk' }, 'malformed', /in "jwk", not "kid"/],
  ];
  test.each(cases)('%s', (_name, body, expected, type, detail) => {
    expect(() => checkRequestHeader(parseJws(body).header, expected)).toThrow(expect.objectContaining({ type, message: expect.stringMatching(detail) }));
  });
});

describe('verifyJws rejects', () => {
  const signed = (alg: SupportedAlgorithm, signature?: (s: Buffer, input: string) => Buffer) => {
    const body = signedBody({ alg, nonce, url, kid: accountUrl }, { csr: 'MIIB' });
    if (!signature) return parseJws(body);
    const s = Buffer.from(body.signature, 'base64url');
    return parseJws({ ...body, signature: b64(signature(s, `${body.protected}.${body.payload}`)) });
  };
  const cases: [string, () => FlattenedJws, KeyObject, ErrorType, RegExp][] = [
    ['rejects: ES256 signature with a P-384 key', () => signed('ES256'), pairs.ES384.publicKey, 'badSignatureAlgorithm', /ES256 needs an ECDSA P-256 key, but the key is ECDSA P-384/],
    ['rejects: ES384 signature with a P-256 key', () => signed('ES384'), pairs.ES256.publicKey, 'badSignatureAlgorithm', /ES384 needs an ECDSA P-384 key, but the key is ECDSA P-256/],
    ['rejects: RS256 with an EC key', () => signed('RS256'), pairs.ES256.publicKey, 'badSignatureAlgorithm', /RS256 needs an RSA key, but the key is ECDSA P-256/],
    ['rejects: EdDSA with an RSA key', () => signed('EdDSA'), pairs.RS256.publicKey, 'badSignatureAlgorithm', /EdDSA needs an Ed25519 key, but the key is RSA 2048/],
    ['rejects: ES256 with an Ed25519 key', () => signed('ES256'), pairs.EdDSA.publicKey, 'badSignatureAlgorithm', /but the key is Ed25519/],
    ['rejects: DER-encoded ECDSA signature', () => signed('ES256', (_s, input) => sign('sha256', Buffer.from(input), pairs.ES256.privateKey)), pairs.ES256.publicKey, 'malformed', /this key needs 64: ES256 signatures are R \|\| S \(RFC 7518 §3.4\), not DER/],
    ['rejects: ES384 signature one octet short', () => signed('ES384', (s) => s.subarray(1)), pairs.ES384.publicKey, 'malformed', /95 octets; this key needs 96/],
    ['rejects: RSA signature one octet short', () => signed('RS256', (s) => s.subarray(1)), pairs.RS256.publicKey, 'malformed', /255 octets; this key needs 256/],
    ['rejects: empty ES256 signature', () => signed('ES256', () => Buffer.alloc(0)), pairs.ES256.publicKey, 'malformed', /0 octets; this key needs 64/],
    ['rejects: alg none with an empty signature', () => ({ ...signed('ES256', () => Buffer.alloc(0)), header: { alg: 'none', url } }), pairs.ES256.publicKey, 'badSignatureAlgorithm', /"none" is never accepted/],
    ['rejects: Ed25519 signature with an extra octet', () => signed('EdDSA', (s) => Buffer.concat([s, Buffer.alloc(1)])), pairs.EdDSA.publicKey, 'malformed', /65 octets; this key needs 64/],
    ['rejects: HS256 even without checkRequestHeader', () => ({ ...signed('ES256'), header: { alg: 'HS256', url } }), pairs.ES256.publicKey, 'badSignatureAlgorithm', /HS256 is a MAC/],
  ];
  test.each(cases)('%s', (_name, jws, key, type, detail) => {
    const extra = type === 'badSignatureAlgorithm' ? { extra: { algorithms: [...supportedAlgorithms] } } : {};
    expect(() => verifyJws(jws(), key)).toThrow(expect.objectContaining({ type, message: expect.stringMatching(detail), ...extra }));
  });
});

describe('parseKeyChange (RFC 8555 §7.3.5)', () => {
  const keyChangeUrl = 'https://ca.test/acme/key-change';
  const oldJwk = jwks.ES256;
  const outer = { url: keyChangeUrl, kid: accountUrl, accountJwkCanonical: importJwk(oldJwk).canonicalJson };
  const fresh = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const newJwk = publicJwk(fresh.publicKey);
  const innerHeader = { alg: 'ES256', url: keyChangeUrl, jwk: newJwk };
  const innerPayload = { account: accountUrl, oldKey: oldJwk };
  const inner = (header: Record<string, unknown> = innerHeader, payload: unknown = innerPayload, privateKey = fresh.privateKey) => signedBody(header, payload, 'ES256', privateKey);

  test('accepts: the new key signs, oldKey and account match', () => {
    const change = parseKeyChange(inner(), outer);
    expect(change.account).toBe(accountUrl);
    expect(change.oldKey).toEqual(oldJwk);
    expect(change.newKey.thumbprint).toBe(jwkThumbprint(newJwk));
    expect(change.newKey.key.equals(fresh.publicKey)).toBe(true);
  });

  test('accepts: an Ed25519 new key, oldKey with other member order and optional members', () => {
    const ed = generateKeyPairSync('ed25519');
    const oldKey = { y: oldJwk.y, x: oldJwk.x, kty: 'EC', crv: 'P-256', use: 'sig' };
    const body = signedBody({ alg: 'EdDSA', url: keyChangeUrl, jwk: publicJwk(ed.publicKey) }, { oldKey, account: accountUrl }, 'EdDSA', ed.privateKey);
    expect(parseKeyChange(body, outer).newKey.key.equals(ed.publicKey)).toBe(true);
  });

  const withD = publicJwk(fresh.privateKey) as JsonWebKey;
  const cases: [string, unknown, ErrorType, RegExp][] = [
    ['rejects: not a JWS (the keyChange object itself)', innerPayload, 'malformed', /not a valid inner JWS: unknown JWS member "account"/],
    ['rejects: inner with kid instead of jwk', inner({ alg: 'ES256', url: keyChangeUrl, kid: accountUrl }), 'malformed', /new key in "jwk", not "kid"/],
    ['rejects: inner with a nonce', inner({ ...innerHeader, nonce }), 'malformed', /must not have a "nonce"/],
    ['rejects: inner url differs from the outer url', inner({ ...innerHeader, url: 'https://ca.test/acme/new-order' }), 'unauthorized', /inner JWS "url" differs/],
    ['rejects: inner alg HS256', { ...inner(), protected: b64json({ ...innerHeader, alg: 'HS256' }) }, 'badSignatureAlgorithm', /HS256 is a MAC/],
    ['rejects: inner signed by the old key, not the new one', inner(innerHeader, innerPayload, pairs.ES256.privateKey), 'unauthorized', /signature does not verify with its "jwk"/],
    ['rejects: new jwk with d', inner({ ...innerHeader, jwk: withD }), 'malformed', /private key member "d"/],
    ['rejects: account is another account', inner(innerHeader, { ...innerPayload, account: 'https://ca.test/acme/acct/Other' }), 'unauthorized', /"account" is not the account that signed/],
    ['rejects: oldKey is not the account key', inner(innerHeader, { ...innerPayload, oldKey: jwks.ES384 }), 'unauthorized', /"oldKey" is not the current key/],
    ['rejects: oldKey is the new key', inner(innerHeader, { ...innerPayload, oldKey: newJwk }), 'unauthorized', /"oldKey" is not the current key/],
    ['rejects: oldKey with private d', inner(innerHeader, { ...innerPayload, oldKey: publicJwk(pairs.ES256.privateKey) }), 'malformed', /private key member "d"/],
    ['rejects: oldKey missing', inner(innerHeader, { account: accountUrl }), 'malformed', /"oldKey" is missing/],
    ['rejects: account missing', inner(innerHeader, { oldKey: oldJwk }), 'malformed', /"account" is missing/],
    ['rejects: unknown member in the payload', inner(innerHeader, { ...innerPayload, newKey: newJwk }), 'malformed', /unknown member "newKey"/],
    ['rejects: payload not an object', inner(innerHeader, [innerPayload]), 'malformed', /inner payload is not a JSON object/],
    ['rejects: empty payload', inner(innerHeader, ''), 'malformed', /empty payload/],
  ];
  test.each(cases)('%s', (_name, body, type, detail) => {
    expect(() => parseKeyChange(body, outer)).toThrow(expect.objectContaining({ type, message: expect.stringMatching(detail) }));
  });
});
