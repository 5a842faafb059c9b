/** Revocation through the CLI and the API: reasons, hold and release, twice, unknown, roles; audited. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { RevocationAuthority } from '../../src/ra/revoke.js';
import { createToken } from '../../src/tokens/tokens.js';
import { isPkiError } from '../../src/errors/pki-error.js';
import { makeCsr } from '../helpers/openssl.js';
import { refusal } from '../helpers/errors.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let ra: RevocationAuthority;
beforeAll(async () => {
  pki = await testPki();
  ra = new RevocationAuthority({ certificates: pki.instance.store.certificates, audit: pki.instance.audit, clock: pki.instance.clock });
});
afterAll(() => pki?.close());

async function leaf(name: string) {
  const { csrPem } = await makeCsr(pki.dir, name, `/serialNumber=${name}`);
  return pki.issue('device', csrPem, name);
}

describe('revocation', () => {
  test('keyCompromise with an invalidity date is recorded and audited; a second revocation is alreadyRevoked', async () => {
    const c = await leaf('rv-1');
    const invalid = new Date(Date.now() - 3600_000);
    const r = await ra.revoke({ serialHex: c.serialHex.toUpperCase(), reason: 'keyCompromise', invalidityDate: invalid, by: 'test', via: 'cli' });
    expect(r).toMatchObject({ status: 'revoked', reason: 'keyCompromise', serialHex: c.serialHex });
    const rec = await pki.instance.store.certificates.findBySerial(c.issuerId, c.serialHex);
    expect(rec).toMatchObject({ status: 'revoked', revocationReason: 1, revokedBy: 'test' });
    expect(rec!.invalidityDate!.getTime()).toBe(Math.floor(invalid.getTime()));
    expect((await refusal(ra.revoke({ serialHex: c.serialHex, reason: 'superseded', by: 't', via: 'cli' }))).type).toBe('alreadyRevoked');
    const last = await pki.instance.store.audit.last();
    expect(last?.type).toBe('certificate.revoked');
  });

  test('certificateHold can be lifted with removeFromCRL, or made final', async () => {
    const c = await leaf('rv-2');
    await ra.revoke({ serialHex: c.serialHex, reason: 'certificateHold', by: 't', via: 'cli' });
    expect((await refusal(ra.revoke({ serialHex: c.serialHex, reason: 'certificateHold', by: 't', via: 'cli' }))).type).toBe('alreadyRevoked');
    const lifted = await ra.revoke({ serialHex: c.serialHex, reason: 'removeFromCRL', by: 't', via: 'cli' });
    expect(lifted.status).toBe('valid');
    const rec = await pki.instance.store.certificates.findBySerial(c.issuerId, c.serialHex);
    expect(rec).toMatchObject({ status: 'valid', revokedAt: null });
    expect(rec!.holdReleasedAt).toBeInstanceOf(Date);
    // removeFromCRL on a certificate that is not on hold is refused
    expect((await refusal(ra.revoke({ serialHex: c.serialHex, reason: 'removeFromCRL', by: 't', via: 'cli' }))).message).toMatch(/not on hold/);
    // hold, then final
    await ra.revoke({ serialHex: c.serialHex, reason: 'certificateHold', by: 't', via: 'cli' });
    await ra.revoke({ serialHex: c.serialHex, reason: 'cessationOfOperation', by: 't', via: 'cli' });
    expect(await pki.instance.store.certificates.findBySerial(c.issuerId, c.serialHex)).toMatchObject({ status: 'revoked', revocationReason: 5 });
  });

  test('concurrent revocations of one certificate: exactly one wins', async () => {
    const c = await leaf('rv-3');
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => ra.revoke({ serialHex: c.serialHex, reason: 'superseded', by: 't', via: 'api' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected' && isPkiError(r.reason, 'alreadyRevoked'))).toHaveLength(9);
  });

  test.each([
    ['an unknown serial', { serialHex: '4abcdef0123456789abcdef012345678', reason: 'keyCompromise' }, 'notFound'],
    ['a serial that is not hex', { serialHex: 'zz-top', reason: 'keyCompromise' }, 'malformed'],
    ['an unknown reason', { serialHex: '4abcdef0123456789abcdef012345678', reason: 'tired' }, 'malformed'],
  ] as const)('refuses %s', async (_n, input, type) => {
    expect((await refusal(ra.revoke({ ...input, by: 't', via: 'cli' }))).type).toBe(type);
  });

  describe('POST /api/v1/certificates/{serial}/revoke', () => {
    let server: Serving;
    let admin: string;
    let issuer: string;
    beforeAll(async () => {
      admin = (await createToken(pki.instance.store.tokens, 'admin', 'a')).secret;
      issuer = (await createToken(pki.instance.store.tokens, 'issuer', 'i')).secret;
      server = await serve({ dataDir: pki.dataDir, port: 0, passphrase: testPassphrase, log: silentLogger });
    });
    afterAll(() => server?.close());
    const post = (serial: string, token: string, body: unknown) =>
      fetch(`${server.url}/api/v1/certificates/${serial}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

    test('admin revokes; the answer says when OCSP and CRLs follow', async () => {
      const c = await leaf('rv-api');
      const res = await post(c.serialHex, admin, { reason: 'keyCompromise' });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'revoked', reason: 'keyCompromise', ocspWithinSeconds: 5, crlWithinSeconds: 60 });
      const again = await post(c.serialHex, admin, { reason: 'keyCompromise' });
      expect(again.status).toBe(400);
      expect(((await again.json()) as { type: string }).type).toBe('urn:trellis:problem:alreadyRevoked');
    });

    test.each([
      ['an issuer token', 'issuer', { reason: 'keyCompromise' }, 403, 'forbidden'],
      ['an unknown serial', 'admin', { reason: 'keyCompromise' }, 404, 'notFound'],
      ['an unknown field', 'admin', { reason: 'keyCompromise', extra: true }, 400, 'malformed'],
      ['a bad invalidity date', 'admin', { reason: 'keyCompromise', invalidityDate: 'yesterday' }, 400, 'malformed'],
    ] as const)('refuses %s', async (_n, who, body, status, type) => {
      const res = await post('4abcdef0123456789abcdef012345678', who === 'admin' ? admin : issuer, body);
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/problem\+json/);
      expect(((await res.json()) as { type: string }).type).toBe(`urn:trellis:problem:${type}`);
    });
  });
});
