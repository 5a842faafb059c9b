/** Runs the image's entry point (docker/entrypoint.sh) with `sh` and the built CLI (bin/trellis.js), outside Docker. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.join(import.meta.dirname, '../..');

export interface EntrypointRun {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** The exit code (128 when killed by a signal). */
  exited: Promise<number>;
}

/**
 * Starts the entry point with only PATH, TRELLIS_BIN, host 127.0.0.1, port 0
 * and `env` in its environment (nothing inherited from the test process).
 */
export function runEntrypoint(env: Record<string, string>, args: string[] = []): EntrypointRun {
  const proc = spawn('sh', [path.join(root, 'docker/entrypoint.sh'), ...args], {
    env: { PATH: process.env.PATH!, TRELLIS_BIN: path.join(root, 'bin/trellis.js'), TRELLIS_HOST: '127.0.0.1', TRELLIS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<number>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  return { proc, stdout: () => out, stderr: () => err, exited };
}

/** Resolves with the URL once `serve` says it is serving; rejects with the output if the script exits first. */
export function serving(run: EntrypointRun): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = /Trellis is serving on (\S+)/.exec(run.stderr());
      if (m) {
        run.proc.stderr!.off('data', check);
        resolve(m[1]!);
      }
    };
    run.proc.stderr!.on('data', check);
    void run.exited.then((code) => reject(new Error(`entry point exited (${code}) before serving:\n${run.stdout()}\n${run.stderr()}`)));
    check();
  });
}

/** SIGTERM (serve shuts down cleanly), then waits for the exit. */
export async function stopEntrypoint(run: EntrypointRun): Promise<void> {
  if (run.proc.exitCode === null && run.proc.signalCode === null) run.proc.kill('SIGTERM');
  await run.exited;
}

/** The NUL-separated entries of /proc/<pid>/environ or cmdline. */
export const procEntries = (pid: number, file: 'environ' | 'cmdline'): string[] => fs.readFileSync(`/proc/${pid}/${file}`, 'utf8').split('\0').filter(Boolean);

/** A secret file as a Docker secret bind mount may show it: mode 0644, a trailing newline. */
export function writeSecret(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text + '\n', { mode: 0o644 });
  fs.chmodSync(file, 0o644);
  return file;
}
