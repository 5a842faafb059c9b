import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import fs from 'node:fs';
import { inspect } from 'node:util';
import { afterAll, describe, expect, test } from 'vitest';
import { refusal } from '../../test/helpers/errors.js';
import { opensslRun, tempDir } from '../../test/helpers/openssl.js';
import { generatePrivateKey, hashFor } from './algorithms.js';
import { NodeSigningKey } from './node-signing-key.js';
import { keyAlgorithms } from './signing-key.js';

const tmp = tempDir('trellis-sign-');
afterAll(() => tmp.cleanup());
const data = Buffer.from('tbsCertificate stand-in');

describe('NodeSigningKey', () => {
  test.each(keyAlgorithms)('%s: signs, and OpenSSL verifies against spkiDer', async (alg) => {
    const key = new NodeSigningKey(`k-${alg}`, alg, await generatePrivateKey(alg));
    const sig = await key.sign(data);
    const spki = createPublicKey({ key: key.spkiDer, format: 'der', type: 'spki' });
    expect(verify(hashFor(alg), data, { key: spki, dsaEncoding: 'der' }, sig)).toBe(true);

    fs.writeFileSync(tmp.file(`${alg}.pub`), key.spkiDer);
    fs.writeFileSync(tmp.file(`${alg}.data`), data);
    fs.writeFileSync(tmp.file(`${alg}.sig`), sig);
    const hash = hashFor(alg);
    const r = await opensslRun(['pkeyutl', '-verify', '-pubin', '-keyform', 'DER', '-inkey', tmp.file(`${alg}.pub`), '-rawin', ...(hash ? ['-digest', hash] : []), '-in', tmp.file(`${alg}.data`), '-sigfile', tmp.file(`${alg}.sig`)]);
    expect(r.stdout + r.stderr).toMatch(/Signature Verified Successfully/);
  });

  test('ECDSA signatures are DER ECDSA-Sig-Value, not P1363', async () => {
    const key = new NodeSigningKey('k', 'ecdsa-p256', await generatePrivateKey('ecdsa-p256'));
    const sig = key.signSync(data);
    // ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }
    expect(sig[0]).toBe(0x30);
    expect(sig[1]).toBe(sig.length - 2);
    expect(verify('sha256', data, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(false);
  });

  test('P-384 signs with SHA-384 (RFC 5758 §3.2), not SHA-256', async () => {
    const key = new NodeSigningKey('k', 'ecdsa-p384', await generatePrivateKey('ecdsa-p384'));
    const sig = key.signSync(data);
    expect(verify('sha384', data, key.publicKey, sig)).toBe(true);
    expect(verify('sha256', data, key.publicKey, sig)).toBe(false);
  });

  test.each([
    ['a public key', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, 'ecdsa-p256'],
    ['a P-384 key labelled P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, 'ecdsa-p256'],
    ['an RSA-2048 key labelled RSA-4096', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'rsa-4096'],
  ] as const)('rejects: %s', async (_name, make, alg) => {
    const err = await refusal((async () => new NodeSigningKey('k', alg, make()))());
    expect(err.type).toBe('keyIntegrity');
  });

  test('inspection and JSON show only the id and algorithm', async () => {
    const key = new NodeSigningKey('ca-key', 'ed25519', await generatePrivateKey('ed25519'));
    expect(inspect(key)).toBe('NodeSigningKey(ca-key, ed25519)');
    expect(JSON.stringify(key)).toBe('{"keyId":"ca-key","algorithm":"ed25519"}');
    expect(inspect({ nested: key }, { depth: 5 })).not.toMatch(/PRIVATE|KeyObject/);
  });
});
