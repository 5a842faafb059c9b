/**
 * The PKCS#11 tokens of an instance (`keystore` in trellis.json, docs/hsm.md):
 * each is opened on first use, logged in with its own PIN, and kept until the
 * instance closes. The issuing token's PIN comes from TRELLIS_PKCS11_PIN,
 * `--pkcs11-pin-file` or a prompt; the root token's from
 * TRELLIS_PKCS11_ROOT_PIN, `--pkcs11-root-pin-file` or a prompt. No PIN is
 * ever written anywhere; the token's login keeps it sealed in memory to log
 * in again after a lost login (src/keys/pkcs11-token.ts).
 */
import fs from 'node:fs';
import type { KeystoreConfig } from '../config/instance-config.js';
import { assertPrivateFile } from '../config/file-permissions.js';
import { ttyPrompt } from '../config/passphrase.js';
import { PkiError } from '../errors/pki-error.js';
import type { Pkcs11Keystore } from '../keys/pkcs11-keystore.js';
import type { Keystore } from '../keys/signing-key.js';

/** Gives a token's PIN (a Buffer the token keystore copies; the caller's copy is cleared after login). */
export type PinSource = () => Promise<Buffer>;

/** Where the PINs of the instance's two tokens come from. */
export interface TokenPins {
  /** The token of the issuing CAs (`keystore.token`). */
  online?: PinSource;
  /** The root's token (`keystore.rootToken`). */
  root?: PinSource;
}

type PinRole = keyof TokenPins;

const pinNames: Record<PinRole, { env: string; flag: string }> = {
  online: { env: 'TRELLIS_PKCS11_PIN', flag: 'pkcs11-pin-file' },
  root: { env: 'TRELLIS_PKCS11_ROOT_PIN', flag: 'pkcs11-root-pin-file' },
};

/**
 * The PIN of `role` from its environment variable, else `file` (0600, first
 * line), else a prompt on a terminal. Read when the token is opened, not before.
 */
export function pinSource(role: PinRole, file?: string): PinSource {
  return async () => {
    const names = pinNames[role];
    let pin: string | undefined = process.env[names.env];
    if (!pin && file) {
      assertPrivateFile(file, `PKCS#11 ${role} PIN file`);
      try {
        pin = fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        throw new PkiError('invalidConfig', `cannot read PIN file ${file}`, { cause: err });
      }
    } else if (!pin && process.stdin.isTTY) {
      pin = await ttyPrompt(`PKCS#11 ${role === 'root' ? 'root token' : 'token'} PIN: `);
    }
    if (!pin) throw new PkiError('badPassphrase', `no PKCS#11 ${role === 'root' ? 'root token ' : ''}PIN: set ${names.env}, pass --${names.flag}, or run on a terminal`);
    return Buffer.from(pin, 'utf8');
  };
}

/** A PIN source that always refuses (serve never logs in to the root token). */
export const refusedPin = (why: string): PinSource => () => Promise.reject(new PkiError('forbidden', why));

/** The instance's PKCS#11 token keystores, by label. */
export class InstanceTokens {
  readonly #config: KeystoreConfig;
  #pins: Required<TokenPins>;
  readonly #opened = new Map<string, Promise<Pkcs11Keystore>>();

  constructor(config: KeystoreConfig) {
    this.#config = config;
    this.#pins = { online: pinSource('online'), root: pinSource('root') };
  }

  /** Replaces PIN sources (from a command's flags, or serve's PIN from its primary); only for tokens not yet opened. */
  setPins(pins: TokenPins): void {
    this.#pins = { ...this.#pins, ...pins };
  }

  /** The token where new issuing CA keys go, or undefined (software keystore). */
  get issuingToken(): string | undefined {
    return this.#config.type === 'pkcs11' ? this.#config.token : undefined;
  }

  /** The token where a new root key goes, or undefined (software, under the root passphrase). */
  get rootToken(): string | undefined {
    return this.#config.type === 'pkcs11' ? this.#config.rootToken : undefined;
  }

  /**
   * The keystore of the token labelled `label`, logged in. The label must be
   * one trellis.json names (`invalidConfig` otherwise); a wrong PIN is
   * `badPassphrase`, and is not tried again in this process.
   */
  open(label: string): Promise<Keystore> {
    let opening = this.#opened.get(label);
    if (!opening) {
      opening = this.#open(label);
      this.#opened.set(label, opening);
    }
    return opening;
  }

  async #open(label: string): Promise<Pkcs11Keystore> {
    const c = this.#config;
    if (c.type !== 'pkcs11' || (label !== c.token && label !== c.rootToken)) {
      throw new PkiError('invalidConfig', `PKCS#11 token "${label}" is not configured for this instance (keystore in trellis.json)`);
    }
    const pin = await this.#pins[label === c.token ? 'online' : 'root']();
    try {
      // Loaded here: an instance without a token never loads the native PKCS#11 binding.
      const { Pkcs11Keystore } = await import('../keys/pkcs11-keystore.js');
      const keystore = new Pkcs11Keystore({ modulePath: c.module, tokenLabel: label, pin });
      await keystore.login();
      return keystore;
    } finally {
      pin.fill(0);
    }
  }

  /** Closes every token opened (waiting for signatures in progress); the last one in the process logs out. */
  async close(): Promise<void> {
    const opened = [...this.#opened.values()];
    this.#opened.clear();
    for (const o of await Promise.allSettled(opened)) if (o.status === 'fulfilled') await o.value.close();
  }
}
