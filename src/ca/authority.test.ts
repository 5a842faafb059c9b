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
import { buildCrl } from '../crl/build.js';
import type { CrlExpectations } from '../lint/crl.js';
import type { OcspExpectations } from '../lint/ocsp.js';
import { opensslRun } from '../../test/helpers/openssl.js';
import { toPem } from '../pki/pem.js';
import { encodeName } from '../pki/name.js';
import { parseCertificate } from '../pki/certificate.js';
import fs from 'node:fs';
import path from 'node:path';

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
  const ca = new CertificateAuthority({
    certificates,
    audit: instance.audit,
    clock: instance.clock,
    urls: instance.urls,
    caSpkis: () => instance.caSpkis,
    caCertificates: () => instance.cas.map((c) => c.certDer),
    keyStates: new KeyStateGuard(instance.store.cas, instance.clock, 0),
  });
  ca.hold(issuer);
  return ca;
}

function request(tag: string): IssueRequest {
  return { ...pki.ra.checkRequest({ profile: 'server', csr: csrPem, requestedVia: 'cli', requestedBy: tag }).request };
}

/** What a CRL of the issuing CA numbered `n` must say (the CA fills in its own name, key identifier and algorithm). */
const crlExpect = (n: bigint): CrlExpectations => ({ issuerDer: Buffer.from('not the CA'), signatureAlgorithm: Buffer.alloc(0), keyIdentifier: Buffer.alloc(0), crlNumber: n, idp: null, maxValiditySeconds: 86_400 });
const ocspExpect = (): OcspExpectations => ({ now: new Date(), responderKeyHash: Buffer.alloc(20), issuerHashes: {}, singles: [], maxValiditySeconds: 3600 });

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
    const issued = await authority().issue(issuer.id, request('fixture'));
    expect(signer.calls).toBe(before + 1);
    expect((await rowsOf('fixture')).map((r) => [r.serialHex, r.status])).toEqual([[issued.serialHex, 'valid']]);
  });

  test('the linted certificate is the signed TBS with an empty signature value, and the CA key signs once per certificate (no second, throwaway signature)', async () => {
    const ca = authority();
    const req = request('lint-tbs');
    const prepared = prepare(signerOf(issuer), ca.template(issuer, req.profile), req, pki.instance.clock, cryptoRandom);
    expect(prepared.lintCert.signature.length).toBe(0);
    expect(prepared.lintCert.signatureAlgorithm.der).toEqual(issuer.signatureAlgorithm);

    const before = signer.calls;
    const issued = await ca.issue(issuer.id, request('lint-tbs'));
    expect(signer.calls).toBe(before + 1);
    const [row] = await rowsOf('lint-tbs');
    const linted = parseCertificate(row!.lintDer);
    const signed = parseCertificate(issued.certDer);
    expect(linted.signature.length).toBe(0);
    expect(signed.tbsDer.equals(linted.tbsDer)).toBe(true);
    expect(signed.signature.length).toBeGreaterThan(0);
    // OpenSSL, the oracle: the issued certificate verifies under the issuing CA (its chain from the test PKI).
    const leaf = path.join(tmp.dir, 'lint-tbs.pem');
    fs.writeFileSync(leaf, toPem('CERTIFICATE', issued.certDer));
    const chain = path.join(tmp.dir, 'lint-tbs-chain.pem');
    fs.writeFileSync(chain, pki.instance.cas.map((c) => toPem('CERTIFICATE', c.certDer)).join(''));
    expect((await opensslRun(['verify', '-partial_chain', '-CAfile', chain, leaf])).stdout).toContain(': OK');
  });

  test("the completion settles 'committed' only when every request of its batch asks for it, else once on disk", async () => {
    const store = pki.instance.store.certificates;
    const settles: (string | undefined)[] = [];
    const recording: CertificateRepository = Object.assign(Object.create(store) as CertificateRepository, {
      completeMany: (...args: Parameters<CertificateRepository['completeMany']>) => {
        settles.push(args[2]);
        return store.completeMany(...args);
      },
    });
    const ca = authority(recording);
    const acme = (tag: string): IssueRequest => ({ ...request(tag), completionSettles: 'committed' });
    // Requests handed over in one turn form one batch.
    await Promise.all([ca.issue(issuer.id, acme('settle-a')), ca.issue(issuer.id, acme('settle-b'))]);
    await Promise.all([ca.issue(issuer.id, acme('settle-c')), ca.issue(issuer.id, request('settle-d'))]);
    await ca.issue(issuer.id, request('settle-e'));
    expect(settles).toEqual(['committed', 'durable', 'durable']);
    expect((await rowsOf('settle-c')).map((r) => r.status)).toEqual(['valid']);
  });

  test('an intent that cannot be recorded is never signed', async () => {
    const store = pki.instance.store.certificates;
    const failing: CertificateRepository = Object.assign(Object.create(store) as CertificateRepository, { insertIntents: () => Promise.reject(new Error('disk full')) });
    const before = signer.calls;
    await expect(authority(failing).issue(issuer.id, request('no-intent'))).rejects.toThrow('disk full');
    expect(signer.calls).toBe(before);
    expect(await rowsOf('no-intent')).toEqual([]);
  });

  test('a signature that fails leaves the row failed and audited, and hands nothing out', async () => {
    signer.fail = true;
    try {
      await expect(authority().issue(issuer.id, request('sign-fails'))).rejects.toThrow('the token was unplugged');
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
      const err = await authority().issue(issuer.id, request('suspended')).catch((e: unknown) => e);
      expect(isPkiError(err, 'forbidden')).toBe(true);
      expect((err as Error).message).toBe(`CA "${issuer.id}" cannot sign certificates: its key is suspended`);
      expect(signer.calls).toBe(before);
      expect(await rowsOf('suspended')).toEqual([]);
      // Nor CRLs: the CRL signer goes through the same check.
      await expect(authority().crlSigner(issuer.id).sign(Buffer.from('tbs'), crlExpect(1n))).rejects.toThrow('cannot sign CRLs: its key is suspended');
      expect(signer.calls).toBe(before);
    } finally {
      expect(await cas.transitionKey(issuer.id, 'suspended', 'active', { at: new Date(), actor: 'test' })).toBe(true);
    }
  });
});

