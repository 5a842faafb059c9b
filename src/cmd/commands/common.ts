/** Pieces every command uses: the data directory, the passphrase, output. */
import os from 'node:os';
import path from 'node:path';
import { readPassphrase, ttyPrompt } from '../../config/passphrase.js';
import { output, type Output } from '../../cli/output.js';

export const dataDirOf = (flag: string | undefined): string => path.resolve(flag ?? process.env.TRELLIS_DATA ?? 'trellis-data');

export const actorOf = (): string => `cli:${os.userInfo().username}`;

export function passphraseFor(flags: { 'passphrase-file'?: string | undefined }, opts: { confirm?: boolean; forNew?: boolean } = {}): Promise<string> {
  return readPassphrase(
    { env: process.env.TRELLIS_PASSPHRASE, file: flags['passphrase-file'], prompt: process.stdin.isTTY ? ttyPrompt : undefined },
    opts,
  );
}

export const out = (flags: { json?: boolean | undefined }): Output => output(!!flags.json);
