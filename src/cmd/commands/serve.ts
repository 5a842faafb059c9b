/**
 * `trellis serve` and `trellis quickstart`. A cluster primary (`--workers N`)
 * only reads its secrets, forks and relays: this module imports at the top
 * only what the primary needs; the rest (the server, zod, pino, prom-client,
 * init) is imported where it is used (docs/performance.md, Memory).
 */
import cluster, { type Worker } from 'node:cluster';
import fs from 'node:fs';
import os from 'node:os';
import { parse, UsageError } from '../../cli/args.js';
import type { Logger } from '../../http/log.js';
import { systemClock } from '../../clock/clock.js';
import { configFile } from '../../config/config-file.js';
import { dataDirOf, passphraseFor, pkcs11Flags, rootPassphraseFlag } from '../secret-flags.js';
import { pinSource } from '../tokens.js';

const serveFlags = {
  host: { type: 'string' },
  port: { type: 'string' },
  tls: { type: 'boolean' },
  'base-url': { type: 'string' },
  db: { type: 'string' },
  workers: { type: 'string' },
  // ACME validation: where challenges are fetched and names resolved, and which private addresses may be reached.
  'acme-http01-port': { type: 'string' },
  'acme-tlsalpn01-port': { type: 'string' },
  'acme-resolver': { type: 'string' },
  'acme-allow-address': { type: 'string', multiple: true },
  // Proxies whose X-Forwarded-For names the client (replaces server.trustedProxies of trellis.json).
  'trusted-proxy': { type: 'string', multiple: true },
  // The PIN of the PKCS#11 token holding the issuing CA keys (or TRELLIS_PKCS11_PIN), when trellis.json names one.
  'pkcs11-pin-file': pkcs11Flags['pkcs11-pin-file'],
  // quickstart only: the root passphrase for a new instance (serve never reads it).
  ...rootPassphraseFlag,
} as const;

function portOf(text: string | undefined, flag = 'port'): number | undefined {
  if (text === undefined) return undefined;
  const p = Number(text);
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new UsageError(`--${flag}: not a port number: ${text}`);
  return p;
}

type ServeValues = {
  data?: string | undefined;
  host?: string | undefined;
  port?: string | undefined;
  tls?: boolean | undefined;
  db?: string | undefined;
  workers?: string | undefined;
  'acme-http01-port'?: string | undefined;
  'acme-tlsalpn01-port'?: string | undefined;
  'acme-resolver'?: string | undefined;
  'acme-allow-address'?: string[] | undefined;
  'trusted-proxy'?: string[] | undefined;
  'pkcs11-pin-file'?: string | undefined;
};

/** What a serving process needs to open its keys: the online passphrase, and the token PIN when CA keys are in a token. */
interface ServeSecrets {
  passphrase: Buffer;
  pkcs11Pin?: Buffer;
}

const clearSecrets = (s: ServeSecrets) => {
  s.passphrase.fill(0);
  s.pkcs11Pin?.fill(0);
};

/** The `--acme-*` flags, checked before anything starts (a bad CIDR or resolver fails at once). */
async function acmeOptionsOf(values: ServeValues) {
  const { parseCidrs, parseResolverAddress } = await import('../../va/index.js');
  const http01Port = portOf(values['acme-http01-port'], 'acme-http01-port');
  const tlsAlpn01Port = portOf(values['acme-tlsalpn01-port'], 'acme-tlsalpn01-port');
  const resolver = values['acme-resolver'];
  if (resolver !== undefined) parseResolverAddress(resolver);
  const allowAddresses = values['acme-allow-address'] ?? [];
  parseCidrs(allowAddresses);
  return { ...(http01Port !== undefined ? { http01Port } : {}), ...(tlsAlpn01Port !== undefined ? { tlsAlpn01Port } : {}), ...(resolver !== undefined ? { resolver } : {}), allowAddresses };
}

