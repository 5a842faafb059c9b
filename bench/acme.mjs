#!/usr/bin/env node
/**
 * `npm run bench:acme`: complete ACME orders per second on loopback (new
 * order → authorization → challenge → finalize with a fresh P-256 CSR →
 * certificate download, every certificate parsed and counted), Trellis
 * against Debian's pebble, driven by the same client (bench/lib/acme-client.mjs):
 * many concurrent clients, each its own ES256 account made before timing
 * starts, each running one order after another.
 *
 * Validation is mocked at the validation component only:
 * - pebble: PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_VA_NOSLEEP=1 (and
 *   PEBBLE_WFE_NONCEREJECT=0, PEBBLE_AUTHZREUSE=0: no deliberate badNonce,
 *   a fresh authorization per order as on Trellis);
 * - Trellis: `serve()` from dist/ with `acme: { validator }`, a stub that
 *   answers valid at once; everything else (JWS, nonces, store, RA checks,
 *   CA signing, audit) is the real server. It runs in a child process (this
 *   script with --trellis-server), with BENCH_WORKERS cluster workers.
 *
 * Pebble 2.4 deadlocks under fast concurrent clients (anchors.md §4c says
 * near 50 lego processes; with this client 1 run in 3 at 8 clients and
 * nearly every run at 16: its store takes locks in two orders), so it gets 8
 * by default and at most 20; a run where pebble stops answering is restarted
 * (ACME_PEBBLE_ATTEMPTS).
 *
 * Clients poll only when the server says the object is not ready yet,
 * waiting Retry-After (at least ACME_MIN_POLL_MS); they finalize as soon as
 * the authorization is valid, as lego does.
 *
 * Environment: ACME_CLIENTS (Trellis clients, 32: the figure issue 13 sets its goal at), ACME_PEBBLE_CLIENTS (8,
 * at most 20), BENCH_SECONDS (measured seconds, 10), BENCH_WARMUP (seconds,
 * 2), ACME_ORDERS (instead of a duration: this many measured orders per
 * server, bounded by ACME_MAX_SECONDS, 120), ACME_CSRS (size of the
 * pre-made CSR pool, 12000; a run that empties it ends early, with a
 * warning), ACME_MIN_POLL_MS (10), ACME_IDLE_WAIT (seconds to wait for the
 * machine to be idle before each server's run, 30), BENCH_WORKERS (Trellis cluster workers,
 * 2), ACME_ONLY (pebble or trellis), BENCH_DIST (compiled Trellis, default
 * dist/), BENCH_CPU_PROF=1 (run the Trellis server under `node --cpu-prof`
 * and summarise the profiles with bench/profile-summary.mjs),
 * BENCH_PROFILE_DIR (where they go; default a kept temp dir),
 * BENCH_ACCESS_LOG (on, as users run Trellis; off for its cost),
 * BENCH_KEEP=1 (keep the temp dir), BENCH_DATABASE_URL (a PostgreSQL server,
 * e.g. postgres://postgres@127.0.0.1:5432/postgres: Trellis then runs on a
 * fresh database made there and dropped after; default SQLite). A shortened run: BENCH_SECONDS=3
 * BENCH_WARMUP=1 ACME_CSRS=2000.
 *
 * The table gives each server's orders/s, its cores and its CPU per order
 * (server cores × seconds ÷ orders: the figure to compare on a busy machine).
 *
 * Last line:
 *   RESULT acme_orders <trellis orders/s> orders/s baseline <pebble orders/s> ratio <x>
 * Exit code 1 when an order failed or a certificate did not parse, 2 on a
 * setup error; when the Trellis ACME server is not in dist/ the RESULT says
 * n/a and the reason is printed above it.
 */
