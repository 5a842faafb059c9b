/**
 * Certifying an existing CA key again: a renewal (same key and subject, new
 * serial and validity, from its parent or a new one) and the cross
 * certificates of a root rollover. The request carries the CA's own subject,
 * public key and path length, so only the issuer, serial and validity change.
 */
import { createPublicKey } from 'node:crypto';
import { PkiError } from '../errors/pki-error.js';
import { findExtension, parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { decodeBasicConstraints } from '../pki/extensions.js';
import { isAttributeOid, nameOrder, type NameValues } from '../pki/name.js';
import { OID } from '../pki/oids.js';
import { describeKey } from '../pki/public-key.js';
import type { Profile } from '../profiles/types.js';
import type { IssueRequest } from './prepare.js';

/** The subject of a certificate as {@link NameValues}; refuses a name the encoder would not write back the same (repeated or unknown attributes). */
export function subjectValuesOf(cert: ParsedCertificate): NameValues {
  const out: Record<string, string> = {};
  for (const e of cert.subject) {
    if (!(nameOrder as readonly string[]).includes(e.type) && !isAttributeOid(e.type)) throw new PkiError('badProfile', `subject attribute ${e.type} of "${e.value}" cannot be certified again`);
    if (e.type in out) throw new PkiError('badProfile', `subject has ${e.type} twice; it cannot be certified again under the same name`);
    out[e.type] = e.value;
  }
  return out as NameValues;
}

/**
 * A request certifying the key of the CA certificate `certDer` again, under
 * the same subject and path length (RFC 5280 §4.2.1.9), with the CA profile
 * `profile` (its key usages, URLs and validity bounds).
 */
export function caRecertificationRequest(certDer: Buffer, profile: Profile, opts: { validitySeconds?: number | undefined; actor: string }): IssueRequest {
  if (!profile.basicConstraints.ca) throw new PkiError('badProfile', `profile "${profile.name}" is not a CA profile`);
  const cert = parseCertificate(certDer);
  const bc = findExtension(cert, OID.basicConstraints);
  const decoded = bc ? decodeBasicConstraints(bc.valueDer) : undefined;
  if (!decoded?.ca) throw new PkiError('malformed', 'the certificate to certify again is not a CA certificate');
  const basicConstraints = decoded.pathLen === undefined ? { ca: true } : { ca: true, pathLen: decoded.pathLen };
  return {
    profile: { ...profile, basicConstraints },
    subject: subjectValuesOf(cert),
    sans: [],
    spkiDer: cert.spkiDer,
    keyInfo: describeKey(createPublicKey({ key: cert.spkiDer, format: 'der', type: 'spki' })),
    ...(opts.validitySeconds ? { validitySeconds: opts.validitySeconds } : {}),
    requestedVia: 'ceremony',
    requestedBy: opts.actor,
  };
}
