import { randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import type { IssuedCertificate } from '../../ca/authority.js';
import { pemBlocks } from '../../pki/pem.js';
import { pemChain } from './issue.js';

const issued = (certDer: Buffer, chainDer: Buffer[]): IssuedCertificate => ({ issuerId: 'ca', serialHex: '01', profile: 'server', certDer, chainDer, notBefore: new Date(0), notAfter: new Date(1000) });

describe('pemChain', () => {
  test('the leaf, then the chain above it, for every certificate of the same issuer chain', () => {
    const chain = [randomBytes(600), randomBytes(700)];
    for (const leaf of [randomBytes(650), randomBytes(500), randomBytes(64)]) {
      expect(pemBlocks(pemChain(issued(leaf, chain)))).toEqual([leaf, ...chain].map((der) => ({ label: 'CERTIFICATE', der })));
    }
  });

  test('another chain array gets its own PEM; a root-issued leaf has none above it', () => {
    const leaf = randomBytes(300);
    const other = [randomBytes(400)];
    expect(pemBlocks(pemChain(issued(leaf, other))).map((b) => b.der)).toEqual([leaf, ...other]);
    expect(pemBlocks(pemChain(issued(leaf, []))).map((b) => b.der)).toEqual([leaf]);
  });
});
