/**
 * Runs lego (Debian 4.9.1), the real ACME client of the end-to-end tests,
 * and the other external tools they need (pebble-challtestsrv in ./dns.ts).
 * Every child is tracked: it is killed after its timeout, by
 * `stopAllTools()` (call it in afterAll/afterEach), and when the test
 * process exits, so a failed test leaves no process behind.
 *
 * What lego 4.9.1 does that a server must live with:
 * - After the challenge POST it waits the response's Retry-After (5 s when
 *   there is none) before it polls the authorization, unless the challenge
 *   came back `valid` already; after finalize it polls the order every 500 ms
 *   unless finalize answered `valid`.
 * - `renew` sleeps a random 0–8 minutes when stdout is not a terminal unless
 *   given `--no-random-sleep`, and renews only within `--days` (default 30) of
 *   expiry: `legoRenew` passes both.
 * - It trusts only the PEM files in LEGO_CA_CERTIFICATES (system roots are dropped).
 * - It sends an IP address given to --domains as a `dns` identifier (pebble
 *   answers malformed), so RFC 8738 IP certificates are tested with the
 *   in-test client (./acme-client.ts), not with lego.
 * - Measured here: against pebble with real validation one `run` takes
 *   5.6–6.3 s (pebble validates asynchronously and sends no Retry-After, so
 *   lego sleeps 5 s); against Trellis, which validates inside the challenge
 *   POST, 0.16–0.23 s (renew ~0.09 s, revoke ~0.03–0.05 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

// ---- processes ---------------------------------------------------------------

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort: vitest workers exit after their file; nothing outlives them.
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;

async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (!running(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Stops every tool started by these helpers that is still running (SIGTERM, SIGKILL after `graceMs`). */
export async function stopAllTools(graceMs = 2000): Promise<void> {
  await Promise.all([...live].map((c) => terminate(c, graceMs)));
}

/** Environment for tools: no proxies (they would intercept loopback for some clients). */
export function toolEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (/^(https?|all|no)_proxy$/i.test(k)) delete env[k];
  return { ...env, ...extra };
}

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

/** Runs a tool to completion; SIGKILL after `timeoutMs` (default 120 s). Never rejects on exit status. */
export function runTool(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: opts.env ?? toolEnv(), cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${err.message}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, durationMs: performance.now() - t0, timedOut });
    });
  });
}

export interface ToolProcess {
  pid: number;
  /** Output so far (stdout and stderr interleaved). */
  output(): string;
  running(): boolean;
  /** Resolves with the exit code (or signal) when it ends. */
  exited: Promise<number | NodeJS.Signals | null>;
  stop(graceMs?: number): Promise<void>;
}

/** Starts a long-running tool; its output is kept in memory (and in `logFile` if given). */
export function startTool(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; logFile?: string } = {}): ToolProcess {
  const child = spawn(cmd, args, { env: opts.env ?? toolEnv(), cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let out = '';
  const log = opts.logFile ? fs.createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
  const onData = (d: Buffer) => {
    if (out.length < 4 * 1024 * 1024) out += d.toString();
    log?.write(d);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) => {
    child.once('error', (err) => {
      out += `\nspawn ${cmd}: ${err.message}\n`;
      resolve(null);
    });
    child.once('exit', (code, signal) => {
      log?.end();
      resolve(code ?? signal);
    });
  });
  return { pid: child.pid ?? -1, output: () => out, running: () => running(child), exited, stop: (graceMs = 5000) => terminate(child, graceMs) };
}

// ---- ports ---------------------------------------------------------------------

function tcpFree(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
}

function udpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.unref();
    s.once('error', () => resolve(false));
    s.bind(port, host, () => s.close(() => resolve(true)));
  });
}

/**
 * A port that was free a moment ago on `host` for TCP (and UDP when asked),
 * picked by the kernel. Another process can still take it before the tool
 * binds it, so tools that bind it themselves are started with a retry
 * (see `startWithPortRetry`).
 */
export async function freePort(opts: { host?: string; udp?: boolean } = {}): Promise<number> {
  const host = opts.host ?? '127.0.0.1';
  for (let i = 0; i < 50; i++) {
    const p = await tcpFree(host, 0);
    if (p && (!opts.udp || (await udpFree(host, p)))) return p;
  }
  throw new Error(`no free ${opts.udp ? 'TCP+UDP ' : ''}port on ${host}`);
}

/** Calls `start` until it succeeds (up to `attempts`), for tools that bind ports we picked. */
export async function startWithPortRetry<T>(start: () => Promise<T>, attempts = 4): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await start();
    } catch (err) {
      last = err;
      if (!/address already in use|bind/i.test(String(err))) throw err;
    }
  }
  throw last;
}

// ---- lego ------------------------------------------------------------------------

export type LegoChallenge =
  /** lego's own http-01 server on host:port (the port the ACME server validates on). */
  | { type: 'http-01'; port: number; host?: string }
  /** lego writes the token into `webroot`/.well-known/acme-challenge and someone else serves it (many lego runs at once). */
  | { type: 'http-01'; webroot: string }
  /** lego's own tls-alpn-01 server on host:port. */
  | { type: 'tls-alpn-01'; port: number; host?: string };

