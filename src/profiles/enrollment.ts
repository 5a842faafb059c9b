/**
 * Who may enroll under a profile. A profile lists the channels a client may
 * use (`enrollment: [api, acme, est]`); the operator's `trellis issue` (the
 * `cli` channel) may use any leaf profile. CA profiles and OCSP-signer
 * profiles are never enrollable by anyone: a CA certificate, or a delegated
 * responder certificate (OCSPSigning, usually with ocsp-nocheck), in a
 * client's hands lets it vouch for certificates the CA never issued or sign
 * "good" answers for revoked ones (RFC 6960 §4.2.2.2, §4.2.2.2.1). Trellis
 * makes those certificates itself: ceremonies and `cmd/held-certificates.ts`
 * go to the CA directly, not through the RA.
 */
import { PkiError } from '../errors/pki-error.js';
import type { Profile } from './types.js';

/** The fields that decide whether a profile can be enrolled at all; a profile file and a loaded profile both have them. */
export type EnrollmentShape = Pick<Profile, 'signer' | 'basicConstraints' | 'extendedKeyUsage'> & { ocspNoCheck?: boolean | undefined };

/** What kind of profile no client may ever enroll under, and why; null for an ordinary leaf profile. */
export function neverEnrollable(p: EnrollmentShape): { what: string; why: string } | null {
  if (p.basicConstraints.ca) return { what: 'a CA profile (basicConstraints.ca: true)', why: 'CA certificates come only from ceremonies' };
  const ocspSigning = p.extendedKeyUsage?.includes('OCSPSigning') ?? false;
  if (ocspSigning || p.ocspNoCheck) {
    return {
      what: `an OCSP signer profile (${ocspSigning ? 'extendedKeyUsage OCSPSigning' : 'ocspNoCheck: true'})`,
      why: 'its holder could sign "good" answers for revoked certificates; Trellis issues responder certificates itself',
    };
  }
  if (p.signer !== 'issuing') return { what: `a profile the root signs (signer: ${p.signer})`, why: 'the root signs only in ceremonies' };
  return null;
}

/**
 * Why the RA refuses a request under `profile` that came through `via`
 * (`requestedVia`: cli, api, acme, est, …), or null when it may go on:
 * badProfile for a never-enrollable profile (no caller and no configuration
 * can change that), forbidden for a channel the profile does not list.
 */
export function enrollmentRefusal(profile: Profile, via: string): PkiError | null {
  const never = neverEnrollable(profile);
  if (never) return new PkiError('badProfile', `profile "${profile.name}" is never enrollable: it is ${never.what}; ${never.why}`);
  if (via === 'cli') return null;
  if ((profile.enrollment as readonly string[]).includes(via)) return null;
  const listed = profile.enrollment.length > 0 ? `its enrollment lists ${profile.enrollment.join(', ')}` : 'its enrollment lists no channel';
  return new PkiError('forbidden', `profile "${profile.name}" cannot be enrolled through ${via} (${listed})`);
}
