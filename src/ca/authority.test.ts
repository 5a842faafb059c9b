/**
 * The CA's invariants, on a real instance (SQLite) with the issuing CA's real
 * key behind a wrapper that counts and can fail its signatures: a token signs
 * once and only for its issuer; the signed TBS is the linted TBS; no intent,
 * no signature; a failed signature leaves the row `failed` and an audit event;
 * a key whose state forbids it signs nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { testPki, testPassphrase, type TestPki } from '../../test/helpers/test-pki.js';
import { makeCsr, tempDir } from '../../test/helpers/openssl.js';
import { isPkiError } from '../errors/pki-error.js';
import type { SigningKey } from '../keys/signing-key.js';
import { SoftwareKeystore } from '../keys/software-keystore.js';
import { CertificateAuthority, signerOf, signTbs } from './authority.js';
import { issuerFrom, type Issuer } from './issuer.js';
import { KeyStateGuard } from './key-guard.js';
import type { CertificateRepository } from './ports.js';
import { IssuanceToken, prepare, type IssueRequest } from './prepare.js';
import { cryptoRandom } from './serial.js';
import { keyIdOf } from './unlock.js';

let pki: TestPki;
let tmp: ReturnType<typeof tempDir>;
let issuer: Issuer;
let wrappedKey: SigningKey;
let csrPem: string;
const signer = { calls: 0, fail: false };
const t0 = new Date();

beforeAll(async () => {
  pki = await testPki();
  tmp = tempDir('trellis-authority-');
  const record = pki.instance.cas.find((c) => c.role === 'issuing')!;
  const real = await new SoftwareKeystore({ blobs: pki.instance.store.keyBlobs, passphrase: testPassphrase }).load(keyIdOf(record));
  const key: SigningKey = {
    keyId: real.keyId,
    algorithm: real.algorithm,
    spkiDer: real.spkiDer,
    publicKey: real.publicKey,
    async sign(data) {
      signer.calls++;
      if (signer.fail) throw new Error('the token was unplugged');
      return real.sign(data);
    },
  };
  wrappedKey = key;
  issuer = issuerFrom(record, key, { crlShards: pki.instance.config.crlShards });
  csrPem = (await makeCsr(tmp.dir, 'leaf', '/CN=ca.example.test', { sans: 'DNS:ca.example.test' })).csrPem;
}, 60_000);
afterAll(async () => {
  await pki?.close();
  tmp?.cleanup();
});

function authority(certificates: CertificateRepository = pki.instance.store.certificates): CertificateAuthority {
  const { instance } = pki;
  return new CertificateAuthority({
    certificates,
    audit: instance.audit,
    clock: instance.clock,
    urls: instance.urls,
    caSpkis: () => instance.caSpkis,
    caCertificates: () => instance.cas.map((c) => c.certDer),
    keyStates: new KeyStateGuard(instance.store.cas, instance.clock, 0),
  });
}

function request(tag: string): IssueRequest {
  return { ...pki.ra.checkRequest({ profile: 'server', csr: csrPem, requestedVia: 'cli', requestedBy: tag }).request };
}

const rowsOf = (tag: string) => pki.instance.store.certificates.findRequestedBy('cli', tag, t0, 10);
const eventsOf = async (type: string) => (await pki.instance.store.audit.range(0, 100_000)).filter((e) => e.type === type).map((e) => JSON.parse(e.data) as Record<string, unknown>);

describe('the issuance token', () => {
  test('gives its TBS once, and only to its own issuer', () => {
    const token = new IssuanceToken('issuing-1', Buffer.from('tbs'));
    expect(() => token.take('issuing-2')).toThrow('issuance token belongs to another issuer');
    expect(token.take('issuing-1')).toEqual(Buffer.from('tbs'));
    expect(() => token.take('issuing-1')).toThrow('issuance token already used');
  });
});

describe('signTbs', () => {
  test('refuses to hand out a certificate whose TBS is not the linted one', async () => {
    const ca = authority();
    const req = request('tbs-differs');
    const prepared = prepare(signerOf(issuer), ca.template(issuer, req.profile), req, pki.instance.clock, cryptoRandom);
    const altered = Buffer.from(prepared.lintCert.tbsDer);
    altered[altered.length - 1] ^= 1;
    const before = signer.calls;
    const err = await signTbs({ id: issuer.id, key: wrappedKey, signatureAlgorithm: issuer.signatureAlgorithm }, { ...prepared, lintCert: { ...prepared.lintCert, tbsDer: altered } }).catch((e: unknown) => e);
    expect(isPkiError(err, 'serverInternal')).toBe(true);
    expect((err as Error).message).toBe('signed TBS differs from the linted TBS');
    expect(signer.calls).toBe(before + 1);
  });
});

describe('CertificateAuthority.issue', () => {
  test('issues and records with the wrapped key (the fixture works)', async () => {
    const before = signer.calls;
    const issued = await authority().issue(issuer, request('fixture'));
    expect(signer.calls).toBe(before + 1);
    expect((await rowsOf('fixture')).map((r) => [r.serialHex, r.status])).toEqual([[issued.serialHex, 'valid']]);
  });

  test('an intent that cannot be recorded is never signed', async () => {
    const store = pki.instance.store.certificates;
    const failing: CertificateRepository = Object.assign(Object.create(store) as CertificateRepository, { insertIntents: () => Promise.reject(new Error('disk full')) });
    const before = signer.calls;
    await expect(authority(failing).issue(issuer, request('no-intent'))).rejects.toThrow('disk full');
    expect(signer.calls).toBe(before);
    expect(await rowsOf('no-intent')).toEqual([]);
  });

  test('a signature that fails leaves the row failed and audited, and hands nothing out', async () => {
    signer.fail = true;
    try {
      await expect(authority().issue(issuer, request('sign-fails'))).rejects.toThrow('the token was unplugged');
    } finally {
      signer.fail = false;
    }
    const rows = await rowsOf('sign-fails');
    expect(rows.map((r) => [r.status, r.der])).toEqual([['failed', null]]);
    expect(await eventsOf('certificate.sign_failed')).toContainEqual(expect.objectContaining({ issuer: issuer.id, serialHex: rows[0]!.serialHex }));
  });

  test('a key whose state forbids certificates signs nothing and records nothing', async () => {
    const { cas } = pki.instance.store;
    expect(await cas.transitionKey(issuer.id, 'active', 'suspended', { at: new Date(), actor: 'test' })).toBe(true);
    try {
      const before = signer.calls;
      const err = await authority().issue(issuer, request('suspended')).catch((e: unknown) => e);
      expect(isPkiError(err, 'forbidden')).toBe(true);
      expect((err as Error).message).toBe(`CA "${issuer.id}" cannot sign certificates: its key is suspended`);
      expect(signer.calls).toBe(before);
      expect(await rowsOf('suspended')).toEqual([]);
      // Nor CRLs: the CRL signer goes through the same check.
      await expect(authority().crlSigner(issuer).sign(Buffer.from('tbs'))).rejects.toThrow('cannot sign CRLs: its key is suspended');
      expect(signer.calls).toBe(before);
    } finally {
      expect(await cas.transitionKey(issuer.id, 'suspended', 'active', { at: new Date(), actor: 'test' })).toBe(true);
    }
  });
});
