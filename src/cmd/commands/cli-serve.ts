/** `trellis serve` and `trellis quickstart`. */
import cluster from 'node:cluster';
import fs from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { parse, UsageError } from '../../cli/args.js';
import { configFile } from '../../config/instance-config.js';
import { jsonLogger } from '../../http/log.js';
import { systemClock } from '../../clock/clock.js';
import { printInit } from './cli-init.js';
import { actorOf, dataDirOf, out, passphraseFor } from './common.js';

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
 * With --workers N the primary process forks N workers that share the
 * listening socket (node:cluster); each unlocks the CAs itself. The
 * passphrase reaches them over the IPC channel, never through argv or env.
 */
async function startCluster(passphrase: string, workers: number): Promise<number> {
  // Workers accept connections themselves (the kernel spreads them) instead of
  // the primary accepting each and passing it over IPC: new-connection OCSP
  // load went from 8.5k to 18.7k GET/s on 2 cores (docs/ocsp.md).
  // NODE_CLUSTER_SCHED_POLICY=rr still chooses Node's round-robin.
  if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_NONE;
  const log = jsonLogger(systemClock);
  let stopping = false;
  let announced = false;
  const fork = () => {
    const w = cluster.fork();
    w.on('message', (m: { type?: string; url?: string }) => {
      if (m.type === 'need-passphrase') w.send({ type: 'passphrase', passphrase });
      if (m.type === 'listening' && !announced) {
        announced = true;
        process.stderr.write(`Trellis is serving on ${m.url} with ${workers} workers (Ctrl-C to stop)\n`);
      }
    });
    w.on('exit', (code, signal) => {
      if (stopping) return;
      log({ level: 'error', msg: 'worker exited; starting another', code, signal });
      fork();
    });
  };
  for (let i = 0; i < workers; i++) fork();
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log({ msg: 'shutting down', signal });
    const alive = Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead());
    let left = alive.length;
    if (left === 0) process.exit(0);
    for (const w of alive) {
      w!.once('exit', () => --left === 0 && process.exit(0));
      w!.process.kill('SIGTERM');
    }
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return 0;
}

/** In a cluster worker: the passphrase arrives from the primary. */
function passphraseFromPrimary(): Promise<string> {
  return new Promise((resolve) => {
    const onMessage = (m: { type?: string; passphrase?: string }) => {
      if (m.type !== 'passphrase') return;
      process.off('message', onMessage);
      resolve(m.passphrase ?? '');
    };
    process.on('message', onMessage);
    process.send?.({ type: 'need-passphrase' });
  });
}

async function start(values: ServeValues, passphrase: string): Promise<number> {
  const workers = workersOf(values.workers);
  if (workers > 1 && cluster.isPrimary) return startCluster(passphrase, workers);
  const log = jsonLogger(systemClock);
  const port = portOf(values.port);
  const acme = await acmeOptionsOf(values);
  // Imported here, not at the top: a cluster primary only forks and never loads the CA, Prisma or express.
  const { serve } = await import('./serve.js');
  const db = values.db ?? process.env.TRELLIS_DATABASE_URL;
  const serving = await serve({
    dataDir: dataDirOf(values.data),
    ...(values.host ? { host: values.host } : {}),
    ...(port !== undefined ? { port } : {}),
    tls: !!values.tls,
    passphrase,
    log,
    // One log line per request unless TRELLIS_ACCESS_LOG=off (benchmarks, or a proxy that logs already).
    accessLog: process.env.TRELLIS_ACCESS_LOG !== 'off',
    ...(db ? { databaseUrl: db } : {}),
    acme,
  });
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
  return start(values, cluster.isWorker ? await passphraseFromPrimary() : await passphraseFor(values));
}

/** init when there is no CA yet (showing a generated passphrase once unless TRELLIS_PASSPHRASE is set), then serve. */
export async function runQuickstart(argv: string[]): Promise<number> {
  const { values } = parse(argv, serveFlags);
  const dataDir = dataDirOf(values.data);
  let passphrase: string;
  if (!fs.existsSync(configFile(dataDir))) {
    const generated = !process.env.TRELLIS_PASSPHRASE && !values['passphrase-file'];
    passphrase = generated ? randomBytes(18).toString('base64url') : await passphraseFor(values, { forNew: true });
    const port = portOf(values.port) ?? 8080;
    const scheme = values.tls ? 'https' : 'http';
    const db = values.db ?? process.env.TRELLIS_DATABASE_URL;
    const { initInstance } = await import('./init.js');
    const result = await initInstance({ dataDir, baseUrl: values['base-url'] ?? `${scheme}://localhost:${port}`, ...(db ? { databaseUrl: db } : {}), passphrase, actor: actorOf() });
    printInit(out(values), result);
    if (generated) {
      process.stderr.write(
        `\nCA key passphrase (shown once, store it safely; needed to restart):\n\n    ${passphrase}\n\nRestart later with: TRELLIS_PASSPHRASE='<passphrase>' npx trellis quickstart\n\n`,
      );
    }
  } else {
    passphrase = cluster.isWorker ? await passphraseFromPrimary() : await passphraseFor(values);
  }
  return start(values, passphrase);
}
