import { describe, expect, test } from 'vitest';
import type { AuditLog } from '../audit/audit-log.js';
import type { CertificateRecord, CertificateRepository } from '../ca/ports.js';
import { fixedClock } from '../clock/clock.js';
import { RevocationAuthority } from './revoke.js';

/** One certificate, revoked or released in memory; the audit log refuses every write. */
function setup(status: 'valid' | 'revoked' = 'valid') {
  const cert = { issuerId: 'ca', serialHex: '0a', crlShard: 3, status, revocationReason: status === 'revoked' ? 6 : null } as unknown as CertificateRecord;
  const certificates = {
    findBySerialAnyIssuer: async () => [cert],
    revoke: async () => 'revoked',
    releaseHold: async () => 'released',
  } as unknown as CertificateRepository;
  const audit = { record: async () => Promise.reject(new Error('audit disk full')) } as unknown as AuditLog;
  const told: string[] = [];
  const ra = new RevocationAuthority({ certificates, audit, clock: fixedClock(new Date('2026-12-07T08:00:00Z')), listeners: [{ statusChanged: (i, s, n) => told.push(`${i}/${s}/${n}`) }] });
  return { ra, told };
}

describe('RevocationAuthority: listeners follow the committed change', () => {
  test('a revocation whose audit write fails still tells OCSP and the CRLs (the change is committed), and the error reaches the caller', async () => {
    const { ra, told } = setup();
    await expect(ra.revoke({ serialHex: '0A', reason: 'keyCompromise', by: 'admin', via: 'api' })).rejects.toThrow('audit disk full');
    expect(told).toEqual(['ca/0a/3']);
  });

  test('a lifted hold whose audit write fails is told too', async () => {
    const { ra, told } = setup('revoked');
    await expect(ra.revoke({ serialHex: '0a', reason: 'removeFromCRL', by: 'admin', via: 'cli' })).rejects.toThrow('audit disk full');
    expect(told).toEqual(['ca/0a/3']);
  });
});
