/** The registration authority: the one entry point for certificate requests (CLI, REST API, later ACME and EST). */
import type { CertificateAuthority, IssuedCertificate } from '../ca/authority.js';
import type { Issuer } from '../ca/issuer.js';
import type { IssueRequest } from '../ca/prepare.js';
import { PkiError } from '../errors/pki-error.js';
import { parseCsr } from '../pki/csr.js';
import { enrollmentRefusal } from '../profiles/enrollment.js';
import type { Profile } from '../profiles/types.js';
import { requestFromCsr, type RequestMeta } from './csr-request.js';

/** Chooses the CA that signs for a profile. */
export interface IssuerDirectory {
  /** The issuer named `id`, or the one configured for the profile, or the default issuing CA. */
  issuerFor(profile: Profile, id?: string): Issuer;
  /** SPKIs of all CAs (requests using them are refused). */
  caSpkis(): readonly Buffer[];
}

export interface CertificateRequestInput extends RequestMeta {
  profile: string;
  /** PEM or DER PKCS#10. */
  csr: Buffer | string;
  /** Issuing CA id; default chosen by the directory. */
  issuer?: string;
}

/** A request the RA accepted, and the CA that will sign it. */
export interface CheckedRequest {
  issuer: Issuer;
  request: IssueRequest;
}

export class RegistrationAuthority {
  constructor(
    private readonly deps: { ca: CertificateAuthority; profiles: ReadonlyMap<string, Profile>; issuers: IssuerDirectory },
  ) {}

  /** Checks a CSR against a leaf profile and has the CA issue it. */
  async requestCertificate(input: CertificateRequestInput): Promise<IssuedCertificate> {
    return this.issue(this.checkRequest(input));
  }

  /** Every RA check of {@link requestCertificate}, without issuing: the request the CA would get. */
  checkRequest(input: CertificateRequestInput): CheckedRequest {
    const profile = this.deps.profiles.get(input.profile);
    if (!profile) throw new PkiError('badProfile', `unknown profile "${input.profile}" (known: ${[...this.deps.profiles.keys()].join(', ')})`);
    // Who may enroll: never under a CA or OCSP-signer profile (badProfile, whoever asks, the CLI included);
    // through api/acme/est only when the profile lists that channel (forbidden); the operator's CLI under any other leaf profile.
    const refusal = enrollmentRefusal(profile, input.requestedVia);
    if (refusal) throw refusal;
    const issuer = this.deps.issuers.issuerFor(profile, input.issuer);
    const csr = parseCsr(input.csr);
    return { issuer, request: requestFromCsr(csr, profile, input, this.deps.issuers.caSpkis()) };
  }

  /** Has the CA issue a request that passed {@link checkRequest} (the CA checks it again). */
  issue(checked: CheckedRequest): Promise<IssuedCertificate> {
    return this.deps.ca.issue(checked.issuer.id, checked.request);
  }
}
