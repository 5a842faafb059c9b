import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, describe, expect, test } from 'vitest';
import { openssl, tempDir } from '../../test/helpers/openssl.js';
import { children, readOid, readOne, Tag, whole } from '../pki/der.js';
import { describePublicKey, generatePrivateKey, keyAlgorithmOfPublicKey, signatureAlgorithmOf } from './algorithms.js';
import { keyAlgorithms } from './signing-key.js';

const tmp = tempDir('trellis-keys-');
afterAll(() => tmp.cleanup());

describe('signatureAlgorithmOf', () => {
  test.each([
    ['ecdsa-p256', '1.2.840.10045.4.3.2', 'sha256', false],
    ['ecdsa-p384', '1.2.840.10045.4.3.3', 'sha384', false],
    ['rsa-2048', '1.2.840.113549.1.1.11', 'sha256', true],
    ['rsa-3072', '1.2.840.113549.1.1.11', 'sha256', true],
    ['rsa-4096', '1.2.840.113549.1.1.11', 'sha256', true],
    ['ed25519', '1.3.101.112', null, false],
  ] as const)('%s → %s', (alg, oid, hash, paramsNull) => {
    expect(signatureAlgorithmOf(alg)).toEqual({ oid, hash, paramsNull });
  });

  // OpenSSL as the oracle: a self-signed certificate made by `openssl req`
  // with the same key and hash names the same AlgorithmIdentifier.
  test.each(keyAlgorithms.filter((a) => a !== 'rsa-4096' && a !== 'rsa-3072'))('%s matches what OpenSSL writes in a certificate', async (alg) => {
    const keyPath = tmp.file(`${alg}.key`);
    const certPath = tmp.file(`${alg}.der`);
    fs.writeFileSync(keyPath, (await generatePrivateKey(alg)).export({ type: 'pkcs8', format: 'pem' }));
    const { hash } = signatureAlgorithmOf(alg);
    await openssl('req', '-x509', '-key', keyPath, '-subj', '/CN=oracle', '-days', '1', ...(hash ? [`-${hash}`] : []), '-outform', 'DER', '-out', certPath);
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
    const [, sigAlg] = children(readOne(fs.readFileSync(certPath), Tag.SEQUENCE));
    const [oid, params, ...rest] = children(sigAlg!);
    expect(readOid(oid!)).toBe(signatureAlgorithmOf(alg).oid);
    expect(rest).toEqual([]);
    if (signatureAlgorithmOf(alg).paramsNull) expect(whole(params!).toString('hex')).toBe('0500');
    else expect(params).toBeUndefined();
  });
});

describe('keyAlgorithmOfPublicKey', () => {
  test.each(keyAlgorithms)('a generated %s key, private or public, is recognised', async (alg) => {
    const key = await generatePrivateKey(alg);
    expect(keyAlgorithmOfPublicKey(key)).toBe(alg);
    expect(keyAlgorithmOfPublicKey(createPublicKey(key))).toBe(alg);
  });

  test.each([
    ['RSA 1024', () => generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey, { kind: 'rsa', bits: 1024, publicExponent: 65537n }],
    ['RSA 2048 with e=3', () => generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).publicKey, { kind: 'rsa', bits: 2048, publicExponent: 3n }],
    ['EC P-521', () => generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey, { kind: 'ec', curve: 'P-521' }],
    ['EC secp256k1', () => generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey, { kind: 'ec', curve: 'secp256k1' }],
    ['Ed448', () => generateKeyPairSync('ed448').publicKey, { kind: 'other', type: 'ed448' }],
    ['RSA-PSS', () => generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).publicKey, { kind: 'other', type: 'rsa-pss' }],
  ] as const)('describes a key Trellis does not hold: %s', (_name, make, description) => {
    const key = make();
    expect(keyAlgorithmOfPublicKey(key)).toEqual(description);
    expect(describePublicKey(key)).toEqual(description);
  });

  test('generated RSA keys use e = 65537', async () => {
    expect(describePublicKey(await generatePrivateKey('rsa-2048'))).toEqual({ kind: 'rsa', bits: 2048, publicExponent: 65537n });
  });
});