describe('CertificateAuthority.signCrl and ocspSigner', () => {
  test('a CRL is linted, its intent recorded, then signed; openssl accepts it', async () => {
    const ca = authority();
    const before = signer.calls;
    const thisUpdate = new Date(Math.floor(Date.now() / 1000) * 1000);
    const content = { crlNumber: 4242n, thisUpdate, nextUpdate: new Date(thisUpdate.getTime() + 3600_000) };
    const { der } = await buildCrl(ca.crlSigner(issuer.id), content, []);
    expect(signer.calls).toBe(before + 1);
    const intent = (await eventsOf('crl.signing')).find((e) => e.crlNumber === '4242');
    expect(intent).toMatchObject({ ca: issuer.id, tbsSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const file = `${tmp.dir}/ca-signed.crl`;
    const fs = await import('node:fs');
    fs.writeFileSync(file, toPem('X509 CRL', der));
    fs.writeFileSync(`${tmp.dir}/issuing.pem`, toPem('CERTIFICATE', issuer.cert.der));
    const r = await opensslRun(['crl', '-in', file, '-CAfile', `${tmp.dir}/issuing.pem`, '-noout']);
    expect(r.stdout + r.stderr).toMatch(/verify OK/);
  });

  test('a CRL TBS that fails its lint is not signed, and the failure is audited', async () => {
    const before = signer.calls;
    const err = await authority().signCrl(issuer.id, Buffer.from('30020500', 'hex'), crlExpect(777n)).catch((e: unknown) => e);
    expect(isPkiError(err, 'lintFailed')).toBe(true);
    expect(signer.calls).toBe(before);
    expect(await eventsOf('crl.lint_failed')).toContainEqual(expect.objectContaining({ ca: issuer.id, crlNumber: '777' }));
    expect((await eventsOf('crl.signing')).some((e) => e.crlNumber === '777')).toBe(false);
  });

  test('the CA, not the caller, says whose CRL it is: a TBS under another name fails even when the caller expects that name', async () => {
    const ca = authority();
    const foreign = { ...ca.crlSigner(issuer.id), subjectDer: encodeName({ CN: 'Someone Else' }) };
    const before = signer.calls;
    const thisUpdate = new Date(Math.floor(Date.now() / 1000) * 1000);
    const err = await buildCrl(foreign, { crlNumber: 778n, thisUpdate, nextUpdate: new Date(thisUpdate.getTime() + 3600_000) }, []).catch((e: unknown) => e);
    expect(isPkiError(err, 'lintFailed')).toBe(true);
    expect((err as Error).message).toMatch(/e_crl_issuer_name_mismatch/);
    expect(signer.calls).toBe(before);
  });

  test('an OCSP response is linted before it is signed; failures are audited at most once a minute per CA', async () => {
    const ca = authority();
    const ocsp = ca.ocspSigner(issuer.id, issuer.cert.der, wrappedKey);
    const before = signer.calls;
    const audited = (await eventsOf('ocsp.lint_failed')).length;
    for (let i = 0; i < 3; i++) await expect(ocsp.sign(Buffer.from('30020500', 'hex'), ocspExpect())).rejects.toThrow(/OCSP response lint failed/);
    expect(signer.calls).toBe(before);
    expect((await eventsOf('ocsp.lint_failed')).length).toBe(audited + 1);
  });

  test('a suspended key signs neither CRLs nor OCSP responses, before any lint', async () => {
    const { cas } = pki.instance.store;
    expect(await cas.transitionKey(issuer.id, 'active', 'suspended', { at: new Date(), actor: 'test' })).toBe(true);
    try {
      const ca = authority();
      await expect(ca.ocspSigner(issuer.id, issuer.cert.der, wrappedKey).sign(Buffer.from('tbs'), ocspExpect())).rejects.toThrow('cannot sign OCSP responses: its key is suspended');
      await expect(ca.signCrl(issuer.id, Buffer.from('tbs'), crlExpect(2n))).rejects.toThrow('cannot sign CRLs: its key is suspended');
    } finally {
      expect(await cas.transitionKey(issuer.id, 'suspended', 'active', { at: new Date(), actor: 'test' })).toBe(true);
    }
  });

  test('only a CA this authority holds signs', async () => {
    const ca = authority();
    await expect(ca.issue('issuing-9', request('not-held'))).rejects.toThrow('CA "issuing-9" is not unlocked here');
    expect(() => ca.crlSigner('issuing-9')).toThrow('CA "issuing-9" is not unlocked here');
    // An Issuer object not built around an unlocked key is refused.
    expect(() => ca.hold({ ...issuer })).toThrow(`CA "${issuer.id}" is not unlocked`);
  });
});
