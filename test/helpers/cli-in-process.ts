/**
 * Runs one `trellis` command module in this process (the TypeScript source,
 * no build needed), as main.ts would: stdout and stderr captured, environment
 * variables set for the call only, a PkiError turned into its exit code and
 * one line on stderr (2 for usage errors). stdin is not a TTY, so nothing prompts.
 */
import { UsageError } from '../../src/cli/args.js';
import { PkiError } from '../../src/errors/pki-error.js';
import type { CliEnv, CliResult } from './cli.js';

type Command = { run(argv: string[]): Promise<number | void> };

/** Runs `command.run(args)` with `env` applied (undefined removes a variable) and output captured. */
export async function runInProcess(name: string, command: Command, args: string[], env: CliEnv = {}): Promise<CliResult> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const setEnv = (vars: CliEnv) => {
    for (const [k, v] of Object.entries(vars)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  let stdout = '';
  let stderr = '';
  const realOut = process.stdout.write.bind(process.stdout);
  const realErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += chunk.toString()), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += chunk.toString()), true)) as typeof process.stderr.write;
  setEnv(env);
  try {
    const code = (await command.run(args)) ?? 0;
    return { code, stdout, stderr };
  } catch (err) {
    if (!(err instanceof PkiError)) throw err;
    stderr += `trellis ${name}: ${err.message}\n`;
    return { code: err instanceof UsageError ? 2 : 1, stdout, stderr };
  } finally {
    process.stdout.write = realOut;
    process.stderr.write = realErr;
    setEnv(saved);
  }
}
