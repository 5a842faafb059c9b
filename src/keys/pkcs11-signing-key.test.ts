import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { expect, test } from 'vitest';
import { ecdsaSigValue } from './pkcs11-signing-key.js';

test.each([
  ['P-256', 'sha256'],
  ['P-384', 'sha384'],
] as const)('ecdsaSigValue: r || s from %s becomes a DER ECDSA-Sig-Value OpenSSL verifies (r and s of every leading octet)', (namedCurve, hash) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
  const seen = { highBit: false, leadingZero: false };
  // Until both INTEGER edge cases came up (a leading zero octet shows once in ~128 signatures).
  for (let i = 0; i < 200 || !(seen.highBit && seen.leadingZero); i++) {
    const data = Buffer.from(`message ${i}`);
    const p1363 = sign(hash, data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const half = p1363.length / 2;
    for (const v of [p1363.subarray(0, half), p1363.subarray(half)]) {
      if (v[0]! >= 0x80) seen.highBit = true;
      if (v[0] === 0) seen.leadingZero = true;
    }
    const der = ecdsaSigValue(p1363);
    expect(verify(hash, data, { key: publicKey, dsaEncoding: 'der' }, der)).toBe(true);
  }
  expect(seen).toEqual({ highBit: true, leadingZero: true });
});
