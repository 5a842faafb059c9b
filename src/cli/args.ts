/** Command-line parsing: strict flags per command, usage errors as PkiError('malformed'). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PkiError } from '../errors/pki-error.js';

/** A command-line usage error (exit code 2). */
export class UsageError extends PkiError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('malformed', detail, options);
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags every data command accepts. */
export const commonOptions = {
  data: { type: 'string' },
  json: { type: 'boolean' },
  'passphrase-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

export function parse<O extends Options>(argv: string[], options: O, positionals = 0) {
  try {
    const r = parseArgs({ args: argv, options: { ...commonOptions, ...options }, allowPositionals: positionals > 0, strict: true });
    if (r.positionals.length > positionals) throw new Error(`unexpected argument "${r.positionals[positionals]}"`);
    return r;
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''), { cause: err });
  }
}

/** Parses "90d", "12h", "10y", "3600" (seconds) into seconds. */
export function parseDurationFlag(text: string, flag: string): number {
  const m = /^(\d+)([smhdy]?)$/.exec(text.trim());
  if (!m) throw new UsageError(`--${flag}: expected a duration like 90d, 12h or 3600`);
  const mult = { '': 1, s: 1, m: 60, h: 3600, d: 86400, y: 365 * 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd' | 'y'];
  return Number(m[1]) * mult;
}

export function required(value: string | undefined, flag: string): string {
  if (!value) throw new UsageError(`--${flag} is required`);
  return value;
}
