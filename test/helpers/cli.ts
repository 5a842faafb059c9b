/** Runs the compiled `trellis` CLI (dist/, via bin/trellis.js) in a child process against a data directory. */
import { execFile } from 'node:child_process';
import path from 'node:path';

const bin = path.join(import.meta.dirname, '../../bin/trellis.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Variables for the child; `undefined` removes one inherited from the test's own environment. */
export type CliEnv = Record<string, string | undefined>;

/**
 * A runner bound to one data directory and online passphrase. `baseEnv` applies
 * to every call (e.g. the root passphrase), `env` adds or overrides per call.
 */
export function cliFor(dataDir: string, passphrase: string, baseEnv: CliEnv = {}): (args: string[], env?: CliEnv) => Promise<CliResult> {
  return (args, env = {}) =>
    new Promise((resolve) => {
      const childEnv: CliEnv = { ...process.env, TRELLIS_PASSPHRASE: passphrase, TRELLIS_DATA: dataDir, ...baseEnv, ...env };
      for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
      execFile(process.execPath, [bin, ...args], { env: childEnv, encoding: 'utf8' }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
}
