/**
 * Revocation (RFC 5280 §5.3.1 reasons). `certificateHold` suspends and can be
 * lifted with `removeFromCRL`; every other reason is final. The store update is
 * conditional, so concurrent revocations of one certificate cannot both win.
 */
import type { AuditLog } from '../audit/audit-log.js';
import type { CertificateRecord, CertificateRepository } from '../ca/ports.js';
import type { Clock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import { crlReasons, isCrlReasonName, type CrlReasonName } from '../pki/crl-reason.js';

/** Told about every status change so OCSP caches and CRL shards follow at once (other nodes poll the database). */
export interface RevocationListener {
  /** `changedAt`: the change's time as stored (revokedAt, holdReleasedAt), what statusChangedSince reads back. */
  statusChanged(issuerId: string, serialHex: string, crlShard: number, changedAt: Date): void;
}

export interface RevokeInput {
  serialHex: string;
  /** Needed only when two issuers used the same serial. */
  issuerId?: string;
  reason: string;
  invalidityDate?: Date;
  by: string;
  via: 'cli' | 'api' | 'acme' | 'est';
}

export interface RevokeResult {
  issuerId: string;
  serialHex: string;
  status: 'revoked' | 'valid';
  reason: CrlReasonName;
  revokedAt: Date | null;
}

/** Hex serial as stored: lower case, no colons, no leading zero octets. */
export function normaliseSerial(text: string): string {
  const hex = text.trim().replace(/^0x/i, '').replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{1,40}$/.test(hex)) throw new PkiError('malformed', `"${text}" is not a hexadecimal serial number`);
  const stripped = hex.replace(/^(00)+/, '');
  return stripped.length % 2 ? `0${stripped}` : stripped || '00';
}

export class RevocationAuthority {
  constructor(
    private readonly deps: { certificates: CertificateRepository; audit: AuditLog; clock: Clock; listeners?: RevocationListener[] },
  ) {}

  private async find(serialHex: string, issuerId?: string): Promise<CertificateRecord> {
    const all = (await this.deps.certificates.findBySerialAnyIssuer(serialHex)).filter((c) => !issuerId || c.issuerId === issuerId);
    if (all.length === 0) throw new PkiError('notFound', `no certificate with serial ${serialHex}${issuerId ? ` from ${issuerId}` : ''}`);
    if (all.length > 1) throw new PkiError('conflict', `serial ${serialHex} was used by several CAs (${all.map((c) => c.issuerId).join(', ')}); name one`);
    return all[0]!;
  }

  async revoke(input: RevokeInput): Promise<RevokeResult> {
    if (!isCrlReasonName(input.reason)) throw new PkiError('malformed', `unknown reason "${input.reason}" (one of ${Object.keys(crlReasons).join(', ')})`);
    const serialHex = normaliseSerial(input.serialHex);
    const cert = await this.find(serialHex, input.issuerId);
    const now = this.deps.clock.now();
    if (cert.status === 'pending' || cert.status === 'failed') throw new PkiError('notFound', `certificate ${serialHex} was never issued`);
    const reason = input.reason;
    switch (reason) {
      case 'removeFromCRL': {
        // Lifting a hold (RFC 5280 §5.3.1): only a certificate on hold comes back.
        const r = await this.deps.certificates.releaseHold(cert.issuerId, serialHex, now);
        if (r === 'notOnHold') throw new PkiError('malformed', `certificate ${serialHex} is not on hold; removeFromCRL only lifts a certificateHold`);
        if (r === 'notFound') throw new PkiError('notFound', `no certificate with serial ${serialHex}`);
        this.notify(cert, now);
        await this.deps.audit.record('certificate.hold_released', input.by, { issuer: cert.issuerId, serialHex, via: input.via });
        return { issuerId: cert.issuerId, serialHex, status: 'valid', reason, revokedAt: null };
      }
      case 'certificateHold':
        if (cert.status === 'revoked') throw new PkiError('alreadyRevoked', `certificate ${serialHex} is already revoked (${reasonOf(cert)})`);
        break;
      case 'unspecified':
      case 'keyCompromise':
      case 'cACompromise':
      case 'affiliationChanged':
      case 'superseded':
      case 'cessationOfOperation':
      case 'privilegeWithdrawn':
      case 'aACompromise':
        break;
    }
    if (input.invalidityDate && input.invalidityDate > now) throw new PkiError('malformed', 'invalidity date is in the future');
    const r = await this.deps.certificates.revoke(cert.issuerId, serialHex, { reason: crlReasons[reason], revokedAt: now, invalidityDate: input.invalidityDate ?? null, revokedBy: input.by });
    if (r === 'alreadyRevoked') throw new PkiError('alreadyRevoked', `certificate ${serialHex} is already revoked`);
    if (r === 'notFound') throw new PkiError('notFound', `no certificate with serial ${serialHex}`);
    this.notify(cert, now);
    await this.deps.audit.record('certificate.revoked', input.by, { issuer: cert.issuerId, serialHex, reason, invalidityDate: input.invalidityDate?.toISOString() ?? null, via: input.via });
    return { issuerId: cert.issuerId, serialHex, status: 'revoked', reason, revokedAt: now };
  }

  /** Tells the OCSP responder and the CRL publisher of a committed change at once, before its audit write (which may be slow or fail: the change stands). */
  private notify(cert: CertificateRecord, changedAt: Date): void {
    for (const l of this.deps.listeners ?? []) l.statusChanged(cert.issuerId, cert.serialHex, cert.crlShard, changedAt);
  }
}

function reasonOf(cert: CertificateRecord): string {
  return Object.entries(crlReasons).find(([, v]) => v === cert.revocationReason)?.[0] ?? 'unspecified';
}