export interface LegoOptions {
  /** The directory URL (the only server setting lego gets). */
  server: string;
  /** PEM file trusted for the server's HTTPS (LEGO_CA_CERTIFICATES). */
  caFile: string;
  /** lego --path: account and certificates live here; reuse it across run/renew/revoke. */
  path: string;
  domains: string[];
  challenge: LegoChallenge;
  email?: string;
  /** ec256 (default), ec384, rsa2048, rsa4096. */
  keyType?: 'ec256' | 'ec384' | 'rsa2048' | 'rsa4096';
  eab?: { kid: string; hmacKey: string };
  /** An external CSR file (lego --csr) instead of lego's own key. */
  csrFile?: string;
  /** More global options, before the command. */
  extraArgs?: string[];
  /** Kill lego after this long (default 90 s). */
  timeoutMs?: number;
  /** The lego binary (default `lego` on PATH). */
  bin?: string;
}

/** What a finished lego run left behind. */
export interface LegoCertificate {
  /** <path>/certificates/<domain>.crt: leaf then issuer(s) unless --no-bundle. */
  certPath: string;
  keyPath: string;
  /** The issuer chain lego kept apart (may be empty). */
  issuerPath: string;
  /** lego's metadata: domain, certUrl, certStableUrl. */
  metaPath: string;
  certPem: string;
  result: ToolResult;
}

/** lego exited non-zero, timed out, or did not write what it should have; carries its output. */
export class LegoError extends Error {
  constructor(
    readonly result: ToolResult,
    readonly args: string[],
    why: string,
  ) {
    super(`lego ${args.join(' ')}: ${why} after ${(result.durationMs / 1000).toFixed(1)} s${result.timedOut ? ' (timed out, killed)' : ''}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
    this.name = 'LegoError';
  }
}

/** Files lego keeps for `domain` under `legoPath` (a wildcard's `*` becomes `_`). */
export function legoCertificatePaths(legoPath: string, domain: string): Omit<LegoCertificate, 'certPem' | 'result'> {
  const base = path.join(legoPath, 'certificates', domain.replace(/\*/g, '_'));
  return { certPath: `${base}.crt`, keyPath: `${base}.key`, issuerPath: `${base}.issuer.crt`, metaPath: `${base}.json` };
}

function globalArgs(o: LegoOptions): string[] {
  const args = ['--server', o.server, '--accept-tos', '--email', o.email ?? 'lego@example.com', '--path', o.path, '--key-type', o.keyType ?? 'ec256'];
  for (const d of o.domains) args.push('--domains', d);
  const c = o.challenge;
  if (c.type === 'http-01') args.push('--http', ...('webroot' in c ? ['--http.webroot', c.webroot] : ['--http.port', `${c.host ?? '127.0.0.1'}:${c.port}`]));
  else args.push('--tls', '--tls.port', `${c.host ?? '127.0.0.1'}:${c.port}`);
  if (o.eab) args.push('--eab', '--kid', o.eab.kid, '--hmac', o.eab.hmacKey);
  if (o.csrFile) args.push('--csr', o.csrFile);
  return [...args, ...(o.extraArgs ?? [])];
}

/** Runs lego with `args` under LEGO_CA_CERTIFICATES; resolves whatever the exit code. */
export function legoExec(o: Pick<LegoOptions, 'caFile' | 'timeoutMs' | 'bin'>, args: string[]): Promise<ToolResult> {
  return runTool(o.bin ?? 'lego', args, { env: toolEnv({ LEGO_CA_CERTIFICATES: o.caFile }), timeoutMs: o.timeoutMs ?? 90_000 });
}

async function legoCertificateCommand(o: LegoOptions, command: string[]): Promise<LegoCertificate> {
  const args = [...globalArgs(o), ...command];
  const result = await legoExec(o, args);
  if (result.code !== 0) throw new LegoError(result, args, `exited ${result.code ?? result.signal}`);
  // With --csr, lego names the files after the CSR's first name: pass it as domains[0].
  const paths = legoCertificatePaths(o.path, o.domains[0] ?? '');
  if (!fs.existsSync(paths.certPath)) throw new LegoError(result, args, `no certificate at ${paths.certPath}`);
  return { ...paths, certPem: fs.readFileSync(paths.certPath, 'utf8'), result };
}

/** `lego run`: new account (if none under `path`), order, challenge, finalize, download. Throws LegoError on failure. */
export function legoRun(o: LegoOptions): Promise<LegoCertificate> {
  fs.mkdirSync(o.path, { recursive: true });
  return legoCertificateCommand(o, ['run']);
}

/**
 * `lego renew` of the certificate a previous run left under `path`. Forces a
 * renewal (`--days` far beyond any validity) and never sleeps at random.
 */
export function legoRenew(o: LegoOptions & { days?: number; reuseKey?: boolean }): Promise<LegoCertificate> {
  return legoCertificateCommand(o, ['renew', '--days', String(o.days ?? 100_000), '--no-random-sleep', ...(o.reuseKey ? ['--reuse-key'] : [])]);
}

/** `lego revoke` of the certificate under `path` (RFC 5280 reason code, default 0), signed by the account key. */
export async function legoRevoke(o: LegoOptions & { reason?: number; keep?: boolean }): Promise<ToolResult> {
  const args = [...globalArgs(o), 'revoke', '--reason', String(o.reason ?? 0), ...(o.keep === false ? [] : ['--keep'])];
  const result = await legoExec(o, args);
  if (result.code !== 0) throw new LegoError(result, args, `exited ${result.code ?? result.signal}`);
  return result;
}
