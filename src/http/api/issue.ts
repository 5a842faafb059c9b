/**
 * What `POST /api/v1/certificates` reads and answers: its body, who may
 * issue, and the forms of a 201. Shared by the express route
 * (certificates.ts) and serve's hot path (issue-hot.ts), which imports this
 * module alone: it loads neither express nor the rest of the API.
 */
import { z } from 'zod';
import type { IssuedCertificate } from '../../ca/authority.js';
import { toPem } from '../../pki/pem.js';
import type { Role } from '../../tokens/roles.js';
import { assertProfile } from '../../tokens/tokens.js';
import type { Principal } from '../auth.js';
import type { ApiDeps } from './deps.js';
import { caId, invalidInput } from './input.js';

export const issueBody = z
  .object({
    profile: z.string().min(1).max(64),
    csr: z.string().min(1),
    /** Issuing CA id (optional). */
    ca: caId.optional(),
    validitySeconds: z.number().int().positive().optional(),
  })
  .strict();

/** The body of `POST /api/v1/certificates`. */
export type IssueBody = z.infer<typeof issueBody>;

/** A parsed JSON value as {@link issueBody} reads it (the hot path, issue-hot.ts): the route's own schema and messages. */
export function issueBodyOf(json: unknown): IssueBody {
  const body = issueBody.safeParse(json);
  if (!body.success) throw invalidInput(body.error, 'body');
  return body.data;
}

/**
 * The PEM of the CA certificates above each issued certificate, encoded once
 * per chain: `IssuedCertificate.chainDer` is its issuer's own array (ca/issuer.ts),
 * the same for every certificate that CA signs, and never changed.
 */
const chainPems = new WeakMap<readonly Buffer[], string>();

/** PEM chain, leaf first (RFC 8555 §9.1 media type). */
export function pemChain(c: IssuedCertificate): string {
  let chain = chainPems.get(c.chainDer);
  if (chain === undefined) chainPems.set(c.chainDer, (chain = c.chainDer.map((d) => toPem('CERTIFICATE', d)).join('')));
  return toPem('CERTIFICATE', c.certDer) + chain;
}

/** Who may issue over the API: enrollment tokens (limited to their profiles), officers, administrators. */
export const issuers: readonly Role[] = ['enrollment', 'officer', 'administrator'];

/** Issues the certificate a parsed body asks for, for `principal` (an enrollment token: only its profiles). */
export function issueFor(ra: ApiDeps['ra'], principal: Principal, body: IssueBody): Promise<IssuedCertificate> {
  // A token limited to profiles; the RA then checks that the profile is enrollable over the API at all.
  assertProfile({ id: principal.id, profiles: principal.profiles && [...principal.profiles] }, body.profile);
  return ra.requestCertificate({
    profile: body.profile,
    csr: body.csr,
    ...(body.ca ? { issuer: body.ca } : {}),
    ...(body.validitySeconds ? { validitySeconds: body.validitySeconds } : {}),
    requestedVia: 'api',
    requestedBy: principal.id,
  });
}

/** The forms of a 201: the PEM chain (the default), the DER leaf, or a JSON summary with the chain. */
export type IssuedForm = 'pem' | 'der' | 'json';

/** The negotiated answer (req.accepts over the four types) as a form; nothing acceptable is the PEM chain. */
export const issuedFormOf = (accepted: string | false): IssuedForm => (accepted === 'application/pkix-cert' ? 'der' : accepted === 'application/json' ? 'json' : 'pem');

/** The body of a 201 and its Content-Type as express sends it (charset added to text). */
export function issuedAnswer(issued: IssuedCertificate, form: IssuedForm): { contentType: string; body: string | Buffer } {
  switch (form) {
    case 'der':
      return { contentType: 'application/pkix-cert', body: issued.certDer };
    case 'json':
      return {
        contentType: 'application/json; charset=utf-8',
        body: JSON.stringify({ serialHex: issued.serialHex, issuer: issued.issuerId, profile: issued.profile, notBefore: issued.notBefore, notAfter: issued.notAfter, chain: pemChain(issued) }),
      };
    case 'pem':
      return { contentType: 'application/pem-certificate-chain; charset=utf-8', body: pemChain(issued) };
  }
}
