/**
 * The data directory, the online passphrase and the flags naming the
 * secrets, apart from common.ts: serve's cluster primary reads the
 * passphrase without loading zod or the quorum code (~16 MB of RSS) that
 * common.ts brings. common.ts re-exports all of it.
 */
import path from 'node:path';
import { readPassphrase, ttyPrompt } from '../config/passphrase.js';

export const dataDirOf = (flag: string | undefined): string => path.resolve(flag ?? process.env.TRELLIS_DATA ?? 'trellis-data');

/** The online passphrase: opens the keys `serve` signs with (issuing CAs, OCSP responders, the audit key). */
export function passphraseFor(flags: { 'passphrase-file'?: string | undefined }, opts: { confirm?: boolean; forNew?: boolean } = {}): Promise<string> {
  return readPassphrase(
    { env: process.env.TRELLIS_PASSPHRASE, file: flags['passphrase-file'], prompt: process.stdin.isTTY ? ttyPrompt : undefined },
    opts,
  );
}

/** Flags of the commands that open the root key: a passphrase file, or shares of the root secret (`--share FILE`, repeatable). */
export const rootPassphraseFlag = { 'root-passphrase-file': { type: 'string' }, share: { type: 'string', multiple: true } } as const;

/** PKCS#11 flags of init and ceremonies (docs/hsm.md); PINs only as files (or TRELLIS_PKCS11_PIN / TRELLIS_PKCS11_ROOT_PIN, or a prompt). */
export const pkcs11Flags = {
  keystore: { type: 'string' },
  'pkcs11-module': { type: 'string' },
  'pkcs11-token': { type: 'string' },
  'pkcs11-pin-file': { type: 'string' },
  'pkcs11-root-token': { type: 'string' },
  'pkcs11-root-pin-file': { type: 'string' },
} as const;
