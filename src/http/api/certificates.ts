/** /api/v1/certificates: list with filters, one certificate, issue (its body and answers: issue.ts), revoke. */
import { z } from 'zod';
import { PkiError } from '../../errors/pki-error.js';
import { crlReasonName } from '../../pki/crl-reason.js';
import { toPem } from '../../pki/pem.js';
import type { CertificateListRow } from '../../store/admin-queries.js';
import { operators, readers } from '../../tokens/roles.js';
import type { ApiDeps } from './deps.js';
import { certificateDetailSchema, certificateStatuses, certificateSummarySchema } from './schemas.js';
import { caId } from './input.js';
import { cursors, listOf, pageOf, paging, route, type ApiRoute } from './table.js';
import { issueBody, issueFor, issuedAnswer, issuedFormOf, issuers } from './issue.js';
import { certificateText } from './certificate-text.js';

const serialParam = z.string().regex(/^[0-9a-fA-F]{1,40}$/);
const isoTime = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

const listQuery = z
  .object({
    profile: z.string().min(1).max(64).optional(),
    ca: caId.optional(),
    status: z.enum(certificateStatuses).optional(),
    expiresAfter: isoTime.optional(),
    expiresBefore: isoTime.optional(),
    q: z
      .string()
      .min(1)
      .max(256)
      .regex(/^(?![^%\\"]*[%\\"])[\p{L}\p{M}\p{N}\p{P}\p{S} ]+$/u, 'letters, digits, punctuation and spaces only (no %, \\ or ")')
      .optional(),
    ...paging,
  })
  .strict();

const revokeBody = z
  .object({
    reason: z.string().min(1).max(32).default('unspecified'),
    invalidityDate: z.iso.datetime({ offset: true }).optional(),
    /** Issuing CA id, only needed when two CAs used the same serial. */
    ca: caId.optional(),
  })
  .strict();

const iso = (d: Date | null): string | null => d?.toISOString() ?? null;

/** The SAN values of the stored JSON column ([{type, value}]). */
function sanValues(json: string): string[] {
  const parsed = JSON.parse(json) as { value?: unknown }[];
  return Array.isArray(parsed) ? parsed.map((s) => String(s.value)) : [];
}

/** A row as the API shows it (`expired`: a valid certificate past notAfter). */
export function certificateSummary(r: CertificateListRow, now: Date): z.infer<typeof certificateSummarySchema> {
  const status = r.status === 'valid' && r.notAfter.getTime() <= now.getTime() ? 'expired' : r.status;
  return {
    serial: r.serialHex,
    ca: r.issuerId,
    profile: r.profile,
    subject: r.subject,
    sans: sanValues(r.sans),
    notBefore: r.notBefore.toISOString(),
    notAfter: r.notAfter.toISOString(),
    status,
    revokedAt: iso(r.revokedAt),
    revocationReason: r.revocationReason === null ? null : (crlReasonName(r.revocationReason) ?? String(r.revocationReason)),
    requestedVia: r.requestedVia,
    requestedBy: r.requestedBy,
    deviceId: r.deviceId,
    issuedAt: iso(r.issuedAt),
  };
}

