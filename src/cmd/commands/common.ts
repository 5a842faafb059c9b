/** Pieces every command uses: the data directory, the passphrases, output. */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { PkiError } from '../../errors/pki-error.js';
import { readPassphrase, ttyPrompt } from '../../config/passphrase.js';
import { output, type Output } from '../../cli/output.js';
import { rootSecretFromShares } from '../../quorum/root-secret.js';
import { keystoreConfigSchema, type KeystoreConfig } from '../../config/instance-config.js';
import { UsageError } from '../../cli/args.js';
import { pinSource, type TokenPins } from '../tokens.js';
import { pkcs11Flags } from '../secret-flags.js';

export { dataDirOf, passphraseFor, pkcs11Flags, rootPassphraseFlag } from '../secret-flags.js';

export const actorOf = (): string => `cli:${os.userInfo().username}`;

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

type Pkcs11FlagValues = { [K in keyof typeof pkcs11Flags]?: string | undefined };

/** The PIN sources the flags give (each read only when its token is opened). */
export const tokenPinsOf = (flags: Pkcs11FlagValues): TokenPins => ({ online: pinSource('online', flags['pkcs11-pin-file']), root: pinSource('root', flags['pkcs11-root-pin-file']) });

/** `--keystore software|pkcs11 …` as the `keystore` of a new trellis.json (init). */
export function keystoreConfigOf(flags: Pkcs11FlagValues): KeystoreConfig {
  const type = flags.keystore ?? 'software';
  if (type === 'software') {
    const stray = (['pkcs11-module', 'pkcs11-token', 'pkcs11-root-token'] as const).filter((f) => flags[f] !== undefined);
    if (stray.length) throw new UsageError(`--${stray[0]} needs --keystore pkcs11`);
    return { type: 'software' };
  }
  if (type !== 'pkcs11') throw new UsageError('--keystore must be software or pkcs11');
  if (!flags['pkcs11-module'] || !flags['pkcs11-token']) throw new UsageError('--keystore pkcs11 needs --pkcs11-module PATH and --pkcs11-token LABEL');
  const parsed = keystoreConfigSchema.safeParse({ type, module: flags['pkcs11-module'], token: flags['pkcs11-token'], ...(flags['pkcs11-root-token'] ? { rootToken: flags['pkcs11-root-token'] } : {}) });
  if (!parsed.success) throw new UsageError(`--pkcs11-*: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

/**
 * Where a ceremony puts the new key of a `role` CA: the label of a token, or
 * undefined for the software keystore. Default: what trellis.json says (the
 * root token for a root, the token for an issuing CA). The flags may choose
 * `--keystore software`, or a token trellis.json already names, with its module.
 */
export function ceremonyTokenOf(flags: Pkcs11FlagValues, config: KeystoreConfig, role: 'root' | 'issuing'): string | undefined {
  const configured = config.type === 'pkcs11' ? (role === 'root' ? config.rootToken : config.token) : undefined;
  if (flags.keystore === undefined && flags['pkcs11-token'] === undefined && flags['pkcs11-root-token'] === undefined) return configured;
  if (flags.keystore === 'software') return undefined;
  const wanted = keystoreConfigOf({ ...flags, keystore: 'pkcs11', 'pkcs11-module': flags['pkcs11-module'] ?? (config.type === 'pkcs11' ? config.module : undefined), 'pkcs11-token': flags['pkcs11-token'] ?? (config.type === 'pkcs11' ? config.token : undefined) });
  if (wanted.type !== 'pkcs11' || config.type !== 'pkcs11' || wanted.module !== config.module) {
    throw new PkiError('invalidConfig', 'the PKCS#11 module given is not the one in trellis.json (keystore); configure the instance\'s tokens there');
  }
  const label = role === 'root' ? wanted.rootToken : wanted.token;
  if (!label || (label !== config.token && label !== config.rootToken)) throw new PkiError('invalidConfig', `PKCS#11 token "${label ?? ''}" is not configured in trellis.json (keystore)`);
  return label;
}
