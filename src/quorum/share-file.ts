/**
 * A share of the root secret as a file (JSON, mode 0600, one per custodian):
 *
 * ```
 * { "format": "trellis-root-secret-share", "v": 1,
 *   "split": hex(16),      random id of the split: shares of two splits never mix
 *   "index": 1..N, "shares": N, "threshold": M, "createdAt": ISO 8601,
 *   "share": b64,          the share bytes (shamir.ts)
 *   "checksum": hex(32) }  SHA-256 over every other field: a damaged file is named before combining
 * ```
 *
 * The secret's own hash is not in the header: it is inside the shared
 * payload (shamir.ts), since a hash in the clear would let one share holder
 * test guesses of the secret.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PkiError } from '../errors/pki-error.js';

const schema = z
  .object({
    format: z.literal('trellis-root-secret-share'),
    v: z.literal(1),
    split: z.string().regex(/^[0-9a-f]{32}$/),
    index: z.number().int().min(1).max(255),
    shares: z.number().int().min(2).max(255),
    threshold: z.number().int().min(2).max(255),
    createdAt: z.string().datetime(),
    share: z.string().min(4).refine((s) => Buffer.from(s, 'base64').toString('base64') === s, 'not canonical base64'),
    checksum: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();

/** A parsed share file. */
export type ShareFile = Omit<z.infer<typeof schema>, 'share' | 'checksum' | 'format' | 'v'> & { share: Buffer };

function checksumOf(s: ShareFile): string {
  const fields = ['trellis-root-secret-share', 1, s.split, s.index, s.shares, s.threshold, s.createdAt, s.share.toString('base64')];
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

/** The text of a share file. */
export function shareFileText(s: ShareFile): string {
  const body = { format: 'trellis-root-secret-share', v: 1, split: s.split, index: s.index, shares: s.shares, threshold: s.threshold, createdAt: s.createdAt, share: s.share.toString('base64'), checksum: checksumOf(s) };
  return `${JSON.stringify(body, null, 2)}\n`;
}

/** Parses a share file; `malformed` naming `name` when it is not one or its checksum does not match. */
export function parseShareFile(text: string, name: string): ShareFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PkiError('malformed', `${name}: not a root secret share (not JSON)`, { cause: err });
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new PkiError('malformed', `${name}: not a root secret share (${issue.path.join('.') || '(root)'}: ${issue.message})`);
  }
  const { format: _f, v: _v, checksum, ...rest } = r.data;
  const share: ShareFile = { ...rest, share: Buffer.from(rest.share, 'base64') };
  if (share.threshold > share.shares || share.index > share.shares) throw new PkiError('malformed', `${name}: share ${share.index} of ${share.shares} with threshold ${share.threshold} is impossible`);
  if (checksumOf(share) !== checksum) throw new PkiError('malformed', `${name}: checksum does not match (the file was altered or damaged)`);
  return share;
}
