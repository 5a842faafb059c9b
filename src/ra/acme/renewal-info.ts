/**
 * ACME Renewal Information (RFC 9773). A certificate is named by its ARI
 * certificate identifier, base64url(AKI keyIdentifier) "." base64url(serial
 * INTEGER content octets) (§4.1). Its suggested window is the middle of the
 * last third of its life unless an operator pulled it forward; a revoked
 * certificate should be replaced at once, so its window lies in the past.
 */
import { PkiError } from '../../errors/pki-error.js';

/** A certificate as ARI needs it. */
export interface RenewalSubject {
  notBefore: Date;
  notAfter: Date;
  revoked: boolean;
}

export interface RenewalWindow {
  start: Date;
  end: Date;
}

/** `serialHex` as stored (no leading zero octets) to the INTEGER's content octets. */
function serialContent(serialHex: string): Buffer {
  const b = Buffer.from(serialHex.length % 2 ? `0${serialHex}` : serialHex, 'hex');
  return b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
}

/** The ARI certificate identifier of a certificate. */
export function ariCertId(issuerKeyIdHex: string, serialHex: string): string {
  return `${Buffer.from(issuerKeyIdHex, 'hex').toString('base64url')}.${serialContent(serialHex).toString('base64url')}`;
}

/** Parses an ARI certificate identifier into the issuer key id and serial (hex, as stored); `malformed` otherwise. */
export function parseAriCertId(text: string): { issuerKeyIdHex: string; serialHex: string } {
  const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(text);
  if (!m) throw new PkiError('malformed', 'an ARI certificate identifier is base64url(AKI keyIdentifier) "." base64url(serial)');
  const aki = Buffer.from(m[1]!, 'base64url');
  const serial = Buffer.from(m[2]!, 'base64url');
  // Base64url that does not round-trip hides a different value behind the same bytes.
  if (aki.toString('base64url') !== m[1] || serial.toString('base64url') !== m[2]) throw new PkiError('malformed', 'ARI certificate identifier is not canonical base64url');
  if (serial.length === 0 || serial.length > 21 || serial[0]! & 0x80 || (serial.length > 1 && serial[0] === 0 && !(serial[1]! & 0x80))) {
    throw new PkiError('malformed', 'the serial part of the ARI certificate identifier is not a positive DER INTEGER');
  }
  const hex = serial.toString('hex').replace(/^(00)+/, '');
  return { issuerKeyIdHex: aki.toString('hex'), serialHex: hex || '00' };
}

/** The default window: from two thirds to five sixths of the validity period. */
export function suggestedWindow(cert: RenewalSubject, override: RenewalWindow | null, now: Date): RenewalWindow {
  if (cert.revoked) return { start: new Date(now.getTime() - 2 * 3600_000), end: new Date(now.getTime() - 3600_000) };
  if (override) return override;
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  return { start: new Date(cert.notBefore.getTime() + (life * 2) / 3), end: new Date(cert.notBefore.getTime() + (life * 5) / 6) };
}
