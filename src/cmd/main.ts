/**
 * The `trellis` entry point: parses argv, builds the parts, runs one command.
 * Heavy modules are imported per command (registry.ts) so `trellis --help`
 * loads four modules and starts at once. bin/trellis.js calls {@link main};
 * run directly (`node dist/cmd/main.js …`, as benches and other builds' tests
 * do) it runs itself, and imported (a test) it runs nothing.
 * Errors: one line on stderr, exit code 1 (2 for usage errors).
 */
import { existsSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { UsageError } from '../cli/args.js';
import { PkiError } from '../errors/pki-error.js';
import { commands, usage } from './registry.js';

/** Where {@link main} writes help and usage errors (a command writes to the process's own streams). */
export interface MainOutput {
  stdout: Pick<NodeJS.WritableStream, 'write'>;
  stderr: Pick<NodeJS.WritableStream, 'write'>;
}

/** Runs the command named by `argv[0]`; resolves to the process exit code. */
export async function main(argv: string[], io: MainOutput = process): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage);
    return 0;
  }
  if (name === '--version') {
    io.stdout.write('trellis 0.1.0\n');
    return 0;
  }
  const load = commands[name];
  if (!load) {
    io.stderr.write(`trellis: unknown command "${name}" (see trellis --help)\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(usage);
    return 0;
  }
  // Prisma's query compiler is a 3 MB WebAssembly module. V8 compiles it with
  // Liftoff, then again with TurboFan on background threads for the functions
  // it finds hot: ~45 MB more RSS per process (compiler zones and a second copy
  // of the code) and ~0.4 s more CPU at start, for no measurable
  // change in Prisma's CPU per query (docs/performance.md, Memory). Set before
  // any command compiles WebAssembly; V8 reads it per module compiled.
  setFlagsFromString('--liftoff-only');
  try {
    return (await (await load()).run(rest)) ?? 0;
  } catch (err) {
    if (err instanceof PkiError) {
      io.stderr.write(`trellis ${name}: ${err.message}\n`);
      return err instanceof UsageError ? 2 : 1;
    }
    // Unexpected errors: a one-line message; the stack only on request (it never holds key material, but stays terse).
    io.stderr.write(`trellis ${name}: internal error: ${(err as Error)?.message ?? String(err)}\n`);
    if (process.env.TRELLIS_DEBUG) io.stderr.write(`${(err as Error)?.stack}\n`);
    return 1;
  }
}

const entry = process.argv[1];
if (entry && existsSync(entry) && realpathSync(entry) === fileURLToPath(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
