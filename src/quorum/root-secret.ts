/**
 * The root secret from shares. The root secret is the root passphrase: the
 * split (`trellis ceremony split-root-secret`) shares the passphrase itself,
 * so the passphrase keeps working and M shares rebuild it wherever a root
 * operation reads it (`--share FILE`, repeatable).
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { assertPrivateFile } from '../config/file-permissions.js';
import { PkiError } from '../errors/pki-error.js';
import { combineShares, splitSecret } from './shamir.js';
import { parseShareFile, type ShareFile } from './share-file.js';

/** Splits the root passphrase into `shares` share files' contents, any `threshold` of which rebuild it. */
export async function splitRootSecret(passphrase: string, shares: number, threshold: number, createdAt: Date): Promise<ShareFile[]> {
  const secret = Buffer.from(passphrase, 'utf8');
  try {
    const parts = await splitSecret(secret, shares, threshold);
    const split = randomBytes(16).toString('hex');
    return parts.map((share, i) => ({ split, index: i + 1, shares, threshold, createdAt: createdAt.toISOString(), share }));
  } finally {
    secret.fill(0);
  }
}

/**
 * Rebuilds the root passphrase from share files. Each must be private to
 * its owner (mode 0600) and intact; all must come from one split, each index
 * once, at least its threshold of them. Fewer shares are refused before
 * anything is combined. `badPassphrase` when they do not rebuild a secret.
 */
export async function rootSecretFromShares(files: readonly string[]): Promise<string> {
  const shares = files.map((file) => {
    assertPrivateFile(file, 'root secret share');
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new PkiError('notFound', `cannot read share file ${file}`, { cause: err });
    }
    return { file, ...parseShareFile(text, file) };
  });
  const first = shares[0];
  if (!first) throw new PkiError('badPassphrase', 'no root secret shares given');
  const seen = new Map<number, string>();
  for (const s of shares) {
    if (s.split !== first.split) throw new PkiError('badPassphrase', `${s.file} and ${first.file} come from different splits of the root secret`);
    if (s.threshold !== first.threshold || s.shares !== first.shares) throw new PkiError('badPassphrase', `${s.file} and ${first.file} disagree on the split (${s.threshold} of ${s.shares} vs ${first.threshold} of ${first.shares})`);
    const twin = seen.get(s.index);
    if (twin) throw new PkiError('badPassphrase', `share ${s.index} is given twice (${twin}, ${s.file})`);
    seen.set(s.index, s.file);
  }
  if (shares.length < first.threshold) throw new PkiError('badPassphrase', `the root secret needs ${first.threshold} of its ${first.shares} shares; ${shares.length} given`);
  const secret = await combineShares(shares.map((s) => s.share));
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(secret);
  } catch (err) {
    throw new PkiError('badPassphrase', 'the shares rebuild something that is not a passphrase', { cause: err });
  } finally {
    secret.fill(0);
  }
}