export function certificateRoutes(deps: ApiDeps): ApiRoute[] {
  return [
    route<z.infer<typeof listQuery>>({
      method: 'get',
      path: '/api/v1/certificates',
      id: 'listCertificates',
      tag: 'certificates',
      roles: readers,
      summary: 'Certificates, newest first; filters combine (AND). q: a serial (exact or prefix), or a substring of the subject or of a SAN.',
      query: listQuery,
      response: { status: 200, description: 'a page of certificates', schema: listOf(certificateSummarySchema) },
      errors: { 400: 'a bad filter, limit or cursor' },
      async handler({ res, query }) {
        const now = deps.clock.now();
        const beforeId = query.cursor === undefined ? undefined : cursors.decode(query.cursor, (k) => (/^[1-9][0-9]{0,15}$/.test(k) ? Number(k) : undefined));
        const rows = await deps.queries.certificates({
          ...(query.ca ? { issuerId: query.ca } : {}),
          ...(query.profile ? { profile: query.profile } : {}),
          ...(query.status ? { status: query.status } : {}),
          ...(query.expiresAfter ? { expiresAfter: query.expiresAfter } : {}),
          ...(query.expiresBefore ? { expiresBefore: query.expiresBefore } : {}),
          ...(query.q ? { q: query.q } : {}),
          ...(beforeId !== undefined ? { beforeId } : {}),
          // One more than asked says whether a next page exists.
          limit: query.limit + 1,
          now,
        });
        res.json(pageOf(rows, query.limit, (r) => certificateSummary(r, now), (last) => String(last.id)));
      },
    }),
    route<{ ca?: string }>({
      method: 'get',
      path: '/api/v1/certificates/{serial}',
      id: 'getCertificate',
      tag: 'certificates',
      roles: readers,
      summary: 'One certificate with its PEM and a decoding like openssl x509 -text.',
      params: { serial: 'serial number, hex (case does not matter)' },
      query: z.object({ ca: caId.optional() }).strict(),
      response: { status: 200, description: 'the certificate', schema: certificateDetailSchema },
      errors: { 404: 'no such certificate', 409: 'two CAs issued this serial: say which with ca=' },
      async handler({ res, params, query }) {
        const serial = serialParam.safeParse(params.serial);
        if (!serial.success) throw new PkiError('malformed', 'serial: not a hex serial number (1 to 40 hex digits)');
        const serialHex = serial.data.toLowerCase();
        const rows = await deps.queries.certificatesBySerial(serialHex, query.ca);
        if (rows.length === 0) throw new PkiError('notFound', `no certificate with serial ${serialHex}${query.ca ? ` from CA "${query.ca}"` : ''}`);
        if (rows.length > 1) throw new PkiError('conflict', `two CAs issued serial ${serialHex} (${rows.map((r) => r.issuerId).join(', ')}): add ?ca=`);
        const row = rows[0]!;
        res.json({ ...certificateSummary(row, deps.clock.now()), pem: row.der ? toPem('CERTIFICATE', row.der) : null, text: row.der ? await certificateText(row.der) : null });
      },
    }),
    route<undefined, z.infer<typeof issueBody>>({
      method: 'post',
      path: '/api/v1/certificates',
      id: 'issueCertificate',
      tag: 'certificates',
      roles: issuers,
      summary: 'Issues a certificate from a CSR under a profile enrollable over the API (an enrollment token: only its profiles).',
      body: issueBody,
      response: {
        status: 201,
        description: 'the PEM chain, leaf first (Accept: application/pkix-cert for the DER leaf, application/json for a summary)',
        contentType: 'application/pem-certificate-chain',
      },
      errors: { 400: 'a bad CSR, key or profile', 403: 'a profile this token may not enroll' },
      // The same answers as the hot path of serve (issue-hot.ts), which takes the usual requests before express.
      async handler({ req, res, principal, body }) {
        const issued = await issueFor(deps.ra, principal, body);
        res.status(201).location(`/api/v1/certificates/${issued.serialHex}`).set('X-Trellis-Serial', issued.serialHex);
        const answer = issuedAnswer(issued, issuedFormOf(req.accepts(['application/pem-certificate-chain', 'application/x-pem-file', 'application/pkix-cert', 'application/json'])));
        res.type(answer.contentType).send(answer.body);
      },
    }),
    route<undefined, z.infer<typeof revokeBody>>({
      method: 'post',
      path: '/api/v1/certificates/{serial}/revoke',
      id: 'revokeCertificate',
      tag: 'certificates',
      // Revocation is final for every reason but certificateHold.
      roles: operators,
      summary: 'Revokes a certificate (RFC 5280 reason name; certificateHold can be lifted later).',
      params: { serial: 'serial number, hex' },
      body: revokeBody,
      response: { status: 200, description: 'the revocation, and within how many seconds OCSP and the CRL say so' },
      errors: { 404: 'no such certificate', 409: 'already revoked' },
      async handler({ res, principal, params, body }) {
        const r = await deps.revocation.revoke({
          serialHex: params.serial!,
          reason: body.reason,
          ...(body.invalidityDate ? { invalidityDate: new Date(body.invalidityDate) } : {}),
          ...(body.ca ? { issuerId: body.ca } : {}),
          by: principal.id,
          via: 'api',
        });
        res.json({ ...r, ocspWithinSeconds: deps.revocationSeconds.ocsp, crlWithinSeconds: deps.revocationSeconds.crl });
      },
    }),
  ];
}
