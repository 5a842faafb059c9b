/** Runs the compiled `trellis` CLI (dist/, via bin/trellis.js) in a child process against a data directory. */
import { execFile } from 'node:child_process';
import path from 'node:path';

const bin = path.join(import.meta.dirname, '../../bin/trellis.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A runner bound to one data directory and online passphrase; `env` adds or overrides variables per call. */
export function cliFor(dataDir: string, passphrase: string): (args: string[], env?: Record<string, string>) => Promise<CliResult> {
  return (args, env = {}) =>
    new Promise((resolve) => {
      execFile(process.execPath, [bin, ...args], { env: { ...process.env, TRELLIS_PASSPHRASE: passphrase, TRELLIS_DATA: dataDir, ...env }, encoding: 'utf8' }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
}
