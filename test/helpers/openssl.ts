/** Runs the openssl CLI (the oracle for everything Trellis produces). */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface OpensslResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs openssl; resolves with stdout+stderr whatever the exit code (tests assert on both). */
export function opensslRun(args: string[], input?: Buffer | string): Promise<OpensslResult> {
  return new Promise((resolve, reject) => {
    const child = execFile('openssl', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Runs openssl and returns stdout+stderr; rejects when it exits non-zero. */
export async function openssl(...args: string[]): Promise<string> {
  const r = await opensslRun(args);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout + r.stderr;
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'trellis-test-'): { dir: string; file(name: string): string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, file: (name) => path.join(dir, name), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Makes a key and CSR with openssl req; returns the CSR PEM and key path. */
export async function makeCsr(dir: string, name: string, subj: string, opts: { keyAlg?: 'p256' | 'p384' | 'rsa2048' | 'ed25519'; sans?: string } = {}): Promise<{ csrPem: string; keyPath: string; csrPath: string }> {
  const keyPath = path.join(dir, `${name}.key`);
  const csrPath = path.join(dir, `${name}.csr`);
  const alg = opts.keyAlg ?? 'p256';
  const keyArgs =
    alg === 'rsa2048' ? ['-newkey', 'rsa:2048'] : alg === 'ed25519' ? ['-newkey', 'ed25519'] : ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${alg === 'p384' ? 'P-384' : 'P-256'}`];
  await openssl('req', '-new', ...keyArgs, '-nodes', '-keyout', keyPath, '-subj', subj, ...(opts.sans ? ['-addext', `subjectAltName=${opts.sans}`] : []), '-out', csrPath);
  return { csrPem: fs.readFileSync(csrPath, 'utf8'), keyPath, csrPath };
}
