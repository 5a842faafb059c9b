/**
 * Signatures made in a SoftHSM2 token, judged by the openssl CLI inside an
 * X.509 structure: a CA CSR (built by the ceremony code) signed with the
 * token key passes `openssl req -verify`, and its public key is the token's.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildCaCsr } from '../../src/ca/ceremony.js';
import { Pkcs11Keystore } from '../../src/keys/pkcs11-keystore.js';
import type { KeyAlgorithm } from '../../src/keys/signing-key.js';
import { toPem } from '../../src/pki/pem.js';
import { openssl, tempDir } from '../helpers/openssl.js';
import { haveSoftHsm, removeSoftHsm, softHsmToken, type SoftHsmToken } from '../helpers/softhsm.js';

const available = haveSoftHsm();

describe.skipIf(!available)('PKCS#11 token signatures, checked by OpenSSL', () => {
  let token: SoftHsmToken;
  let keystore: Pkcs11Keystore;
  const tmp = tempDir('trellis-p11-');

  beforeAll(() => {
    token = softHsmToken('trellis-openssl');
    keystore = new Pkcs11Keystore({ modulePath: token.modulePath, tokenLabel: token.label, pin: token.pinBuffer() });
  });
  afterAll(async () => {
    await keystore?.close();
    removeSoftHsm();
    tmp.cleanup();
  });

  const algorithms: KeyAlgorithm[] = ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'ed25519'];
  test.each(algorithms)('%s: a CA CSR signed in the token passes openssl req -verify', async (algorithm) => {
    const key = await keystore.generate(algorithm);
    const csrPath = tmp.file(`${algorithm}.csr`);
    fs.writeFileSync(csrPath, toPem('CERTIFICATE REQUEST', await buildCaCsr(key, { CN: `Token ${algorithm}` })));
    // openssl req -verify exits 0 either way: the verdict is in its output.
    const verdict = await openssl('req', '-in', csrPath, '-noout', '-verify');
    expect(verdict).toMatch(/self-signature verify OK/);
    expect(verdict).not.toMatch(/failure/);
    const spkiPem = await openssl('req', '-in', csrPath, '-noout', '-pubkey');
    expect(spkiPem).toContain(toPem('PUBLIC KEY', key.spkiDer).trim());
  }, 60_000);
});
