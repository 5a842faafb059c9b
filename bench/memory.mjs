#!/usr/bin/env node
/**
 * `npm run bench:memory`: resident memory of `trellis serve --workers 2`
 * (primary + workers, summed) on a fresh instance, idle and under mixed
 * load: issuance over HTTP (`POST /api/v1/certificates`, wrk) and OCSP GETs
 * (this process, keep-alive connections) over BENCH_CERTS distinct serials
 * inserted into the store, so the responders sign, cache and evict, at the
 * same time. The access log is on, as users run it.
 *
 * RSS is VmRSS of /proc/<pid>/status, sampled every 200 ms per process; the
 * peak is the highest sum of one sample. RSS counts pages shared between the
 * processes (the node binary's text, ~40 MB) once per process; PSS (from
 * /proc/<pid>/smaps_rollup) divides them and is printed beside it.
 *
 * Environment: BENCH_SECONDS (load seconds, 20), BENCH_CERTS (distinct OCSP
 * serials, 60000: more than the 20,000 entries each responder's cache
 * holds by default, revocation.ocspCacheEntries), BENCH_CONNECTIONS (wrk connections issuing, 8), BENCH_OCSP_CONCURRENCY
 * (8), BENCH_WORKERS (2), BENCH_CSRS (50), BENCH_IDLE_SECONDS (settle time
 * before the idle reading, 3), BENCH_KEEP=1 (keep the temp dir),
 * BENCH_NODE_OPTIONS (NODE_OPTIONS for serve, to try V8 flags), BENCH_DIST
 * (a compiled Trellis to run instead of dist/, e.g. built with `npx tsc -p
 * tsconfig.build.json --outDir <pkg>/dist`; its parent needs prisma/,
 * ca-profiles/, src/console/static/ and node_modules/ as the checkout has them).
 *
 * Start-up is sampled as well (every 50 ms from spawning serve until every
 * worker logs "serving"): each worker runs scrypt with 128 MiB while it
 * unlocks the CA keys.
 *
 * Last lines (ratio = 300 MB ÷ ours: ≥ 1 meets the goal of issue 13):
 *   RESULT memory_idle_workers2 <MB> MB baseline 300 ratio <x>
 *   RESULT memory_peak_workers2 <MB> MB baseline 300 ratio <x>   (during the load)
 *   RESULT memory_start_peak_workers2 <MB> MB baseline 300 ratio <x>   (from spawn until every worker serves)
 * (MB = 2^20 bytes; the name keeps "workers2" whatever BENCH_WORKERS is, the line says the count.)
 * Exit code 1 when an issuance or OCSP answer was wrong, 2 on a set-up error.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { benchTempDir, buildInfo, childPids, envInt, freePort, machineBusy, processCpuTicks, readOrEmpty, reporter, requireTools, runMain, runOk, runWrk, startChild, waitReady } from './lib/harness.mjs';
import { issueWrkScript, makeCsrs } from './lib/csrs.mjs';
import { insertCertificates, ocspGetPaths, serials } from './lib/ocsp-fixtures.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cfg = {
  seconds: envInt('BENCH_SECONDS', 20),
  certs: envInt('BENCH_CERTS', 60_000, 10),
  connections: envInt('BENCH_CONNECTIONS', 8),
  ocspConcurrency: envInt('BENCH_OCSP_CONCURRENCY', 8),
  workers: envInt('BENCH_WORKERS', 2),
  csrs: envInt('BENCH_CSRS', 50),
  idleSeconds: envInt('BENCH_IDLE_SECONDS', 3, 0),
  nodeOptions: process.env.BENCH_NODE_OPTIONS ?? '',
  keep: process.env.BENCH_KEEP === '1',
  dist: path.resolve(process.env.BENCH_DIST ?? path.join(root, 'dist')),
};
const goalMiB = 300;
const passphrase = 'bench-passphrase-not-secret';
const { failures, fail, warn, log } = reporter();
const tmp = benchTempDir('memory', cfg.keep);

// ---- per-process memory ------------------------------------------------------------

const kib = (text, field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);

/** The primary and its workers (children), primary first. */
function processes(primaryPid) {
  return [primaryPid, ...childPids(primaryPid)];
}