import cluster from 'node:cluster';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { BenchAcmeClient, makeAgent, p256Csr } from './lib/acme-client.mjs';
import { certificateRowsPg, freshDatabase } from './lib/pg-database.mjs';
import { buildInfo, cpuProfiler, envInt, freePort, benchTempDir, machineBusy, mapLimit, processCpuTicks, reporter, requireTools, run, runMain, runOk, sampleProcess, startChild, waitReady } from './lib/harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// USER_HZ: the unit of utime and stime in /proc/<pid>/stat on Linux.
const ticksPerSecond = 100;
const passphrase = 'bench-passphrase-not-secret';

// ---- the Trellis server child (`node bench/acme.mjs --trellis-server`) ----------------

/**
 * Runs `serve()` from the compiled Trellis with the always-valid validator;
 * with BENCH_WORKERS > 1, as node:cluster workers sharing the port (like
 * `trellis serve --workers`). Settings come from the environment the parent
 * sets: BENCH_DIST, BENCH_TRELLIS_DATA, BENCH_TRELLIS_PORT, TRELLIS_PASSPHRASE.
 */
async function trellisServerMain() {
  const workers = Number(process.env.BENCH_WORKERS ?? '1');
  const log = (event) => process.stdout.write(`${JSON.stringify({ t: new Date().toISOString(), pid: process.pid, ...event })}\n`);
  if (workers > 1 && cluster.isPrimary) {
    // As `trellis serve --workers`: the workers accept connections themselves.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    for (let i = 0; i < workers; i++) cluster.fork();
    let stopping = false;
    cluster.on('exit', (w, code, signal) => {
      if (!stopping) {
        log({ level: 'error', msg: 'bench worker died', code, signal });
        process.exit(1);
      }
    });
    const stop = () => {
      stopping = true;
      const alive = Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead());
      let left = alive.length;
      if (!left) process.exit(0);
      for (const w of alive) {
        w.once('exit', () => --left === 0 && process.exit(0));
        w.process.kill('SIGTERM');
      }
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    return;
  }
  const dist = process.env.BENCH_DIST;
  const { serve } = await import(pathToFileURL(path.join(dist, 'cmd', 'server.js')).href);
  let validations = 0;
  // The stub replaces only the validation component: "valid", at once, for any challenge.
  const validator = {
    async validate() {
      validations++;
      return { status: 'valid', validatedAt: new Date(), address: '127.0.0.1', records: [] };
    },
  };
  const serving = await serve({
    dataDir: process.env.BENCH_TRELLIS_DATA,
    port: Number(process.env.BENCH_TRELLIS_PORT),
    tls: true,
    passphrase: process.env.TRELLIS_PASSPHRASE,
    log,
    // One line per request, as users run it (BENCH_ACCESS_LOG=off to price it).
    accessLog: process.env.TRELLIS_ACCESS_LOG !== 'off',
    acme: { validator },
  });
  log({ msg: 'bench serving', url: serving.url });
  const stop = () =>
    serving.close().then(
      () => {
        log({ msg: 'bench stopped', validations });
        process.exit(0);
      },
      (err) => {
        log({ level: 'error', msg: 'close failed', error: String(err) });
        process.exit(1);
      },
    );
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[2] === '--trellis-server') {
  trellisServerMain().catch((err) => {
    process.stdout.write(`${JSON.stringify({ level: 'error', msg: 'bench server failed', error: String(err?.stack ?? err) })}\n`);
    process.exit(1);
  });
} else {
  benchMain();
}

// ---- the benchmark ------------------------------------------------------------------------

