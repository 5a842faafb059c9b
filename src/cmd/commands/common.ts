/** Pieces every command uses: the data directory, the passphrases, output. */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { PkiError } from '../../errors/pki-error.js';
import { readPassphrase, ttyPrompt } from '../../config/passphrase.js';
import { output, type Output } from '../../cli/output.js';
import { rootSecretFromShares } from '../../quorum/root-secret.js';

export const dataDirOf = (flag: string | undefined): string => path.resolve(flag ?? process.env.TRELLIS_DATA ?? 'trellis-data');

export const actorOf = (): string => `cli:${os.userInfo().username}`;

/** The online passphrase: opens the keys `serve` signs with (issuing CAs, OCSP responders, the audit key). */
export function passphraseFor(flags: { 'passphrase-file'?: string | undefined }, opts: { confirm?: boolean; forNew?: boolean } = {}): Promise<string> {
  return readPassphrase(
    { env: process.env.TRELLIS_PASSPHRASE, file: flags['passphrase-file'], prompt: process.stdin.isTTY ? ttyPrompt : undefined },
    opts,
  );
}

/** Flags of the commands that open the root key: a passphrase file, or shares of the root secret (`--share FILE`, repeatable). */
export const rootPassphraseFlag = { 'root-passphrase-file': { type: 'string' }, share: { type: 'string', multiple: true } } as const;

/** Where a command's root passphrase may come from. */
type RootPassphraseFlags = { 'root-passphrase-file'?: string | undefined; share?: string[] | undefined };

/** True when the operator gave a root passphrase without a prompt (env, file or shares). */
export const rootPassphraseGiven = (flags: RootPassphraseFlags): boolean =>
  !!process.env.TRELLIS_ROOT_PASSPHRASE || !!flags['root-passphrase-file'] || !!flags.share?.length;

/**
 * The root passphrase: opens the root CA's key (and any CA key marked
 * offline). Only ceremonies ask for it; `serve` never does. `--share` files
 * rebuild it from a split (`ceremony split-root-secret`) instead.
 */
export function rootPassphraseFor(flags: RootPassphraseFlags, opts: { confirm?: boolean; forNew?: boolean } = {}): Promise<string> {
  if (flags.share?.length) return rootSecretFromShares(flags.share);
  return readPassphrase(
    {
      env: process.env.TRELLIS_ROOT_PASSPHRASE,
      file: flags['root-passphrase-file'],
      prompt: process.stdin.isTTY ? ttyPrompt : undefined,
      label: 'root key',
      envName: 'TRELLIS_ROOT_PASSPHRASE',
      fileFlag: 'root-passphrase-file',
    },
    opts,
  );
}

/** A new random passphrase (144 bits), for init and quickstart when the operator gives none. */
export const generatedPassphrase = (): string => randomBytes(18).toString('base64url');

/** The two secrets must differ, or the root would open with the online one. */
export function assertDistinct(online: string, root: string): void {
  if (online === root) throw new PkiError('badPassphrase', 'the root passphrase must differ from the online passphrase (TRELLIS_PASSPHRASE)');
}

export const out = (flags: { json?: boolean | undefined }): Output => output(!!flags.json);
