/**
 * Payload schemas of the ACME endpoints (RFC 8555 §7). Unknown members are
 * ignored, as §7.1 lets clients send fields a server does not know; members
 * the server does know are strictly typed.
 */
import { z } from 'zod';
import { PkiError } from '../errors/pki-error.js';

export const newAccountPayload = z.object({
  contact: z.array(z.string().max(512)).max(100).optional(),
  termsOfServiceAgreed: z.boolean().optional(),
  onlyReturnExisting: z.boolean().optional(),
  externalAccountBinding: z.unknown().optional(),
});

export const accountUpdatePayload = z.object({
  contact: z.array(z.string().max(512)).max(100).optional(),
  status: z.literal('deactivated').optional(),
});

const rfc3339 = z.string().max(64);
export const newOrderPayload = z.object({
  identifiers: z.array(z.unknown()).max(1000),
  notBefore: rfc3339.optional(),
  notAfter: rfc3339.optional(),
  replaces: z.string().max(200).optional(),
});

const base64url = z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be base64url without padding');
export const finalizePayload = z.object({ csr: base64url.max(100_000) });

export const authorizationPayload = z.object({ status: z.literal('deactivated').optional() });

export const revokePayload = z.object({ certificate: base64url.max(100_000), reason: z.number().int().optional() });

/** Parses a payload; the first issue becomes a `malformed` problem naming the member. */
export function parsePayload<T>(schema: z.ZodType<T>, payload: unknown): T {
  const r = schema.safeParse(payload);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new PkiError('malformed', `payload ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return r.data;
}