/** RSS and PSS (KiB) of each process now. */
function snapshot(primaryPid) {
  return processes(primaryPid).map((pid) => ({
    pid,
    rssKiB: kib(readOrEmpty(`/proc/${pid}/status`), 'VmRSS'),
    pssKiB: kib(readOrEmpty(`/proc/${pid}/smaps_rollup`), 'Pss'),
  }));
}

/** User + system CPU seconds of each process so far (/proc/<pid>/stat, clock ticks at 100 Hz). */
function cpuSeconds(primaryPid) {
  return new Map(
    processes(primaryPid).map((pid) => {
      const ticks = processCpuTicks(pid);
      return [pid, (Number.isNaN(ticks) ? 0 : ticks) / 100];
    }),
  );
}

/** Samples every `everyMs`: the peak of the sum, and each process's own peak. */
function sampler(primaryPid, everyMs = 200) {
  let peakSumKiB = 0;
  const peakOf = new Map();
  const tick = () => {
    const s = processes(primaryPid).map((pid) => ({ pid, rssKiB: kib(readOrEmpty(`/proc/${pid}/status`), 'VmRSS') }));
    peakSumKiB = Math.max(peakSumKiB, s.reduce((a, p) => a + p.rssKiB, 0));
    for (const p of s) peakOf.set(p.pid, Math.max(peakOf.get(p.pid) ?? 0, p.rssKiB));
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return { peakSumKiB, peakOf };
    },
  };
}

// ---- load ---------------------------------------------------------------------------

/** GETs `paths` in rotation over `concurrency` keep-alive connections until `untilMs`; counts answers. */
async function ocspLoad(base, paths, concurrency, untilMs) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let ok = 0;
  let bad = 0;
  let firstBad = '';
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < untilMs) {
        const p = paths[next++ % paths.length];
        const r = await new Promise((resolve) => {
          http
            .get(`${base}${p}`, { agent }, (res) => {
              res.resume();
              res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'] }));
            })
            .on('error', (err) => resolve({ status: 0, type: String(err) }));
        });
        if (r.status === 200 && r.type === 'application/ocsp-response') ok++;
        else {
          bad++;
          firstBad ||= `${r.status} ${r.type}`;
        }
      }
    }),
  );
  agent.destroy();
  return { ok, bad, firstBad, distinct: Math.min(next, paths.length) };
}

// ---- main ----------------------------------------------------------------------------

