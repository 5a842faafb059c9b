import { createHmac, generateKeyPairSync } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import type { ErrorType } from '../errors/pki-error.js';
import { verifyExternalAccountBinding } from './eab.js';
import { importJwk } from './jwk.js';

const url = 'https://ca.test/acme/new-account';
const keyId = 'kid-3f9a';
const hmacKey = Buffer.alloc(32, 0x5a);
const longKey = Buffer.alloc(64, 0xa5);
const keys = new Map([
  [keyId, hmacKey],
  ['kid-long', longKey],
]);

const account = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const accountJwk = account.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
const outer = { url, accountJwkCanonical: importJwk(accountJwk).canonicalJson };

const b64json = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const hashOf = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' } as Record<string, string>;

/** An EAB JWS as `trellis acme eab create`'s user would build it (RFC 8555 §7.3.4); payload '' stays empty. */
function eab(header: Record<string, unknown>, payload: unknown = accountJwk, key: Buffer = hmacKey) {
  const protectedB64 = b64json(header);
  const payloadB64 = payload === '' ? '' : typeof payload === 'string' ? Buffer.from(payload).toString('base64url') : b64json(payload);
  const mac = createHmac(hashOf[header.alg as string] ?? 'sha256', key).update(`${protectedB64}.${payloadB64}`).digest();
  return { protected: protectedB64, payload: payloadB64, signature: mac.toString('base64url') };
}
const header = { alg: 'HS256', kid: keyId, url };

/** A lookup over `keys` that records what it was asked. */
function lookup() {
  const asked: string[] = [];
  const fn = async (id: string) => {
    asked.push(id);
    return keys.get(id) ?? null;
  };
  return { fn, asked };
}

describe('verifyExternalAccountBinding', () => {
  test('accepts: HS256 binding of the account key; returns the key id', async () => {
    const l = lookup();
    await expect(verifyExternalAccountBinding(eab(header), outer, l.fn)).resolves.toBe(keyId);
    expect(l.asked).toEqual([keyId]);
  });

  test('accepts: HS384 and HS512 with a 64-octet key', async () => {
    for (const alg of ['HS384', 'HS512']) {
      await expect(verifyExternalAccountBinding(eab({ ...header, alg, kid: 'kid-long' }, accountJwk, longKey), outer, lookup().fn)).resolves.toBe('kid-long');
    }
  });

  test('accepts: the payload with another member order and optional members', async () => {
    const reordered = { y: accountJwk.y, x: accountJwk.x, crv: 'P-256', kty: 'EC', use: 'sig', alg: 'ES256' };
    await expect(verifyExternalAccountBinding(eab(header, reordered), outer, lookup().fn)).resolves.toBe(keyId);
  });

  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const good = eab(header);
  const cases: [string, unknown, ErrorType, RegExp, string[]][] = [
    ['rejects: bad MAC (another HMAC key)', eab(header, accountJwk, Buffer.alloc(32, 1)), 'unauthorized', /MAC does not verify/, [keyId]],
    ['rejects: MAC truncated to 16 octets', { ...good, signature: Buffer.from(good.signature, 'base64url').subarray(0, 16).toString('base64url') }, 'unauthorized', /MAC does not verify/, [keyId]],
    ['rejects: payload swapped after MACing', { ...good, payload: b64json(other) }, 'unauthorized', /MAC does not verify/, [keyId]],
    ['rejects: wrong url', eab({ ...header, url: 'https://ca.test/acme/new-order' }), 'unauthorized', /"url" differs/, []],
    ['rejects: payload a different key', eab(header, other), 'unauthorized', /binds a different key/, [keyId]],
    ['rejects: unknown kid', eab({ ...header, kid: 'kid-nope' }), 'externalAccountRequired', /unknown key id/, ['kid-nope']],
    ['rejects: nonce present', eab({ ...header, nonce: 'bm9uY2U' }), 'malformed', /must not have a "nonce"/, []],
    ['rejects: jwk instead of kid', eab({ alg: 'HS256', url, jwk: accountJwk }), 'malformed', /with "kid", not carry a "jwk"/, []],
    ['rejects: alg ES256 (not a MAC)', eab({ ...header, alg: 'ES256' }), 'badSignatureAlgorithm', /alg "ES256" is not a MAC/, []],
    ['rejects: alg none', eab({ ...header, alg: 'none' }), 'badSignatureAlgorithm', /alg "none" is not a MAC/, []],
    ['rejects: HS512 with a 256-bit key', eab({ ...header, alg: 'HS512' }), 'badSignatureAlgorithm', /256 bits, too short for HS512 \(RFC 7518 §3.2\); use HS256$/, [keyId]],
    ['rejects: payload not JSON', eab(header, 'not json'), 'malformed', /payload is not JSON/, []],
    ['rejects: payload empty', eab(header, ''), 'malformed', /empty payload/, []],
    ['rejects: payload a private key (d)', eab(header, account.privateKey.export({ format: 'jwk' })), 'malformed', /private key member "d"/, []],
    ['rejects: not a JWS', accountJwk, 'malformed', /not a valid JWS: unknown JWS member/, []],
    ['rejects: empty MAC', { ...good, signature: '' }, 'unauthorized', /MAC does not verify/, [keyId]],
    ['rejects: padding in the MAC', { ...good, signature: Buffer.from(good.signature, 'base64url').toString('base64') }, 'malformed', /padding|'\+' or '\/'/, []],
  ];
  test.each(cases)('%s', async (_name, body, type, detail, asked) => {
    const l = lookup();
    await expect(verifyExternalAccountBinding(body, outer, l.fn)).rejects.toMatchObject({ type, message: expect.stringMatching(detail) });
    // Structure and url are judged before the key store is asked.
    expect(l.asked).toEqual(asked);
  });

  test('rejects: HS512 with a 256-bit key lists the algorithms the key allows', async () => {
    await expect(verifyExternalAccountBinding(eab({ ...header, alg: 'HS512' }), outer, lookup().fn)).rejects.toMatchObject({ type: 'badSignatureAlgorithm', extra: { algorithms: ['HS256'] } });
  });
});
