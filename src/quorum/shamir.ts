/**
 * Shamir's secret sharing over GF(2^8) (`shamir-secret-sharing`, audited by
 * Cure53 and Zellic): a secret split into N shares, any M of which give it
 * back while M-1 reveal nothing about it.
 *
 * The library does not check what it reconstructs, and a share is as long
 * as the secret plus one byte. So the secret is shared inside a payload:
 *
 * ```
 * length (2 bytes, big-endian) || secret || zero padding to a multiple of 256 || SHA-256(secret)
 * ```
 *
 * The padding hides the secret's length; the hash, shared like the rest,
 * tells a wrong set of shares (altered, or from two splits) from the right
 * one after combining, and no single share holder can read it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { combine, split } from 'shamir-secret-sharing';
import { PkiError } from '../errors/pki-error.js';

/** Largest secret a split takes. */
export const maxSecretBytes = 1024;
const block = 256;
const hashBytes = 32;

/** Shares and threshold as the library allows them: 2 ≤ M ≤ N ≤ 255. */
export function checkSplitCounts(shares: number, threshold: number): void {
  if (!Number.isInteger(shares) || !Number.isInteger(threshold) || threshold < 2 || shares < threshold || shares > 255) {
    throw new PkiError('malformed', `a split needs 2 ≤ threshold ≤ shares ≤ 255 (got ${threshold} of ${shares})`);
  }
}

function payloadOf(secret: Buffer): Buffer {
  if (secret.length === 0 || secret.length > maxSecretBytes) throw new PkiError('malformed', `a secret to split has 1 to ${maxSecretBytes} bytes`);
  const body = Math.ceil((2 + secret.length) / block) * block;
  const payload = Buffer.alloc(body + hashBytes);
  payload.writeUInt16BE(secret.length, 0);
  secret.copy(payload, 2);
  createHash('sha256').update(secret).digest().copy(payload, body);
  return payload;
}

/** The secret inside a combined payload, or null when the length or hash does not check out. */
function secretOf(payload: Buffer): Buffer | null {
  if (payload.length < block + hashBytes || (payload.length - hashBytes) % block !== 0) return null;
  const body = payload.length - hashBytes;
  const length = payload.readUInt16BE(0);
  if (length === 0 || 2 + length > body) return null;
  const secret = payload.subarray(2, 2 + length);
  const hash = createHash('sha256').update(secret).digest();
  return timingSafeEqual(hash, payload.subarray(body)) ? Buffer.from(secret) : null;
}

/** Splits `secret` into `shares` shares (library format: y bytes then the x coordinate), any `threshold` of which recover it. */
export async function splitSecret(secret: Buffer, shares: number, threshold: number): Promise<Buffer[]> {
  checkSplitCounts(shares, threshold);
  const payload = payloadOf(secret);
  try {
    return (await split(new Uint8Array(payload), shares, threshold)).map((s) => Buffer.from(s));
  } finally {
    payload.fill(0);
  }
}

/**
 * Combines shares into the secret. `badPassphrase` when they do not
 * reconstruct one (too few, altered, or from different splits): the result
 * is then random bytes and is never returned.
 */
export async function combineShares(shares: readonly Buffer[]): Promise<Buffer> {
  if (shares.length < 2) throw new PkiError('badPassphrase', 'at least 2 shares are needed');
  let payload: Buffer;
  try {
    payload = Buffer.from(await combine(shares.map((s) => new Uint8Array(s))));
  } catch (err) {
    throw new PkiError('badPassphrase', `the shares do not combine: ${(err as Error).message}`, { cause: err });
  }
  try {
    const secret = secretOf(payload);
    if (!secret) throw new PkiError('badPassphrase', 'the shares do not reconstruct the secret (too few, altered, or from different splits)');
    return secret;
  } finally {
    payload.fill(0);
  }
}
