import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { deviceProfile, serverProfile } from '../../test/helpers/profiles.js';
import { isPkiError, type ErrorType } from '../errors/pki-error.js';
import { parseCsr } from '../pki/csr.js';
import type { Profile } from '../profiles/types.js';
import { requestFromCsr } from './csr-request.js';

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