function workersOf(text: string | undefined): number {
  if (text === undefined) return 1;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--workers must be 1..64 (cores here: ${os.availableParallelism()})`);
  return n;
}

/**
 * Takes the passphrases and PINs out of this process's environment before
 * anything starts, so no child (cluster worker, OpenSSL, a shell) inherits
 * them. The root's secrets (passphrase, root token PIN) have no business in a
 * server's environment at all.
 */
function scrubEnvironment(log: Logger): void {
  delete process.env.TRELLIS_PASSPHRASE;
  delete process.env.TRELLIS_PKCS11_PIN;
  for (const name of ['TRELLIS_ROOT_PASSPHRASE', 'TRELLIS_PKCS11_ROOT_PIN']) {
    if (process.env[name] === undefined) continue;
    delete process.env[name];
    log({ level: 'warn', msg: `${name} is set in the environment of serve, which never uses it; remove it from the service definition` });
  }
}

/**
 * The log of a cluster primary: pino (~9 MB of RSS) loads with the first
 * line, so a primary with nothing to report never loads it. `written`
 * resolves once the lines logged so far are out.
 */
function primaryLogger(): { log: Logger; written: () => Promise<void> } {
  let logger: Promise<Logger> | undefined;
  let last = Promise.resolve();
  return {
    log(event) {
      logger ??= import('../../http/log.js').then((m) => m.jsonLogger(systemClock));
      last = logger.then((l) => l(event));
    },
    written: () => last,
  };
}

/** trellis.json of a data directory (config/instance-config.ts `configFile`, without loading the config schema). */
/**
 * True when trellis.json (config/instance-config.ts) puts the CA keys in a
 * PKCS#11 token. Only that field is read, without the config schema: the
 * server checks the whole file when it opens the instance, and fails there
 * (in a cluster, the first worker fails and the primary stops).
 */
function keysInToken(dataDir: string): boolean {
  const file = configFile(dataDir);
  if (!fs.existsSync(file)) return false;
  try {
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { keystore?: { type?: unknown } }).keystore?.type === 'pkcs11';
  } catch {
    // Unreadable or not JSON: no PIN is read here; opening the instance reports what is wrong with the file.
    return false;
  }
}

/** The young generation's semi-space cap of a cluster worker, in MiB (V8's default is 16). */
const workerSemiSpaceMiB = 4;
/**
 * How far a cluster worker's old generation may grow past what the last
 * full GC kept, in percent. V8 picks 10-300 % itself from how fast the
 * program allocates, so a busy worker let garbage grow to 2-3 times its live
 * heap (docs/performance.md, Memory).
 */
const workerHeapGrowingPercent = 50;
/**
 * glibc's malloc arenas in a cluster worker (MALLOC_ARENA_MAX, read by glibc
 * when the worker starts): one, shared by all of its threads. By default each
 * thread that allocates (V8's compiler and GC threads, libuv's pool) may get
 * an arena of its own, and memory freed in an arena stays resident for that
 * arena's next allocations (docs/performance.md, Memory).
 */
const workerMallocArenas = 1;

/**
 * With --workers N the primary process forks N workers that share the
 * listening socket (node:cluster); each unlocks the CAs itself. The online
 * passphrase (and the token PIN) reach them over the IPC channel, never
 * through argv or env; each worker logs in to the token itself (a PKCS#11
 * login belongs to one process). The primary keeps them (Buffers, never
 * strings it cannot clear) only to start a replacement for a worker that
 * died; it never opens a key or the token itself.
 *
 * The workers start together but open their keys one at a time: opening
 * software keys runs scrypt with 128 MiB of memory (keys/envelope.ts), so
 * N workers deriving at once would need N × 128 MiB more for a moment. The
 * primary hands the turn to one worker at a time, in the order they ask
 * (server.ts `keyOpeningTurn`). A worker that exits before any worker
 * listens (wrong passphrase, bad trellis.json, port taken) stops the
 * cluster with exit code 1, as `serve` without workers would fail; once
 * one listens, a worker that exits is replaced.
 */
async function startCluster(secrets: ServeSecrets, workers: number, primary: ReturnType<typeof primaryLogger>): Promise<number> {
  // Workers accept connections themselves (the kernel spreads them) instead of
  // the primary accepting each and passing it over IPC: new-connection OCSP
  // load went from 8.5k to 18.7k GET/s on 2 cores (docs/ocsp.md).
  // NODE_CLUSTER_SCHED_POLICY=rr still chooses Node's round-robin.
  if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_NONE;
  // V8 lets each of the two semi-spaces of a worker's young generation grow to 16 MB. A cap of 8 MB kept a worker
  // 11-17 MB less resident, 4 MB another 8-10 MB, each for no measurable CPU per OCSP GET or issuance
  // (docs/performance.md, Memory).
  // A --max-semi-space-size of the operator's (node flags or NODE_OPTIONS) is left as it is.
  // The same for V8's heap growing factor (--heap-growing-percent, a V8 flag NODE_OPTIONS does not take).
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  const unless = (flag: string, value: string) => (given.some((a) => a.startsWith(flag)) ? [] : [`${flag}=${value}`]);
  cluster.setupPrimary({ execArgv: [...process.execArgv, ...unless('--max-semi-space-size', String(workerSemiSpaceMiB)), ...unless('--heap-growing-percent', String(workerHeapGrowingPercent))] });
  // The same for MALLOC_ARENA_MAX in the environment.
  const workerEnv = process.env.MALLOC_ARENA_MAX === undefined ? { MALLOC_ARENA_MAX: String(workerMallocArenas) } : {};
  const { log } = primary;
  // A worker answering GET /metrics asks here for every worker's metrics (src/metrics/cluster.ts).
  (await import('../../metrics/cluster.js')).serveClusterMetrics();
  let stopping = false;
  let announced = false;
  /** The worker opening its keys now, and those waiting for their turn. */
  let opening: Worker | undefined;
  const waiting: Worker[] = [];
  const nextTurn = () => {
    if (opening || stopping) return;
    opening = waiting.shift();
    opening?.send({ type: 'key-opening-turn' });
  };
  const fork = () => {
    const w = cluster.fork(workerEnv);
    let sent = false;
    w.on('message', (m: { type?: string; url?: string }) => {
      // Once per worker: a worker asks before it opens its keys, and never again.
      if (m.type === 'need-passphrase' && !sent) {
        sent = true;
        w.send({ type: 'passphrase', passphrase: secrets.passphrase.toString('base64'), ...(secrets.pkcs11Pin ? { pkcs11Pin: secrets.pkcs11Pin.toString('base64') } : {}) });
      }
      if (m.type === 'key-opening-ask' && opening !== w && !waiting.includes(w)) {
        waiting.push(w);
        nextTurn();
      }
      if (m.type === 'key-opening-done' && opening === w) {
        opening = undefined;
        nextTurn();
      }
      if (m.type === 'listening' && !announced) {
        announced = true;
        process.stderr.write(`Trellis is serving on ${m.url} with ${workers} workers (Ctrl-C to stop)\n`);
      }
    });
    w.on('exit', (code, signal) => {
      if (opening === w) opening = undefined;
      if (waiting.includes(w)) waiting.splice(waiting.indexOf(w), 1);
      nextTurn();
      if (stopping) return;
      if (!announced) {
        // Its error is on stderr already (the worker's own message).
        log({ level: 'error', msg: 'a worker failed to start; stopping', code, signal });
        stop('start failed', 1);
        return;
      }
      log({ level: 'error', msg: 'worker exited; starting another', code, signal });
      fork();
    });
  };
  for (let i = 0; i < workers; i++) fork();
  const stop = (signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    clearSecrets(secrets);
    log({ msg: 'shutting down', signal });
    const exit = () => void primary.written().finally(() => process.exit(exitCode));
    const alive = Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead());
    let left = alive.length;
    if (left === 0) return exit();
    for (const w of alive) {
      w!.once('exit', () => --left === 0 && exit());
      w!.process.kill('SIGTERM');
    }
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return 0;
}

/** In a cluster worker: waits for the primary to hand this worker the turn to open its keys; resolves to the function that hands it back. */
function keyOpeningTurnFromPrimary(): Promise<() => void> {
  return new Promise((resolve) => {
    const onMessage = (m: { type?: string }) => {
      if (m.type !== 'key-opening-turn') return;
      process.off('message', onMessage);
      resolve(() => process.send?.({ type: 'key-opening-done' }));
    };
    process.on('message', onMessage);
    process.send?.({ type: 'key-opening-ask' });
  });
}

/** In a cluster worker: the passphrase (and token PIN) arrive from the primary. */
function passphraseFromPrimary(): Promise<ServeSecrets> {
  return new Promise((resolve) => {
    const onMessage = (m: { type?: string; passphrase?: string; pkcs11Pin?: string }) => {
      if (m.type !== 'passphrase') return;
      process.off('message', onMessage);
      resolve({ passphrase: Buffer.from(m.passphrase ?? '', 'base64'), ...(m.pkcs11Pin ? { pkcs11Pin: Buffer.from(m.pkcs11Pin, 'base64') } : {}) });
    };
    process.on('message', onMessage);
    process.send?.({ type: 'need-passphrase' });
  });
}

/**
 * The secrets of a serving process: from the primary in a worker, else from
 * their usual sources; the token PIN only when trellis.json puts CA keys in a token.
 */
async function serveSecrets(values: ServeValues & { 'passphrase-file'?: string | undefined }, log: Logger): Promise<ServeSecrets> {
  if (cluster.isWorker) return passphraseFromPrimary();
  const passphrase = Buffer.from(await passphraseFor(values), 'utf8');
  const pkcs11Pin = keysInToken(dataDirOf(values.data)) ? await pinSource('online', values['pkcs11-pin-file'])() : undefined;
  scrubEnvironment(log);
  return { passphrase, ...(pkcs11Pin ? { pkcs11Pin } : {}) };
}

async function start(values: ServeValues, secrets: ServeSecrets, primary: ReturnType<typeof primaryLogger>): Promise<number> {
  const workers = workersOf(values.workers);
  const trustedProxies = values['trusted-proxy'];
  // Checked before forking: a bad CIDR fails here once, not in every worker.
  if (trustedProxies) (await import('../../http/request-context.js')).trustedProxies(trustedProxies);
  if (workers > 1 && cluster.isPrimary) return startCluster(secrets, workers, primary);
  const log = (await import('../../http/log.js')).jsonLogger(systemClock);
  const port = portOf(values.port);
  const acme = await acmeOptionsOf(values);
  // Imported here, not at the top: a cluster primary only forks and never loads the CA, Prisma or express.
  const { serve } = await import('../server.js');
  const db = values.db ?? process.env.TRELLIS_DATABASE_URL;
  const serving = await serve({
    dataDir: dataDirOf(values.data),
    ...(values.host ? { host: values.host } : {}),
    ...(port !== undefined ? { port } : {}),
    tls: !!values.tls,
    passphrase: secrets.passphrase,
    ...(secrets.pkcs11Pin ? { pkcs11Pin: secrets.pkcs11Pin } : {}),
    log,
    // One log line per request unless TRELLIS_ACCESS_LOG=off (benchmarks, or a proxy that logs already).
    accessLog: process.env.TRELLIS_ACCESS_LOG !== 'off',
    ...(db ? { databaseUrl: db } : {}),
    acme,
    ...(trustedProxies ? { trustedProxies } : {}),
    ...(cluster.isWorker ? { keyOpeningTurn: keyOpeningTurnFromPrimary } : {}),
  })
    .catch((err: unknown) => {
      // A worker that cannot serve exits with 1 once main has written the error (stderr writes are synchronous);
      // its IPC channel to the primary would keep it alive otherwise.
      if (cluster.isWorker) setImmediate(() => process.exit(1));
      throw err;
    })
    .finally(() => clearSecrets(secrets));
  if (cluster.isWorker) process.send?.({ type: 'listening', url: serving.url });
  else process.stderr.write(`Trellis is serving on ${serving.url} (Ctrl-C to stop)\n`);
  const stop = (signal: string) => {
    log({ msg: 'shutting down', signal });
    serving.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, serveFlags);
  if (values['root-passphrase-file']) throw new UsageError('serve never opens the root key: --root-passphrase-file belongs to ceremonies');
  const primary = primaryLogger();
  return start(values, await serveSecrets(values, primary.log), primary);
}

/**
 * init when there is no CA yet, then serve. Passphrases the operator did not
 * give (TRELLIS_PASSPHRASE / --passphrase-file, TRELLIS_ROOT_PASSPHRASE /
 * --root-passphrase-file) are generated and shown once; the root passphrase
 * is then dropped before serving.
 */
export async function runQuickstart(argv: string[]): Promise<number> {
  const { values } = parse(argv, serveFlags);
  const dataDir = dataDirOf(values.data);
  const primary = primaryLogger();
  if (fs.existsSync(configFile(dataDir)) || cluster.isWorker) return start(values, await serveSecrets(values, primary.log), primary);
  const { actorOf, assertDistinct, generatedPassphrase, out, rootPassphraseFor, rootPassphraseGiven } = await import('./common.js');
  const generated = !process.env.TRELLIS_PASSPHRASE && !values['passphrase-file'];
  const passphrase = generated ? generatedPassphrase() : await passphraseFor(values, { forNew: true });
  const rootPassphrase = rootPassphraseGiven(values) ? await rootPassphraseFor(values, { forNew: true }) : undefined;
  if (rootPassphrase !== undefined) assertDistinct(passphrase, rootPassphrase);
  scrubEnvironment(primary.log);
  const port = portOf(values.port) ?? 8080;
  const scheme = values.tls ? 'https' : 'http';
  const db = values.db ?? process.env.TRELLIS_DATABASE_URL;
  const { initInstance } = await import('../init-instance.js');
  const { printInit } = await import('./init.js');
  const result = await initInstance({
    dataDir,
    baseUrl: values['base-url'] ?? `${scheme}://localhost:${port}`,
    ...(db ? { databaseUrl: db } : {}),
    passphrase,
    ...(rootPassphrase !== undefined ? { rootPassphrase } : {}),
    actor: actorOf(),
  });
  printInit(out(values), result);
  if (generated) {
    process.stderr.write(
      `\nOnline CA key passphrase (shown once, store it safely; needed to restart):\n\n    ${passphrase}\n\nRestart later with: TRELLIS_PASSPHRASE='<passphrase>' npx trellis quickstart\n\n`,
    );
  }
  return start(values, { passphrase: Buffer.from(passphrase, 'utf8') }, primary);
}
