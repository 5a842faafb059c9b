import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { deviceProfile, serverProfile } from '../../test/helpers/profiles.js';
import { isPkiError, type ErrorType } from '../errors/pki-error.js';
import { parseCsr, type ParsedCsr } from '../pki/csr.js';
import type { Profile } from '../profiles/types.js';
import { validityFor } from '../ca/prepare.js';
import { minValiditySeconds, requestFromCsr } from './csr-request.js';

const csr = (name: string) => parseCsr(fs.readFileSync(path.join(import.meta.dirname, '../../test/fixtures/csr', name)));
const meta = { requestedVia: 'api' as const, requestedBy: 'test' };

function refusal(fn: () => unknown): { type: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (isPkiError(err)) return { type: err.type, message: err.message };
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('requestFromCsr', () => {
  test('accepts: server CSR; CN kept and already among the SANs', () => {
    const r = requestFromCsr(csr('p256-server.csr'), serverProfile, meta, []);
    expect(r.subject).toEqual({ CN: 'www.example.test' });
    expect(r.sans.map((s) => s.value)).toEqual(['www.example.test', 'api.example.test', '192.0.2.10']);
  });

  test('accepts: device CSR; id from CN goes to serialNumber and a URI SAN, O fixed by the profile', () => {
    const r = requestFromCsr(csr('p256-device.csr'), deviceProfile, meta, []);
    expect(r.subject).toEqual({ CN: 'device-0001', serialNumber: 'device-0001', O: 'Devices' });
    expect(r.sans).toEqual([{ type: 'uri', value: 'urn:dev:trellis:device-0001' }]);
  });

  const p384Only: Profile = { ...serverProfile, keys: { ecdsa: ['P-384'] } };
  test.each<[string, string, Profile, ErrorType, RegExp]>([
    ['rejects: RSA key under 2048 bits', 'rsa1024.csr', serverProfile, 'badPublicKey', /at least 2048/],
    ['rejects: RSA public exponent 3', 'rsa-e3.csr', serverProfile, 'badPublicKey', /exponent 3/],
    ['rejects: P-192 key', 'p192.csr', serverProfile, 'badPublicKey', /P-192.*allowed curves: P-256, P-384/],
    ['rejects: curve not in the profile', 'p256-server.csr', p384Only, 'badPublicKey', /allowed curves: P-384/],
    ['rejects: RSA when the profile has none', 'rsa2048-server.csr', p384Only, 'badPublicKey', /RSA keys are not allowed/],
    ['rejects: Ed25519 when the profile has none', 'ed25519-server.csr', p384Only, 'badPublicKey', /Ed25519 keys are not allowed/],
    ['rejects: a CA request', 'ca-request.csr', serverProfile, 'badCSR', /CA certificate/],
    ['rejects: a SAN type the profile forbids (email)', 'email-san.csr', serverProfile, 'rejectedIdentifier', /email addresses are not allowed/],
    ['rejects: otherName SAN', 'othername-san.csr', serverProfile, 'rejectedIdentifier', /otherName is not allowed/],
    ['rejects: subject attribute the profile does not allow', 'p256-client.csr', serverProfile, 'badCSR', /attribute O is not allowed/],
    ['rejects: emailAddress in the subject', 'email-subject.csr', serverProfile, 'badCSR', /emailAddress is not supported/],
    ['rejects: SAN outside the DNS patterns', 'rsa2048-server.csr', { ...serverProfile, san: { ...serverProfile.san, dns: { patterns: ['^only\\.example\\.test$'], allowWildcard: false } } }, 'rejectedIdentifier', /does not match/],
    ['rejects: too many SANs', 'p256-server.csr', { ...serverProfile, san: { ...serverProfile.san, maxNames: 2 } }, 'rejectedIdentifier', /exceed the limit of 2/],
    ['rejects: IP outside the ranges', 'p256-server.csr', { ...serverProfile, san: { ...serverProfile.san, ip: { cidrs: ['10.0.0.0/8'] } } }, 'rejectedIdentifier', /outside the profile's ranges/],
    ['rejects: IP SANs not allowed at all', 'p256-server.csr', { ...serverProfile, san: { ...serverProfile.san, ip: undefined } }, 'rejectedIdentifier', /IP addresses are not allowed/],
    ['rejects: no SAN where required', 'p256-client.csr', { ...serverProfile, subject: { fixed: {}, allowed: ['CN', 'O', 'OU'], required: [] }, san: { ...serverProfile.san, dns: undefined } }, 'rejectedIdentifier', /at least one subject alternative name/],
    ['rejects: required subject attribute missing', 'p256-server.csr', { ...serverProfile, subject: { fixed: {}, allowed: ['CN', 'O'], required: ['O'] } }, 'badCSR', /requires subject O/],
  ])('%s', (_name, file, profile, type, message) => {
    const r = refusal(() => requestFromCsr(csr(file), profile, meta, []));
    expect(r.type).toBe(type);
    expect(r.message).toMatch(message);
  });

  test("rejects: a CA's own key", () => {
    const c = csr('p256-server.csr');
    expect(refusal(() => requestFromCsr(c, serverProfile, meta, [c.spkiDer])).message).toMatch(/public key of a CA/);
  });

  test('rejects: device id not matching the pattern', () => {
    const p: Profile = { ...deviceProfile, deviceId: { ...deviceProfile.deviceId!, pattern: '^dev-[0-9]+$' } };
    expect(refusal(() => requestFromCsr(csr('p256-device.csr'), p, meta, [])).message).toMatch(/device id "device-0001" does not match/);
  });

  test('rejects: wildcard when not allowed, accepts when allowed', async () => {
    const { makeCsr, tempDir } = await import('../../test/helpers/openssl.js');
    const t = tempDir();
    try {
      const { csrPem } = await makeCsr(t.dir, 'w', '/CN=*.example.test');
      expect(refusal(() => requestFromCsr(parseCsr(csrPem), serverProfile, meta, [])).message).toMatch(/wildcard names are not allowed/);
      const wild: Profile = { ...serverProfile, san: { ...serverProfile.san, dns: { patterns: ['\\.example\\.test$'], allowWildcard: true } } };
      expect(requestFromCsr(parseCsr(csrPem), wild, meta, []).sans).toEqual([{ type: 'dns', value: '*.example.test' }]);
    } finally {
      t.cleanup();
    }
  });
});

describe('names that are addresses in disguise: refused in every profile', () => {
  // A profile that would take any name and any address: the refusal is not a profile's choice.
  const anything: Profile = { ...serverProfile, san: { ...serverProfile.san, maxNames: 10, dns: { patterns: ['.*'], allowWildcard: true }, ip: { cidrs: ['0.0.0.0/0', '::/0'] } } };
  const withSans = (sans: ParsedCsr['sans'], subject: ParsedCsr['subject'] = []): ParsedCsr => ({ ...csr('p256-server.csr'), subject, sans });

  test.each(['127.1', '2130706433', '0x7f.1', '1.2.3.4.5', '*.10'])('rejects: DNS SAN %s (badCSR, naming the rule)', (name) => {
    const r = refusal(() => requestFromCsr(withSans([{ type: 'dns', value: 'ok.example.test' }, { type: 'dns', value: name }]), anything, meta, []));
    expect(r.type).toBe('badCSR');
    expect(r.message).toContain(`"${name}"`);
    expect(r.message).toMatch(/IPv4 address/);
  });

  test('rejects: a numeric common name, which the RA would fold into the SANs', () => {
    const r = refusal(() => requestFromCsr(withSans([], [{ type: 'CN', value: '2130706433' }]), anything, meta, []));
    expect(r.type).toBe('badCSR');
    expect(r.message).toContain('"2130706433"');
  });

  test.each(['0.0.0.0', '::'])('rejects: IP SAN %s, the unspecified address (badCSR)', (ip) => {
    const r = refusal(() => requestFromCsr(withSans([{ type: 'ip', value: ip }]), anything, meta, []));
    expect(r.type).toBe('badCSR');
    expect(r.message).toMatch(/unspecified/);
  });

  test('accepts: names with digits that are names (a1.example, 1a.example, an IDN), and ordinary addresses', () => {
    const sans = [{ type: 'dns' as const, value: 'a1.example' }, { type: 'dns' as const, value: '1a.example' }, { type: 'dns' as const, value: 'xn--80ak6aa92e.com' }, { type: 'ip' as const, value: '192.0.2.1' }];
    expect(requestFromCsr(withSans(sans), anything, meta, []).sans).toEqual(sans);
  });
});

describe('requested validity', () => {
  // serverProfile backdates notBefore by 300 s and counts the lifetime from there.
  test('the minimum is backdate + 2 s', () => {
    expect(minValiditySeconds(serverProfile)).toBe(302);
    expect(minValiditySeconds({ ...serverProfile, validity: { ...serverProfile.validity, backdateSeconds: 0 } })).toBe(2);
  });

  test.each([1, 2, 60, 301])('rejects: validitySeconds %i (malformed, naming the minimum)', (validitySeconds) => {
    const r = refusal(() => requestFromCsr(csr('p256-server.csr'), serverProfile, { ...meta, validitySeconds }, []));
    expect(r.type).toBe('malformed');
    expect(r.message).toMatch(/at least 302 seconds/);
    expect(r.message).toMatch(/backdate/);
  });

  test('accepts: the minimum, and more than the maximum (clipped by the CA)', () => {
    expect(requestFromCsr(csr('p256-server.csr'), serverProfile, { ...meta, validitySeconds: 302 }, []).validitySeconds).toBe(302);
    expect(requestFromCsr(csr('p256-server.csr'), serverProfile, { ...meta, validitySeconds: 10 ** 9 }, []).validitySeconds).toBe(10 ** 9);
  });

  test('why: at the minimum the CA\'s validity passes e_validity_invalid and is not expired when issued; one second less fails, at some instant', () => {
    const min = minValiditySeconds(serverProfile);
    for (const nowText of ['2026-03-01T12:00:00.000Z', '2026-03-01T12:00:00.999Z']) {
      const now = new Date(nowText);
      const v = validityFor(serverProfile, now, min, null);
      expect(v.notAfter.getTime()).toBeGreaterThan(v.notBefore.getTime());
      expect(v.notAfter.getTime()).toBeGreaterThanOrEqual(now.getTime());
    }
    const late = new Date('2026-03-01T12:00:00.999Z');
    const short = validityFor(serverProfile, late, min - 1, null);
    expect(short.notAfter.getTime()).toBeLessThan(late.getTime());
    const noBackdate = { ...serverProfile, validity: { ...serverProfile.validity, backdateSeconds: 0 } };
    const one = validityFor(noBackdate, late, 1, null);
    expect(one.notAfter.getTime()).toBe(one.notBefore.getTime());
  });
});
