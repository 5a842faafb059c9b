/**
 * Shapes of the admin API's answers, as zod schemas: the OpenAPI document
 * is generated from them, and the console (helper B of issue 12) is built
 * against exactly these. Times are ISO 8601 text, serials lowercase hex.
 */
import { z } from 'zod';
import { roles } from '../../tokens/roles.js';

const time = z.string().describe('ISO 8601 time');
const serial = z.string().regex(/^[0-9a-f]+$/).describe('serial number, lowercase hex');

/** RFC 9457 problem document. */
export const problemSchema = z.object({ type: z.string(), title: z.string(), status: z.number().int(), detail: z.string() }).meta({ id: 'Problem' });

export const roleSchema = z.enum(roles).meta({ id: 'Role' });

export const whoamiSchema = z.object({ id: z.string(), role: roleSchema, via: z.enum(['token', 'cookie', 'certificate']) }).meta({ id: 'Whoami' });

export const certificateStatuses = ['valid', 'revoked', 'expired', 'pending', 'failed'] as const;

export const certificateSummarySchema = z
  .object({
    serial,
    ca: z.string().describe('issuing CA id'),
    profile: z.string(),
    subject: z.string(),
    sans: z.array(z.string()),
    notBefore: time,
    notAfter: time,
    status: z.enum(certificateStatuses),
    revokedAt: time.nullable(),
    revocationReason: z.string().nullable().describe('RFC 5280 CRLReason name'),
    requestedVia: z.string(),
    requestedBy: z.string().nullable(),
    deviceId: z.string().nullable(),
    issuedAt: time.nullable(),
  })
  .meta({ id: 'CertificateSummary' });

export const certificateDetailSchema = certificateSummarySchema
  .extend({ pem: z.string().nullable().describe('null until signed'), text: z.string().nullable().describe('decoded like openssl x509 -text') })
  .meta({ id: 'CertificateDetail' });

export const caSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.enum(['root', 'issuing']),
    parentId: z.string().nullable(),
    subject: z.string(),
    keyState: z.string(),
    keyStateAt: time.nullable(),
    notBefore: time,
    notAfter: time,
    skiHex: z.string(),
    active: z.boolean().describe('issues certificates now: an issuing CA with an active key, within its validity'),
  })
  .meta({ id: 'Ca' });

export const caDetailSchema = caSchema
  .extend({
    pem: z.string(),
    keyEvents: z.array(z.object({ from: z.string().nullable(), to: z.string(), at: time, actor: z.string(), reason: z.string().nullable() })),
  })
  .meta({ id: 'CaDetail' });

export const crlSchema = z
  .object({ ca: z.string(), scope: z.string(), crlNumber: z.number().int(), thisUpdate: time, nextUpdate: time, entries: z.number().int(), fresh: z.boolean() })
  .meta({ id: 'Crl' });

export const deviceSchema = z
  .object({
    id: z.string(),
    status: z.enum(['registered', 'active', 'disabled', 'retired']),
    profile: z.string(),
    issuerId: z.string().nullable(),
    reprovision: z.string(),
    attributes: z.record(z.string(), z.string()),
    hasSecret: z.boolean(),
    eabKeyId: z.string().nullable(),
    createdAt: time,
    updatedAt: time,
  })
  .loose()
  .meta({ id: 'Device' });

export const tokenSchema = z
  .object({
    id: z.string(),
    name: z.string().nullable(),
    role: roleSchema,
    profiles: z.array(z.string()).nullable(),
    createdAt: time,
    expiresAt: time.nullable(),
    lastUsedAt: time.nullable(),
    revokedAt: time.nullable(),
  })
  .meta({ id: 'Token' });

export const acmeAccountSchema = z
  .object({ id: z.string(), thumbprint: z.string().describe('RFC 7638 JWK thumbprint'), status: z.string(), contact: z.array(z.string()), termsAgreed: z.boolean(), eabKeyId: z.string().nullable(), createdAt: time })
  .meta({ id: 'AcmeAccount' });

export const acmeOrderSchema = z
  .object({
    id: z.string(),
    account: z.string(),
    profile: z.string(),
    status: z.string(),
    identifiers: z.array(z.object({ type: z.string(), value: z.string() })),
    expires: time,
    notBefore: time.nullable(),
    notAfter: time.nullable(),
    error: z.unknown().nullable(),
    ca: z.string().nullable(),
    certificateSerial: z.string().nullable(),
    replaces: z.string().nullable(),
    createdAt: time,
  })
  .meta({ id: 'AcmeOrder' });

export const auditEventSchema = z
  .object({ seq: z.number().int(), at: time, type: z.string(), actor: z.string(), data: z.unknown(), prevHash: z.string(), hash: z.string() })
  .meta({ id: 'AuditEvent' });

export const auditVerifySchema = z
  .object({
    ok: z.boolean(),
    events: z.number().int(),
    headHash: z.string().nullable(),
    checkpoint: z.object({ by: z.string(), events: z.number().int(), time }).optional(),
    firstBadSeq: z.number().int().optional(),
    findings: z.array(z.object({ seq: z.number().int().nullable(), change: z.string(), by: z.string(), detail: z.string() })),
  })
  .meta({ id: 'AuditVerification' });

export const issuanceStatsSchema = z.object({ days: z.array(z.object({ day: z.string(), issued: z.number().int(), revoked: z.number().int() })) }).meta({ id: 'IssuanceStats' });