function benchMain() {
  const cfg = {
    // 32 concurrent clients: the count issue 13's goal (≥ 500 orders/s) is set
    // at. More clients make bigger commit and signing batches (ACME_CLIENTS=128
    // for the figures of earlier runs).
    clients: envInt('ACME_CLIENTS', 32),
    pebbleClients: envInt('ACME_PEBBLE_CLIENTS', 8),
    seconds: envInt('BENCH_SECONDS', 10),
    warmup: envInt('BENCH_WARMUP', 2, 0),
    orders: envInt('ACME_ORDERS', 0, 0),
    maxSeconds: envInt('ACME_MAX_SECONDS', 120),
    csrs: envInt('ACME_CSRS', 12_000, 10),
    minPollMs: envInt('ACME_MIN_POLL_MS', 5, 0),
    timeoutMs: envInt('ACME_REQUEST_TIMEOUT_MS', 10_000),
    stallMs: envInt('ACME_STALL_MS', 5_000),
    pebbleAttempts: envInt('ACME_PEBBLE_ATTEMPTS', 4),
    workers: envInt('BENCH_WORKERS', 2),
    only: process.env.ACME_ONLY ?? '',
    dist: path.resolve(process.env.BENCH_DIST ?? path.join(root, 'dist')),
    keep: process.env.BENCH_KEEP === '1',
    cpuProf: process.env.BENCH_CPU_PROF === '1',
    idleWaitSeconds: envInt('ACME_IDLE_WAIT', 30, 0),
  };
  if (cfg.only && !['pebble', 'trellis'].includes(cfg.only)) throw new Error(`ACME_ONLY: pebble or trellis, not ${cfg.only}`);

  const { failures, fail, warn, log } = reporter();
  const tmp = benchTempDir('acme', cfg.keep);

  // ---- helpers ----

  const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);
  const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

  /** Waits up to ACME_IDLE_WAIT seconds for the machine to be < 15 % busy; returns the last reading. */
  async function waitIdle(label) {
    let busy;
    const deadline = Date.now() + cfg.idleWaitSeconds * 1000;
    do {
      busy = await machineBusy(1000);
      if (busy < 0.15) return busy;
    } while (Date.now() < deadline);
    warn(`machine still ${(100 * busy).toFixed(0)}% busy before the ${label} run: other work skews its figures`);
    return busy;
  }

  /** The pre-made orders: a unique name and a CSR with a fresh P-256 key each; timed to show the client's cost. */
  function makeCsrPool(n) {
    const t0 = performance.now();
    const pool = [];
    for (let i = 0; i < n; i++) {
      const name = `o${i}-${crypto.randomBytes(3).toString('hex')}.bench.example`;
      pool.push({ name, csrDer: p256Csr([name]) });
    }
    return { pool, usPerCsr: ((performance.now() - t0) * 1000) / n };
  }

  /**
   * Makes `clients` accounts, warms up, then runs orders until the time (or
   * the count) is up. Every downloaded chain is parsed; the leaf must name
   * the order's identifier.
   */
  async function runLoad({ label, directoryUrl, caPem, pinLocalhost, clients, pool, serverPid, workerPids = () => [] }) {
    const agent = makeAgent({ url: directoryUrl, caPem, maxSockets: clients * 2, pinLocalhost });
    const accounts = await mapLimit(
      Array.from({ length: clients }, (_, i) => i),
      4,
      async () => (await new BenchAcmeClient({ directoryUrl, agent, minPollMs: cfg.minPollMs, timeoutMs: cfg.timeoutMs }).init()).newAccount(),
    );
    log(`${label}: ${clients} accounts made`);
    let next = 0;
    const phases = { newOrder: [], authz: [], challenge: [], finalize: [], download: [], order: [] };
    const errors = new Map();
    const counters = { ok: 0, failed: 0, badCert: 0 };
    // Pebble's store can deadlock (anchors §4c): when no order completes for
    // ACME_STALL_MS, stop, drop the sockets (so that in-flight requests fail
    // now rather than at their timeout) and report the run as stalled.
    let lastProgress = Date.now();
    let stalled = false;
    const watchdog = setInterval(() => {
      if (Date.now() - lastProgress < cfg.stallMs) return;
      stalled = true;
      agent.destroy();
    }, 250);

    /** Each client runs orders back to back while `more()` holds; only `record` runs are counted. */
    const drive = (more, record) =>
      Promise.all(
        accounts.map(async (c) => {
          while (!stalled && more() && next < pool.length) {
            const item = pool[next++];
            const t0 = performance.now();
            try {
              const chainPem = await c.completeOrder(item.name, item.csrDer, record ? (p, ms) => phases[p].push(ms) : () => {});
              const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(chainPem);
              const leaf = first ? new crypto.X509Certificate(first[0]) : undefined;
              const good = leaf && (leaf.subjectAltName ?? '').split(', ').includes(`DNS:${item.name}`);
              lastProgress = Date.now();
              if (!record) continue;
              if (good) {
                counters.ok++;
                phases.order.push(performance.now() - t0);
              } else {
                counters.badCert++;
                if (counters.badCert === 1) fail(`${label}: certificate for ${item.name} does not parse or does not name it: ${chainPem.slice(0, 200)}`);
              }
            } catch (err) {
              if (stalled) continue;
              if (!record) {
                errors.set(`warm-up: ${err.message}`, (errors.get(`warm-up: ${err.message}`) ?? 0) + 1);
                continue;
              }
              counters.failed++;
              const key = String(err.message).slice(0, 300);
              errors.set(key, (errors.get(key) ?? 0) + 1);
            }
          }
        }),
      );

    if (cfg.warmup > 0) {
      log(`${label}: warm-up ${cfg.warmup} s`);
      const end = Date.now() + cfg.warmup * 1000;
      await drive(() => Date.now() < end, false);
      if (stalled) {
        clearInterval(watchdog);
        return { label, stalled: true, when: 'during the warm-up' };
      }
    }
    const stats0 = accounts.reduce((s, c) => ({ badNonce: s.badNonce + c.stats.badNonce, polls: s.polls + c.stats.polls, requests: s.requests + c.stats.requests }), { badNonce: 0, polls: 0, requests: 0 });
    const measured0 = next;
    const connections0 = agent.connectionsOpened;
    const limit = cfg.orders ? `${cfg.orders} orders (at most ${cfg.maxSeconds} s)` : `${cfg.seconds} s`;
    log(`${label}: measuring ${limit}, ${clients} clients`);
    const cpu0 = process.cpuUsage();
    const sampler = serverPid ? sampleProcess(serverPid, 200) : undefined;
    const workers0 = workerPids().map((pid) => ({ pid, ticks: processCpuTicks(pid) }));
    const startedAt = new Date().toISOString();
    const t0 = performance.now();
    const end = Date.now() + (cfg.orders ? cfg.maxSeconds : cfg.seconds) * 1000;
    const stopAt = cfg.orders ? measured0 + cfg.orders : Infinity;
    await drive(() => Date.now() < end && next < stopAt, true);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const mem = sampler?.stop();
    const endedAt = new Date().toISOString();
    const connectionsOpened = agent.connectionsOpened - connections0;
    const workers = workers0.map(({ pid, ticks }) => ({ pid, cores: (processCpuTicks(pid) - ticks) / ticksPerSecond / seconds }));
    clearInterval(watchdog);
    agent.destroy();
    if (stalled) return { label, stalled: true, when: `${Math.max(0, seconds - cfg.stallMs / 1000).toFixed(1)} s into the measured run` };
    const stats = accounts.reduce((s, c) => ({ badNonce: s.badNonce + c.stats.badNonce, polls: s.polls + c.stats.polls, requests: s.requests + c.stats.requests }), { badNonce: 0, polls: 0, requests: 0 });
    if (next >= pool.length) warn(`${label}: the CSR pool (${pool.length}) ran out after ${seconds.toFixed(1)} s: raise ACME_CSRS`);
    for (const [msg, n] of errors) (msg.startsWith('warm-up') ? warn : fail)(`${label}: ${n} order(s) failed: ${msg}`);
    for (const k of Object.keys(phases)) phases[k].sort((a, b) => a - b);
    const ordersDone = counters.ok;
    return {
      label,
      clients,
      ...counters,
      seconds,
      perSec: ordersDone / seconds,
      phases,
      badNonce: stats.badNonce - stats0.badNonce,
      pollsPerOrder: ordersDone ? (stats.polls - stats0.polls) / ordersDone : NaN,
      requestsPerOrder: ordersDone ? (stats.requests - stats0.requests) / ordersDone : NaN,
      clientCores: (cpu.user + cpu.system) / 1e6 / seconds,
      serverCores: mem?.serverCores ?? NaN,
      peakKiB: mem?.peakKiB ?? NaN,
      machineBusy: mem?.machineBusy ?? NaN,
      startedAt,
      endedAt,
      connectionsOpened,
      workers,
    };
  }

  // ---- pebble ----

  async function startPebble(tools) {
    const dir = fs.mkdtempSync(path.join(tmp, 'pebble-'));
    const f = (n) => path.join(dir, n);
    await runOk(tools.openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('key.pem'), '-out', f('cert.pem'), '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
    const [port, mport, httpPort, tlsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    fs.writeFileSync(
      f('config.json'),
      JSON.stringify({ pebble: { listenAddress: `127.0.0.1:${port}`, managementListenAddress: `127.0.0.1:${mport}`, certificate: f('cert.pem'), privateKey: f('key.pem'), httpPort, tlsPort, ocspResponderURL: '', externalAccountBindingRequired: false } }),
    );
    const env = { ...process.env, PEBBLE_VA_ALWAYS_VALID: '1', PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' };
    const logFile = f('pebble.log');
    const server = startChild(tools.pebble, ['-config', f('config.json')], { env, cwd: dir, logFile });
    const directoryUrl = `https://127.0.0.1:${port}/dir`;
    const caPem = fs.readFileSync(f('cert.pem'), 'utf8');
    await waitReady(async () => /Listening on/.test(fs.readFileSync(logFile, 'utf8')), { child: server, what: `pebble (log: ${logFile})` });
    return { server, directoryUrl, caPem, logFile };
  }

  async function benchPebble(tools, pool) {
    let clients = cfg.pebbleClients;
    if (clients > 20) {
      warn(`ACME_PEBBLE_CLIENTS=${clients}: pebble 2.4 deadlocks under load (anchors §4c); using 20`);
      clients = 20;
    }
    for (let attempt = 1; ; attempt++) {
      await waitIdle('pebble');
      const p = await startPebble(tools);
      log(`pebble: ${p.directoryUrl} (pid ${p.server.pid}), attempt ${attempt}`);
      const r = await runLoad({ label: 'pebble', directoryUrl: p.directoryUrl, caPem: p.caPem, pinLocalhost: false, clients, pool, serverPid: p.server.pid });
      await p.server.stop(5_000);
      if (!r.stalled) return { ...r, attempts: attempt };
      const msg = `pebble stopped answering ${r.when}, attempt ${attempt} (its in-memory store deadlocks, anchors §4c; log: ${p.logFile})`;
      if (attempt >= cfg.pebbleAttempts) {
        fail(`${msg}; giving up after ${attempt} attempts (lower ACME_PEBBLE_CLIENTS)`);
        return { label: 'pebble', missing: msg };
      }
      warn(`${msg}; restarting it and measuring again`);
    }
  }

  // ---- Trellis ----

  /** Why the compiled Trellis cannot serve ACME yet, or ''. */
  function trellisMissing() {
    const serveJs = path.join(cfg.dist, 'cmd', 'server.js');
    if (!fs.existsSync(path.join(cfg.dist, 'cmd', 'main.js'))) return `${cfg.dist} is missing: run \`npm run build\` first`;
    if (!fs.existsSync(serveJs)) return `${serveJs} is missing`;
    const src = fs.readFileSync(serveJs, 'utf8');
    if (!/acme/i.test(src)) return `${serveJs} has no ACME wiring yet (serve() must accept { acme: { validator } })`;
    return '';
  }

  async function benchTrellis(pool) {
    const missing = trellisMissing();
    if (missing) return { missing };
    const dir = path.join(tmp, 'trellis');
    const data = path.join(dir, 'data');
    fs.mkdirSync(dir, { recursive: true });
    const env = { ...process.env, TRELLIS_PASSPHRASE: passphrase };
    // The access log is on, as users run it, unless BENCH_ACCESS_LOG=off.
    if (process.env.BENCH_ACCESS_LOG === 'off') env.TRELLIS_ACCESS_LOG = 'off';
    else delete env.TRELLIS_ACCESS_LOG;
    delete env.NODE_OPTIONS;
    const pgDb = process.env.BENCH_DATABASE_URL ? await freshDatabase(process.env.BENCH_DATABASE_URL, 'trellis_bench_acme') : undefined;
    if (pgDb) env.TRELLIS_DATABASE_URL = pgDb.url;
    try {
      return await runTrellis(pool, dir, data, env, pgDb);
    } finally {
      if (pgDb && !cfg.keep) await pgDb.drop().catch((err) => warn(`could not drop ${pgDb.name}: ${err.message}`));
    }
  }

  async function runTrellis(pool, dir, data, env, pgDb) {
    const main = path.join(cfg.dist, 'cmd', 'main.js');
    const cli = (...args) => runOk(process.execPath, [main, ...args, '--data', data], { env, cwd: dir });
    const port = await freePort();
    const base = `https://localhost:${port}`;
    log('trellis: init');
    await cli('init', '--yes', '--base-url', base);
    const caPem = (await cli('ca', 'cert', '--root')).stdout;
    // Per-account and per-address limits would stop a loopback benchmark (every client is 127.0.0.1): off (0).
    const configFile = path.join(data, 'trellis.json');
    const conf = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    conf.acme = { ...conf.acme, rateLimits: { ...conf.acme?.rateLimits, newOrdersPerAccountPerHour: 0, newOrdersPerAddressPerHour: 0, newAccountsPerAddressPerHour: 0 } };
    fs.writeFileSync(configFile, `${JSON.stringify(conf, null, 2)}\n`);
    const rowsOf = () => (pgDb ? certificateRowsPg(pgDb.url).catch((err) => void warn(`cannot count certificate rows: ${err.message}`)) : countRows(path.join(data, 'trellis.db')));
    const rowsBefore = await rowsOf();

    await waitIdle('trellis');
    const serverLog = path.join(dir, 'serve.log');
    // Cluster workers inherit the parent's execArgv, so each writes its own profile at exit.
    const profiler = cpuProfiler(cfg.cpuProf, 'trellis-bench-acme-prof-');
    profiler.start();
    const server = startChild(process.execPath, [...profiler.nodeArgs, fileURLToPath(import.meta.url), '--trellis-server'], {
      env: { ...env, BENCH_DIST: cfg.dist, BENCH_TRELLIS_DATA: data, BENCH_TRELLIS_PORT: String(port), BENCH_WORKERS: String(cfg.workers) },
      cwd: dir,
      logFile: serverLog,
    });
    const directoryUrl = `${base}/acme/directory`;
    const probeAgent = makeAgent({ url: directoryUrl, caPem, pinLocalhost: true });
    try {
      await waitReady(async () => !!(await new BenchAcmeClient({ directoryUrl, agent: probeAgent, timeoutMs: 2000 }).init()), { child: server, what: `trellis ACME directory ${directoryUrl} (log: ${serverLog})`, timeoutMs: 60_000 });
    } catch (err) {
      await server.stop(10_000);
      const tail = fs.existsSync(serverLog) ? fs.readFileSync(serverLog, 'utf8').split('\n').slice(-15).join('\n') : '';
      return { missing: `${err.message}\n${tail}` };
    } finally {
      probeAgent.destroy();
    }
    log(`trellis: ${directoryUrl} (pid ${server.pid}, ${cfg.workers} worker(s))`);
    const r = await runLoad({ label: 'trellis', directoryUrl, caPem, pinLocalhost: true, clients: cfg.clients, pool, serverPid: server.pid, workerPids: () => servingPids(serverLog) });
    const code = await server.stop(30_000);
    if (r.stalled) {
      fail(`trellis: no order completed for ${cfg.stallMs} ms, ${r.when} (log: ${serverLog})`);
      return { missing: 'stalled' };
    }
    if (code !== 0) warn(`trellis server exited with ${code} (log: ${serverLog})`);
    const validations = fs.existsSync(serverLog) ? [...fs.readFileSync(serverLog, 'utf8').matchAll(/"validations":(\d+)/g)].reduce((s, m) => s + Number(m[1]), 0) : NaN;
    const rows = await rowsOf();
    const newValid = rows && rowsBefore ? (rows.valid ?? 0) - (rowsBefore.valid ?? 0) : NaN;
    if (Number.isFinite(newValid) && newValid < r.ok) fail(`trellis: ${newValid} new 'valid' certificate rows < ${r.ok} certificates downloaded`);
    const profiles = profiler.profiles(warn);
    return { ...r, validations, newValid, profiles, workerShares: workerShares(serverLog, r) };
  }

  /** The pids of the processes that serve (one line each in the server's log). */
  function servingPids(serverLog) {
    const text = fs.existsSync(serverLog) ? fs.readFileSync(serverLog, 'utf8') : '';
    return [...text.matchAll(/"pid":(\d+),"msg":"bench serving"/g)].map((m) => Number(m[1]));
  }

  /**
   * Each serving process's share of the measured run: its requests (access
   * log lines timed inside the run) and its cores. With the kernel handing
   * out connections (cluster SCHED_NONE) and the client reusing keep-alive
   * sockets, the split between workers differs from run to run.
   */
  function workerShares(serverLog, r) {
    const requests = new Map();
    for (const line of fs.readFileSync(serverLog, 'utf8').split('\n')) {
      const m = /^\{"t":"([^"]+)","pid":(\d+),.*"msg":"request"/.exec(line);
      if (m && m[1] >= r.startedAt && m[1] <= r.endedAt) requests.set(Number(m[2]), (requests.get(Number(m[2])) ?? 0) + 1);
    }
    const total = [...requests.values()].reduce((a, b) => a + b, 0);
    return r.workers.map(({ pid, cores }) => ({ pid, requestShare: total ? (requests.get(pid) ?? 0) / total : NaN, cores }));
  }

  /** Certificate rows by status, or undefined when the table cannot be read. */
  function countRows(dbFile) {
    try {
      const db = new Database(dbFile, { readonly: true, fileMustExist: true });
      try {
        const out = {};
        for (const r of db.prepare('SELECT status, count(*) AS n FROM "Certificate" GROUP BY status').all()) out[r.status] = r.n;
        return out;
      } finally {
        db.close();
      }
    } catch (err) {
      warn(`cannot count certificate rows in ${dbFile}: ${err.message}`);
      return undefined;
    }
  }


  function printRows(results) {
    const table = (rows) => {
      const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
      for (const r of rows) console.log('  ' + r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  '));
    };
    table([
      ['server', 'clients', 'orders/s', 'orders', 'failed', 'bad cert', 'seconds', 'req/order', 'polls/order', 'badNonce', 'new conns', 'client cores', 'server cores', 'server CPU ms/order', 'peak RSS MiB', 'machine busy %'],
      ...results.map((r) => [r.label, r.clients, fmt(r.perSec), r.ok, r.failed, r.badCert, fmt(r.seconds), fmt(r.requestsPerOrder, 2), fmt(r.pollsPerOrder, 2), r.badNonce, r.connectionsOpened, fmt(r.clientCores, 2), fmt(r.serverCores, 2), fmt((1000 * r.serverCores) / r.perSec, 2), fmt(r.peakKiB / 1024, 0), fmt(100 * r.machineBusy, 0)]),
    ]);
    console.log('latency ms, p50 / p99 (challenge: POST until the authorization is valid; finalize: until the order is valid):');
    const names = ['newOrder', 'authz', 'challenge', 'finalize', 'download', 'order'];
    table([['server', ...names], ...results.map((r) => [r.label, ...names.map((n) => `${fmt(pct(r.phases[n], 50), 2)} / ${fmt(pct(r.phases[n], 99), 2)}`)])]);
  }

  // ---- main ----

  async function main() {
    const tools = requireTools({
      pebble: 'the ACME peer (Debian: apt-get install pebble)',
      openssl: "pebble's TLS certificate (Debian: apt-get install openssl)",
    });
    log(`temp dir ${tmp}${cfg.keep ? ' (kept)' : ''}`);
    const build = await buildInfo(root, cfg.dist);
    log(`making ${cfg.csrs} P-256 keys and CSRs`);
    const { pool, usPerCsr } = makeCsrPool(cfg.csrs);
    log(`${usPerCsr.toFixed(0)} µs per key + CSR`);

    const results = [];
    let pebble;
    let trellis;
    if (cfg.only !== 'trellis') {
      pebble = await benchPebble(tools, pool);
      if (pebble.missing) pebble = undefined;
      else results.push(pebble);
    }
    if (cfg.only !== 'pebble') {
      trellis = await benchTrellis(pool);
      if (trellis.missing) {
        console.log(`Trellis ACME server not available: ${trellis.missing}`);
        trellis = undefined;
      } else results.push(trellis);
    }

    console.log('');
    console.log(
      `ACME orders on loopback: ${cfg.orders ? `${cfg.orders} orders` : `${cfg.seconds} s`} after ${cfg.warmup} s warm-up, one dns identifier per order, fresh P-256 key + CSR per order (pre-made, ${usPerCsr.toFixed(0)} µs each), ES256 accounts, ${os.cpus().length} CPUs; trellis: serve() with an always-valid validator, ${cfg.workers} worker(s); pebble: PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_VA_NOSLEEP=1`,
    );
    console.log(`trellis build: ${build}`);
    if (results.length) printRows(results);
    if (pebble?.attempts > 1) console.log(`pebble: measured on attempt ${pebble.attempts}; the earlier attempts deadlocked`);
    if (trellis) console.log(`trellis rows: ${trellis.newValid} new 'valid' certificates for ${trellis.ok} downloaded; stub validations: ${trellis.validations}`);
    if (trellis?.workerShares?.length) {
      const shares = trellis.workerShares.map((w) => `pid ${w.pid}: ${fmt(100 * w.requestShare, 0)}% of requests, ${fmt(w.cores, 2)} cores`).join('; ');
      console.log(`trellis serving processes (measured run; without the access log no request counts): ${shares}`);
    }
    if (trellis?.profiles?.length) {
      console.log(`cpu profile(s): ${trellis.profiles.join(' ')}`);
      const summary = await run(process.execPath, [path.join(root, 'bench', 'profile-summary.mjs'), ...trellis.profiles]);
      console.log(summary.stdout.trimEnd());
      if (summary.code !== 0) warn(`profile-summary failed: ${summary.stderr.trim()}`);
    }
    if (failures.length) console.log(`${failures.length} failure(s), see FAIL lines above`);
    const t = trellis?.perSec;
    const b = pebble?.perSec;
    const ratio = t !== undefined && b ? t / b : NaN;
    console.log(`RESULT acme_orders ${t !== undefined ? t.toFixed(1) : 'n/a'} orders/s baseline ${b !== undefined ? b.toFixed(1) : 'n/a'} orders/s ratio ${Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'}`);
    return failures.length ? 1 : 0;
  }

  runMain(main);
}
