/**
 * Where CA key passphrases come from. Two secrets, never the same: the online
 * passphrase (TRELLIS_PASSPHRASE, --passphrase-file) opens the issuing CAs'
 * keys that `serve` uses; the root passphrase (TRELLIS_ROOT_PASSPHRASE,
 * --root-passphrase-file) opens the root's key (and any CA key marked
 * offline), only in ceremonies. Either may also come from a prompt without echo.
 */
import fs from 'node:fs';
import { PkiError } from '../errors/pki-error.js';
import { assertPrivateFile } from './file-permissions.js';

export interface PassphraseSource {
  env?: string | undefined;
  file?: string | undefined;
  /** Prompt on the terminal; absent when stdin is not a TTY. */
  prompt?: ((question: string) => Promise<string>) | undefined;
  /** What the secret opens, for prompts and errors (default "CA key"). */
  label?: string;
  /** Names of the sources, for the error when none is given. */
  envName?: string;
  fileFlag?: string;
}

/** Minimum passphrase length for new instances (NIST SP 800-63B §5.1.1.2 asks at least 8 for memorised secrets; CA keys deserve more). */
export const minPassphraseLength = 12;

export async function readPassphrase(src: PassphraseSource, opts: { confirm?: boolean; forNew?: boolean } = {}): Promise<string> {
  let pass: string | undefined;
  if (src.env) pass = src.env;
  else if (src.file) {
    assertPrivateFile(src.file, `${src.label ?? 'CA key'} passphrase file`);
    try {
      pass = fs.readFileSync(src.file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new PkiError('invalidConfig', `cannot read passphrase file ${src.file}`, { cause: err });
    }
  } else if (src.prompt) {
    pass = await src.prompt(`${src.label ?? 'CA key'} passphrase: `);
    if (opts.confirm && (await src.prompt('Repeat passphrase: ')) !== pass) throw new PkiError('badPassphrase', 'passphrases do not match');
  } else {
    throw new PkiError('badPassphrase', `no ${src.label ?? 'CA key'} passphrase: set ${src.envName ?? 'TRELLIS_PASSPHRASE'}, pass --${src.fileFlag ?? 'passphrase-file'}, or run on a terminal`);
  }
  if (opts.forNew && pass.length < minPassphraseLength) throw new PkiError('badPassphrase', `passphrase must have at least ${minPassphraseLength} characters`);
  if (pass.length === 0) throw new PkiError('badPassphrase', 'empty passphrase');
  return pass;
}

/** Reads a line from a TTY without echoing it. */
export function ttyPrompt(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode?.(true);
    stdin.resume();
    let buf = '';
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(null);
        if (ch === '\u0003') return done(new PkiError('badPassphrase', 'cancelled'));
        if (ch === '\u007f') buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    const done = (err: Error | null) => {
      stdin.off('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(buf);
    };
    stdin.on('data', onData);
  });
}