async function main() {
  const tools = requireTools({ wrk: 'the issuance load (Debian: apt-get install wrk)', openssl: 'CSRs and OCSP requests (Debian: apt-get install openssl)' });
  // dist/cmd/main.js runs itself when it is the entry point (cluster workers re-run it too).
  const bin = path.join(cfg.dist, 'cmd', 'main.js');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` first (or set BENCH_DIST)`);
  log(`temp dir ${tmp}${cfg.keep ? ' (kept)' : ''}; ${await buildInfo(root, cfg.dist)}`);
  const busyBefore = await machineBusy(1000);
  const dir = path.join(tmp, 'trellis');
  const data = path.join(dir, 'data');
  fs.mkdirSync(dir, { recursive: true });
  // The access log stays on (TRELLIS_ACCESS_LOG unset): memory as users run it.
  const env = { ...process.env, TRELLIS_PASSPHRASE: passphrase };
  delete env.TRELLIS_ACCESS_LOG;
  delete env.NODE_OPTIONS;
  if (cfg.nodeOptions) env.NODE_OPTIONS = cfg.nodeOptions;
  const cliEnv = { ...env };
  delete cliEnv.NODE_OPTIONS;
  const cli = (...args) => runOk(process.execPath, [bin, ...args, '--data', data], { env: cliEnv, cwd: dir });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;

  log('trellis: init');
  await cli('init', '--yes', '--base-url', base);
  const apiToken = (await cli('token', 'create', '--role', 'admin')).stdout.trim();
  const issuing = path.join(dir, 'issuing.pem');
  fs.writeFileSync(issuing, (await cli('ca', 'cert')).stdout);
  log(`inserting ${cfg.certs.toLocaleString('en-US')} certificates (10 % revoked) and building their OCSP requests`);
  const list = serials(cfg.certs).map((serialHex, i) => ({ serialHex, revoked: i % 10 === 0 }));
  await insertCertificates(path.dirname(cfg.dist), data, list);
  const paths = await ocspGetPaths(tools.openssl, path.join(dir, 'ocsp-req.der'), issuing, list.map((c) => c.serialHex));
  const csrs = await makeCsrs(tools.openssl, path.join(dir, 'csr'), cfg.csrs);
  const script = issueWrkScript(path.join(dir, 'issue.lua'), apiToken, csrs.map((c) => c.pem));

  const serverLog = path.join(dir, 'serve.log');
  const server = startChild(process.execPath, [bin, 'serve', '--data', data, '--port', String(port), ...(cfg.workers > 1 ? ['--workers', String(cfg.workers)] : [])], { env, cwd: dir, logFile: serverLog });
  // Start-up is sampled too: each worker runs scrypt (128 MiB) while it unlocks the CA keys.
  const startSampler = sampler(server.pid, 50);
  await waitReady(async () => (await fetch(`${base}/healthz`)).status === 200, { child: server, what: `trellis serve (log: ${serverLog})` });
  await waitReady(async () => (readOrEmpty(serverLog).match(/"msg":"serving"/g) ?? []).length >= cfg.workers, { child: server, what: `${cfg.workers} trellis workers (log: ${serverLog})` });
  const start = startSampler.stop();
  log(`trellis: serving on ${base} (pid ${server.pid}, ${cfg.workers} worker(s)${cfg.nodeOptions ? `, NODE_OPTIONS=${cfg.nodeOptions}` : ''}); settling ${cfg.idleSeconds} s`);
  await sleep(cfg.idleSeconds * 1000);
  const idle = snapshot(server.pid);

  log(`load: ${cfg.seconds} s of issuance (wrk, ${cfg.connections} connections) and OCSP GETs (${cfg.ocspConcurrency} connections, ${paths.length.toLocaleString('en-US')} serials)`);
  const s = sampler(server.pid);
  const cpuBefore = cpuSeconds(server.pid);
  const untilMs = Date.now() + cfg.seconds * 1000;
  const [issued, ocsp] = await Promise.all([
    runWrk(tools.wrk, { url: base, script, seconds: cfg.seconds, connections: cfg.connections, threads: 1 }),
    ocspLoad(base, paths, cfg.ocspConcurrency, untilMs),
  ]);
  const { peakSumKiB, peakOf } = s.stop();
  const cpuAfter = cpuSeconds(server.pid);
  const cpuLoad = [...cpuAfter].reduce((a, [pid, sec]) => a + sec - (cpuBefore.get(pid) ?? 0), 0);
  const after = snapshot(server.pid);
  const code = await server.stop(30_000);
  if (code !== 0) warn(`trellis serve exited with ${code} (log: ${serverLog})`);

  if (issued.bad || issued.socketErrors) fail(`issuance: ${issued.bad} unexpected answers (first: ${issued.first_bad_status} ${issued.first_bad_body}), ${issued.socketErrors} socket errors`);
  if (!(issued.ok > 0)) fail('issuance: no certificate issued');
  if (ocsp.bad) fail(`OCSP: ${ocsp.bad} bad answers (first: ${ocsp.firstBad})`);
  const accessLines = (readOrEmpty(serverLog).match(/"msg":"request"/g) ?? []).length;

  const mib = (k) => (k / 1024).toFixed(0);
  const sum = (xs, f) => xs.reduce((a, x) => a + f(x), 0);
  console.log('');
  console.log(`Memory of trellis serve --workers ${cfg.workers}: ${cfg.seconds} s of issuance (${issued.ok} certificates, ${issued.okPerSec.toFixed(0)}/s) + OCSP GETs (${ocsp.ok.toLocaleString('en-US')} answers, ${(ocsp.ok / cfg.seconds).toFixed(0)}/s, ${ocsp.distinct.toLocaleString('en-US')} distinct serials); access log on (${accessLines.toLocaleString('en-US')} lines); ${os.cpus().length} CPUs, machine ${(100 * busyBefore).toFixed(0)}% busy before, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const rows = [['process', 'pid', 'start peak', 'idle RSS', 'idle PSS', 'peak RSS', 'RSS after', 'PSS after']];
  idle.forEach((p, i) => {
    const a = after.find((x) => x.pid === p.pid);
    rows.push([i === 0 ? (cfg.workers > 1 ? 'primary' : 'serve') : `worker ${i}`, String(p.pid), mib(start.peakOf.get(p.pid) ?? 0), mib(p.rssKiB), mib(p.pssKiB), mib(peakOf.get(p.pid) ?? 0), a ? mib(a.rssKiB) : 'gone', a ? mib(a.pssKiB) : 'gone']);
  });
  const replaced = [...peakOf.keys()].filter((pid) => !idle.some((p) => p.pid === pid));
  if (replaced.length) warn(`processes that appeared during the load (a worker was replaced?): ${replaced.join(', ')}`);
  rows.push(['total', '', `${mib(start.peakSumKiB)} (sum)`, mib(sum(idle, (p) => p.rssKiB)), mib(sum(idle, (p) => p.pssKiB)), `${mib(peakSumKiB)} (sum)`, mib(sum(after, (p) => p.rssKiB)), mib(sum(after, (p) => p.pssKiB))]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log('  ' + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  console.log('  (MB = 2^20 bytes; a total peak is the highest sum of one sample (every 50 ms from the start until every worker serves, then every 200 ms during the load), not the sum of each process\'s own peak)');
  // CPU per request served, issuance and OCSP together: the price of a V8 flag tried with BENCH_NODE_OPTIONS.
  // Rates differ from run to run on a shared machine: compare runs by growth beside the requests served.
  const served = issued.ok + ocsp.ok;
  const growth = idle.slice(1).map((p) => ((peakOf.get(p.pid) ?? p.rssKiB) - p.rssKiB) / 1024);
  if (growth.length) console.log(`  workers' growth idle → peak: ${growth.map((g) => `${g.toFixed(0)} MB`).join(', ')} with ${served.toLocaleString('en-US')} requests served (not linear: caches fill, garbage waits for a mark-compact)`);
  console.log(`  server CPU during the load: ${cpuLoad.toFixed(1)} s (user + system, all processes), ${((1e3 * cpuLoad) / Math.max(1, issued.ok + ocsp.ok)).toFixed(2)} ms per request (${issued.ok} issued + ${ocsp.ok} OCSP)`);
  if (busyBefore > 0.2) warn(`CPU was ${(100 * busyBefore).toFixed(0)}% busy before the run: other work on this machine changes how far the load gets`);
  if (failures.length) console.log(`${failures.length} failure(s), see FAIL lines above`);
  const idleMiB = sum(idle, (p) => p.rssKiB) / 1024;
  const peakMiB = peakSumKiB / 1024;
  console.log(`RESULT memory_idle_workers2 ${idleMiB.toFixed(0)} MB baseline ${goalMiB} ratio ${(goalMiB / idleMiB).toFixed(2)}`);
  console.log(`RESULT memory_peak_workers2 ${peakMiB.toFixed(0)} MB baseline ${goalMiB} ratio ${(goalMiB / peakMiB).toFixed(2)}`);
  const startMiB = start.peakSumKiB / 1024;
  console.log(`RESULT memory_start_peak_workers2 ${startMiB.toFixed(0)} MB baseline ${goalMiB} ratio ${(goalMiB / startMiB).toFixed(2)}`);
  return failures.length ? 1 : 0;
}

runMain(main);
