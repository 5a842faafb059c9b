/**
 * An approval carried as a file, for custodians who sign away from the CA
 * machine: `quorum approve --key FILE --out approval.json` writes it,
 * `quorum submit --in approval.json` records it. The signature covers
 * {@link approvalMessage}; the operation text is there for the reader and
 * must hash to `hash`.
 *
 * ```
 * { "format": "trellis-quorum-approval", "v": 1, "request": "qr_…", "custodian": "alice",
 *   "operation": "{\"op\":…,\"params\":{…}}", "hash": hex(32), "signature": b64 }
 * ```
 */
import { z } from 'zod';
import { PkiError } from '../errors/pki-error.js';
import { sha256Hex } from './operation.js';

const schema = z
  .object({
    format: z.literal('trellis-quorum-approval'),
    v: z.literal(1),
    request: z.string().min(1).max(100),
    custodian: z.string().min(1).max(64),
    operation: z.string().min(1),
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    signature: z.string().min(1).max(1024),
  })
  .strict();
/** A parsed approval file. */
export type ApprovalFile = z.infer<typeof schema>;

/** The JSON text of an approval file. */
export function approvalFileText(a: Omit<ApprovalFile, 'format' | 'v'>): string {
  return `${JSON.stringify({ format: 'trellis-quorum-approval', v: 1, ...a }, null, 2)}\n`;
}

/** Parses an approval file (`malformed` with the first problem). */
export function parseApprovalFile(text: string, name: string): ApprovalFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PkiError('malformed', `${name}: not JSON`, { cause: err });
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new PkiError('malformed', `${name}: not a Trellis quorum approval (${issue.path.join('.') || '(root)'}: ${issue.message})`);
  }
  if (sha256Hex(r.data.operation) !== r.data.hash) throw new PkiError('malformed', `${name}: its operation does not hash to its hash`);
  return r.data;
}
