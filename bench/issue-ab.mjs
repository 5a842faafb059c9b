#!/usr/bin/env node
/**
 * `node bench/issue-ab.mjs`: server CPU per certificate of two compiled
 * Trellis trees on `POST /api/v1/certificates`, measured side by side. Both
 * run `serve --workers 2` (each its own data directory, SQLite) at the same
 * time; wrk -c64 drives one, then the other, in short phases (A B, B A, A B, …),
 * and each phase's figure is the CPU clock ticks of that server's process
 * tree over the certificates it issued in the phase. On a machine shared with
 * other work, a difference in load hits both sides of a pair alike, where
 * runs minutes apart (bench:issue with BENCH_DIST) differ by more than the
 * change being measured. Last line:
 *
 *   RESULT issue_ab <B/A median of the pairs> cpu_a <ms/cert> cpu_b <ms/cert>
 *
 * Environment: BENCH_DIST (A, default dist/), BENCH_DIST_B (B, required),
 * BENCH_PHASES (pairs, 12), BENCH_PHASE_SECONDS (4), BENCH_WARMUP (seconds per
 * side, 3), BENCH_CONNECTIONS (64), BENCH_CSRS (50), BENCH_KEEP=1. Each tree's
 * parent needs node_modules/, prisma/, ca-profiles/ and src/console/static/,
 * as for bench:issue. Exit code 1 when a response was not a certificate.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { issueWrkScript, makeCsrs } from './lib/csrs.mjs';
import { benchTempDir, envInt, freePort, reporter, requireTools, runMain, runOk, runWrk, startChild, treeUsage, waitReady } from './lib/harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cfg = {
  dists: [process.env.BENCH_DIST ?? path.join(root, 'dist'), process.env.BENCH_DIST_B ?? ''].map((d) => (d ? path.resolve(d) : d)),
  phases: envInt('BENCH_PHASES', 12),
  seconds: envInt('BENCH_PHASE_SECONDS', 4),
  warmup: envInt('BENCH_WARMUP', 3),
  connections: envInt('BENCH_CONNECTIONS', 64),
  csrs: envInt('BENCH_CSRS', 50),
};
const { failures, fail, log } = reporter();
const tmp = benchTempDir('issue-ab', process.env.BENCH_KEEP === '1');
const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** One `serve --workers 2` of `dist` on a fresh instance, with its wrk script. */
async function startServer(dist, name, csrs) {
  const bin = path.join(dist, 'cmd', 'main.js');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing`);
  const dir = path.join(tmp, name);
  const data = path.join(dir, 'data');
  fs.mkdirSync(dir, { recursive: true });
  const env = { ...process.env, TRELLIS_PASSPHRASE: 'bench-passphrase-not-secret' };
  delete env.NODE_OPTIONS;
  delete env.TRELLIS_ACCESS_LOG;
  const cli = (...args) => runOk(process.execPath, [bin, ...args, '--data', data], { env, cwd: dir });
  const url = `http://127.0.0.1:${await freePort()}`;
  await cli('init', '--yes', '--base-url', url);
  const token = (await cli('token', 'create', '--role', 'issuer')).stdout.trim();
  const port = new URL(url).port;
  const child = startChild(process.execPath, [bin, 'serve', '--data', data, '--port', port, '--workers', '2'], { env, cwd: dir, logFile: path.join(dir, 'serve.log') });
  await waitReady(async () => (await fetch(`${url}/healthz`)).status === 200, { child, what: `${name} serve` });
  const script = issueWrkScript(path.join(dir, 'issue.lua'), token, csrs.map((c) => c.pem));
  log(`${name}: ${dist} serving on ${url}`);
  return { name, dist, url, child, script, ms: [], certs: 0 };
}

/** One phase of wrk against `s`: its CPU ms per certificate issued in the phase. */
async function phase(tools, s, seconds) {
  const before = treeUsage(s.child.pid).cpuTicks;
  const m = await runWrk(tools.wrk, { url: s.url, script: s.script, seconds, connections: cfg.connections, threads: 1 });
  const ticks = treeUsage(s.child.pid).cpuTicks - before;
  if (m.bad || m.err_timeout) fail(`${s.name}: ${m.bad} unexpected responses (first: HTTP ${m.first_bad_status} ${m.first_bad_body}), ${m.err_timeout} timeouts`);
  return { ms: m.ok ? (ticks * 1000) / ticksPerSecond / m.ok : NaN, ok: m.ok };
}

async function main() {
  if (!cfg.dists[1]) throw new Error('set BENCH_DIST_B to the tree to compare with BENCH_DIST');
  const tools = requireTools({ wrk: 'wrk', openssl: 'openssl' });
  const csrs = await makeCsrs(tools.openssl, path.join(tmp, 'csr'), cfg.csrs);
  const servers = [await startServer(cfg.dists[0], 'A', csrs), await startServer(cfg.dists[1], 'B', csrs)];
  for (const s of servers) await phase(tools, s, cfg.warmup);
  for (let p = 0; p < cfg.phases; p++) {
    for (const s of p % 2 ? [servers[1], servers[0]] : servers) {
      const r = await phase(tools, s, cfg.seconds);
      s.ms.push(r.ms);
      s.certs += r.ok;
    }
  }
  for (const s of servers) await s.child.stop(30_000);
  const ratios = servers[1].ms.map((b, i) => b / servers[0].ms[i]);
  console.log(`\nissuance side by side: ${cfg.phases} pairs of ${cfg.seconds} s phases, wrk -t1 -c${cfg.connections}, ${csrs.length} P-256 CSRs rotated`);
  for (const s of servers) console.log(`  ${s.name} ${s.dist}: CPU ms/cert median ${median(s.ms).toFixed(3)} (${s.certs} certificates; phases ${s.ms.map((x) => x.toFixed(2)).join(' ')})`);
  console.log(`  B/A per pair: median ${median(ratios).toFixed(3)} (${ratios.map((x) => x.toFixed(2)).join(' ')})`);
  console.log(`RESULT issue_ab ${median(ratios).toFixed(3)} cpu_a ${median(servers[0].ms).toFixed(3)} cpu_b ${median(servers[1].ms).toFixed(3)}`);
  return failures.length ? 1 : 0;
}

runMain(main);
