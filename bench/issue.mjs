#!/usr/bin/env node
/**
 * `npm run bench:issue`: certificates per second through Trellis's
 * `POST /api/v1/certificates`, against `cfssl serve` (`/api/v1/cfssl/sign`)
 * with the same wrk settings and the same pool of P-256 CSRs, plus Node's
 * own P-256 sign+verify rate as a bound. Last line:
 *
 *   RESULT issue_http <certs/s> certs/s baseline <cfssl certs/s> ratio <x>
 *
 * Environment: BENCH_SECONDS (10), BENCH_WARMUP (3), BENCH_CONNECTIONS (64),
 * BENCH_THREADS (wrk threads, 1), BENCH_CSRS (50), BENCH_WORKERS (serve --workers, 2), BENCH_CPU_PROF=1 (run the
 * Trellis server under `node --cpu-prof` and summarise the profile),
 * BENCH_PROFILE_DIR (where the .cpuprofile goes; default a kept temp dir),
 * BENCH_KEEP=1 (keep the temp dir: data dir, logs, wrk scripts),
 * BENCH_VERBOSE=1 (print wrk's own output), BENCH_ACCESS_LOG (on, as users run it; off to price it), BENCH_KEYSTORE=pkcs11 (the issuing CA's key in a
 * SoftHSM2 token made in the temp dir: `init --keystore pkcs11`, module TRELLIS_PKCS11_MODULE or
 * the Debian path; the root stays a software key; docs/hsm.md), BENCH_DIST (a compiled Trellis to run
 * instead of dist/; its parent needs node_modules/, prisma/ and src/console/static/), BENCH_PEER=off
 * (skip cfssl: for A/B runs of Trellis alone, where the figure that counts is CPU per certificate).
 *
 * Besides the rate, the table gives the server's CPU per certificate: the clock ticks (user + system,
 * /proc/<pid>/stat, the cluster's workers included) it used during the measured seconds over the
 * certificates issued in them. On a shared machine that is the figure to compare, not the rate.
 *
 * Exit code 1 when a response was not the expected one, a socket timed out,
 * a sample certificate did not verify, or the stored rows do not add up.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { issueWrkScript, makeCsrs } from './lib/csrs.mjs';
import {
  buildInfo,
  treeUsage,
  cpuProfiler,
  envInt,
  freePort,
  benchTempDir,
  reporter,
  requireTools,
  run,
  runMain,
  runOk,
  runWrk,
  machineBusy,
  sampleProcess,
  startChild,
  waitReady,
  writeWrkScript,
} from './lib/harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const cfg = {
  seconds: envInt('BENCH_SECONDS', 10),
  warmup: envInt('BENCH_WARMUP', 3, 0),
  connections: envInt('BENCH_CONNECTIONS', 64),
  threads: envInt('BENCH_THREADS', 1),
  csrs: envInt('BENCH_CSRS', 50),
  // `trellis serve --workers N`: the second core is used through node:cluster.
  workers: envInt('BENCH_WORKERS', 2),
  cpuProf: process.env.BENCH_CPU_PROF === '1',
  keep: process.env.BENCH_KEEP === '1',
  verbose: process.env.BENCH_VERBOSE === '1',
  keystore: process.env.BENCH_KEYSTORE ?? 'software',
  dist: path.resolve(process.env.BENCH_DIST ?? path.join(root, 'dist')),
  peer: process.env.BENCH_PEER !== 'off',
};
if (!['software', 'pkcs11'].includes(cfg.keystore)) throw new Error('BENCH_KEYSTORE must be software or pkcs11');

const passphrase = 'bench-passphrase-not-secret';
const { failures, fail, warn, log } = reporter();
const tmp = benchTempDir('issue', cfg.keep);

// ---- helpers ----------------------------------------------------------------

function pemBlocks(text) {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

/** openssl verify of `leafPem` against `caFile`, with optional intermediates; returns '' or the error. */
async function verifyLeaf(openssl, dir, name, leafPem, caFile, intermediatesPem) {
  const leafFile = path.join(dir, `${name}-leaf.pem`);
  fs.writeFileSync(leafFile, leafPem);
  const args = ['verify', '-purpose', 'sslserver', '-CAfile', caFile];
  if (intermediatesPem) {
    const untrusted = path.join(dir, `${name}-untrusted.pem`);
    fs.writeFileSync(untrusted, intermediatesPem);
    args.push('-untrusted', untrusted);
  }
  args.push(leafFile);
  const r = await run(openssl, args);
  if (r.code !== 0 || !/: OK\s*$/.test(r.stdout)) return (r.stdout + r.stderr).trim() || `exit ${r.code}`;
  const text = await runOk(openssl, ['x509', '-noout', '-ext', 'subjectAltName', '-in', leafFile]);
  if (!/DNS:b\d+\.bench\.example/.test(text.stdout)) return `no bench SAN in leaf: ${text.stdout.trim()}`;
  return '';
}

function nodeP256Bound(ms = 2000) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = crypto.randomBytes(300);
  // brief warm-up so the first calls' setup is not in the figure
  for (let i = 0; i < 200; i++) crypto.verify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, crypto.sign('sha256', data, { key: privateKey, dsaEncoding: 'der' }));
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 100; i++) {
      const sig = crypto.sign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
      if (!crypto.verify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, sig)) throw new Error('P-256 verify failed');
    }
    n += 100;
    now = performance.now();
  }
  return n / ((now - start) / 1000);
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on Linux unless `getconf CLK_TCK` says otherwise). */
const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const fmtMs = (us) => (Number.isFinite(us) ? (us / 1000).toFixed(2) : 'n/a');
const fmtMiB = (kib) => (kib ? (kib / 1024).toFixed(0) : 'n/a');

async function loadPhase(label, tools, { url, script, server }) {
  const wrkOpts = { url, script, connections: cfg.connections, threads: cfg.threads };
  let warm;
  if (cfg.warmup > 0) {
    log(`${label}: warm-up ${cfg.warmup} s`);
    warm = await runWrk(tools.wrk, { ...wrkOpts, seconds: cfg.warmup });
    if (warm.bad || warm.err_timeout) fail(`${label} warm-up: ${warm.bad} unexpected responses (first: HTTP ${warm.first_bad_status} ${warm.first_bad_body}), ${warm.err_timeout} timeouts`);
  }
  log(`${label}: measuring ${cfg.seconds} s, ${cfg.connections} connections, ${cfg.threads} wrk thread(s)`);
  const rss = sampleProcess(server.pid, 200);
  const ticks0 = treeUsage(server.pid).cpuTicks;
  const m = await runWrk(tools.wrk, { ...wrkOpts, seconds: cfg.seconds });
  const cpuTicks = treeUsage(server.pid).cpuTicks - ticks0;
  const mem = { ...rss.stop(), cpuTicks };
  if (cfg.verbose) console.log(`--- wrk ${label}\n${m.raw}`);
  if (m.bad) fail(`${label}: ${m.bad} of ${m.requests} responses were not the expected certificate (first: HTTP ${m.first_bad_status} ${m.first_bad_body.replace(/\s+/g, ' ')})`);
  if (m.err_timeout) fail(`${label}: ${m.err_timeout} requests timed out`);
  if (m.err_connect + m.err_read + m.err_write) warn(`${label}: socket errors connect ${m.err_connect} read ${m.err_read} write ${m.err_write}`);
  return { warm, m, mem };
}

// ---- Trellis ----------------------------------------------------------------

/**
 * A SoftHSM2 token of its own under `dir` for BENCH_KEYSTORE=pkcs11: the
 * environment that points SoftHSM2 at it and gives serve its PIN, and the
 * init flags that put the issuing CA's key there.
 */
function benchToken(dir) {
  const modulePath = process.env.TRELLIS_PKCS11_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';
  const hsm = path.join(dir, 'softhsm');
  fs.mkdirSync(path.join(hsm, 'tokens'), { recursive: true });
  const conf = path.join(hsm, 'softhsm2.conf');
  fs.writeFileSync(conf, `directories.tokendir = ${path.join(hsm, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const pin = 'bench-pin-not-secret';
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'trellis-bench', '--pin', pin, '--so-pin', 'bench-so-pin'], { stdio: 'pipe', env: { ...process.env, SOFTHSM2_CONF: conf } });
  return {
    env: { SOFTHSM2_CONF: conf, TRELLIS_PKCS11_PIN: pin },
    initFlags: ['--keystore', 'pkcs11', '--pkcs11-module', modulePath, '--pkcs11-token', 'trellis-bench'],
  };
}

async function benchTrellis(tools, csrs) {
  // dist/cmd/main.js runs itself when it is the entry point (cluster workers re-run it too).
  const bin = path.join(cfg.dist, 'cmd', 'main.js');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` first (or set BENCH_DIST)`);
  const dir = path.join(tmp, 'trellis');
  const data = path.join(dir, 'data');
  fs.mkdirSync(dir, { recursive: true });
  const token = cfg.keystore === 'pkcs11' ? benchToken(dir) : null;
  const env = { ...process.env, TRELLIS_PASSPHRASE: passphrase, ...token?.env };
  // The access log is on, as users run it, unless BENCH_ACCESS_LOG=off (to price it).
  if (process.env.BENCH_ACCESS_LOG === 'off') env.TRELLIS_ACCESS_LOG = 'off';
  else delete env.TRELLIS_ACCESS_LOG;
  delete env.NODE_OPTIONS;
  const cli = (...args) => runOk(process.execPath, [bin, ...args, '--data', data], { env, cwd: dir });

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  log(`trellis: init (${cfg.keystore} keystore)`);
  await cli('init', '--yes', '--base-url', base, ...(token?.initFlags ?? []));
  const apiToken = (await cli('token', 'create', '--role', 'issuer')).stdout.trim();
  if (!/^\S+$/.test(apiToken)) throw new Error(`trellis token create: unexpected output ${JSON.stringify(apiToken)}`);
  const rootPem = (await cli('ca', 'cert', '--root')).stdout;
  const rootFile = path.join(dir, 'root.pem');
  fs.writeFileSync(rootFile, rootPem);
  const dbFile = path.join(data, 'trellis.db');
  const rowsBefore = countRows(dbFile);

  const profiler = cpuProfiler(cfg.cpuProf);
  const serverLog = path.join(dir, 'serve.log');
  profiler.start();
  const server = startChild(process.execPath, [...profiler.nodeArgs, bin, 'serve', '--data', data, '--port', String(port), '--workers', String(cfg.workers)], { env, cwd: dir, logFile: serverLog });
  await waitReady(async () => (await fetch(`${base}/healthz`)).status === 200, { child: server, what: `trellis serve (log: ${serverLog})` });
  log(`trellis: serving on ${base} (pid ${server.pid})`);

  // one sample: a 201 with a chain that openssl verifies up to the root
  const sample = await fetch(`${base}/api/v1/certificates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ profile: 'server', csr: csrs[0].pem }),
  });
  const sampleText = await sample.text();
  let sampleOk = 0;
  if (sample.status !== 201) fail(`trellis sample: HTTP ${sample.status} ${sampleText.slice(0, 300)}`);
  else {
    sampleOk = 1;
    const blocks = pemBlocks(sampleText);
    const err = blocks.length ? await verifyLeaf(tools.openssl, dir, 'trellis', blocks[0], rootFile, blocks.slice(1).join('')) : 'no PEM certificate in the response';
    if (err) fail(`trellis sample does not verify against \`trellis ca cert --root\`: ${err}`);
  }

  const script = issueWrkScript(path.join(dir, 'issue.lua'), apiToken, csrs.map((c) => c.pem));
  const res = await loadPhase('trellis', tools, { url: base, script, server });

  log('trellis: stopping (SIGTERM, in-flight requests finish)');
  const code = await server.stop(30_000);
  if (code !== 0) warn(`trellis serve exited with ${code} (log: ${serverLog})`);

  const rows = countRows(dbFile);
  const served = sampleOk + (res.warm?.ok ?? 0) + res.m.ok;
  const newValid = (rows.valid ?? 0) - (rowsBefore.valid ?? 0);
  const rowsCheck = { before: rowsBefore, after: rows, served, newValid };
  if (newValid < served) fail(`stored rows: ${newValid} new 'valid' certificates < ${served} 201 responses`);
  if (rows.pending) fail(`stored rows: ${rows.pending} 'pending' rows left after shutdown`);
  if (rows.failed) warn(`stored rows: ${rows.failed} 'failed' rows`);

  // one file per process (cluster workers too); only those written by this run
  const profiles = profiler.profiles(warn);
  return { ...res, rowsCheck, profiles };
}

function countRows(dbFile) {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const out = {};
    for (const r of db.prepare('SELECT status, count(*) AS n FROM "Certificate" GROUP BY status').all()) out[r.status] = r.n;
    return out;
  } finally {
    db.close();
  }
}

// ---- cfssl ------------------------------------------------------------------

async function benchCfssl(tools, csrs) {
  const dir = path.join(tmp, 'cfssl');
  fs.mkdirSync(dir, { recursive: true });
  const caKey = path.join(dir, 'ca.key');
  const caPem = path.join(dir, 'ca.pem');
  await runOk(tools.openssl, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKey]);
  await runOk(tools.openssl, [
    'req', '-new', '-x509', '-key', caKey, '-sha256', '-days', '3650', '-subj', '/O=Bench/CN=Bench cfssl CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', caPem,
  ]);
  const profile = { expiry: '2160h', usages: ['signing', 'digital signature', 'server auth'] };
  const config = path.join(dir, 'cfssl-config.json');
  fs.writeFileSync(config, JSON.stringify({ signing: { default: profile, profiles: { server: profile } } }, null, 2));

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const serverLog = path.join(dir, 'serve.log');
  // -loglevel 2 (warnings): cfssl otherwise logs every signature at INFO; Trellis runs with its access log off too.
  const server = startChild(tools.cfssl, ['serve', '-address', '127.0.0.1', '-port', String(port), '-ca', caPem, '-ca-key', caKey, '-config', config, '-loglevel', '2'], {
    cwd: dir,
    logFile: serverLog,
  });
  const signBody = (c) => JSON.stringify({ certificate_request: c.pem, hosts: [c.name] });
  let sample;
  await waitReady(
    async () => {
      const r = await fetch(`${base}/api/v1/cfssl/sign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: signBody(csrs[0]) });
      sample = { status: r.status, text: await r.text() };
      return true;
    },
    { child: server, what: `cfssl serve (log: ${serverLog})` },
  );
  log(`cfssl: serving on ${base} (pid ${server.pid})`);
  let certPem;
  try {
    certPem = JSON.parse(sample.text).result?.certificate;
  } catch {
    /* reported below */
  }
  if (sample.status !== 200 || !certPem) fail(`cfssl sample: HTTP ${sample.status} ${sample.text.slice(0, 300)}`);
  else {
    const err = await verifyLeaf(tools.openssl, dir, 'cfssl', certPem, caPem);
    if (err) fail(`cfssl sample does not verify against its CA: ${err}`);
  }

  const script = writeWrkScript(path.join(dir, 'sign.lua'), {
    path: '/api/v1/cfssl/sign',
    headers: { 'Content-Type': 'application/json' },
    bodies: csrs.map(signBody),
    expectStatus: 200,
    expectBody: '"success":true',
  });
  const res = await loadPhase('cfssl', tools, { url: base, script, server });
  await server.stop(5_000);
  return res;
}


// ---- main -------------------------------------------------------------------

async function main() {
  const tools = requireTools({
    wrk: 'HTTP load generator (Debian: apt-get install wrk)',
    cfssl: 'Cloudflare PKI toolkit, the peer (Debian: apt-get install golang-cfssl)',
    openssl: 'CSRs, the peer CA and verification (Debian: apt-get install openssl)',
  });
  log(`temp dir ${tmp}${cfg.keep ? ' (kept)' : ''}`);
  const busyBefore = await machineBusy(1000);
  const build = await buildInfo(root, cfg.dist);

  log('node P-256 bound (2 s)');
  const bound = nodeP256Bound(2000);

  log(`making ${cfg.csrs} P-256 CSRs`);
  const csrs = await makeCsrs(tools.openssl, path.join(tmp, 'csr'), cfg.csrs);

  const trellis = await benchTrellis(tools, csrs);
  const cfssl = cfg.peer ? await benchCfssl(tools, csrs) : undefined;

  const t = trellis.m;
  const c = cfssl?.m;
  const rc = trellis.rowsCheck;
  console.log('');
  console.log(`issuance over HTTP: ${cfg.seconds} s after ${cfg.warmup} s warm-up, wrk -t${cfg.threads} -c${cfg.connections}, ${csrs.length} P-256 CSRs rotated, issuing CA key ${cfg.keystore === "pkcs11" ? "in a SoftHSM2 token" : "software"}, ${os.cpus().length} CPUs, machine ${(100 * busyBefore).toFixed(0)}% busy before${cfg.cpuProf ? ', trellis under --cpu-prof' : ''}`);
  console.log(`trellis build: ${build}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  if (busyBefore > 0.2) warn(`CPU was ${(100 * busyBefore).toFixed(0)}% busy before the run: other work on this machine skews the figures`);
  const rows = [
    ['server', 'certs/s', 'ok', 'bad', 'p50 ms', 'p99 ms', 'max ms', 'peak RSS MiB', 'server CPU cores', 'CPU ms/cert', 'machine busy %'],
    ...[['trellis', trellis], ['cfssl', cfssl]].filter(([, r]) => r).map(([name, r]) => [
      name, fmtInt(r.m.okPerSec), String(r.m.ok), String(r.m.bad + r.m.err_timeout), fmtMs(r.m.p50_us), fmtMs(r.m.p99_us), fmtMs(r.m.max_us),
      fmtMiB(r.mem.peakKiB), r.mem.serverCores.toFixed(2), r.m.ok ? ((r.mem.cpuTicks * 1000) / clockTicks / r.m.ok).toFixed(3) : 'n/a', (100 * r.mem.machineBusy).toFixed(0),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log('  ' + r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
  const peakMiB = trellis.mem.peakKiB / 1024;
  console.log(`trellis peak RSS ${peakMiB.toFixed(0)} MiB (goal < 300 MiB)${peakMiB >= 300 ? '  <-- over goal' : ''}`);
  console.log(
    `trellis rows: ${rc.newValid} new 'valid' for ${rc.served} 201 responses (sample + warm-up + run); after: ${Object.entries(rc.after).map(([k, v]) => `${k}=${v}`).join(' ')}` +
      (rc.newValid >= rc.served && !rc.after.pending ? '  ok' : '  MISMATCH'),
  );
  console.log(`node p256 sign+verify/s: ${fmtInt(bound)} (x2 cores: ${fmtInt(2 * bound)})`);
  if (trellis.profiles.length) {
    console.log(`cpu profile(s): ${trellis.profiles.join(' ')}`);
    const summary = await run(process.execPath, [path.join(root, 'bench', 'profile-summary.mjs'), ...trellis.profiles]);
    console.log(summary.stdout.trimEnd());
    if (summary.code !== 0) warn(`profile-summary failed: ${summary.stderr.trim()}`);
  }
  if (failures.length) console.log(`${failures.length} failure(s), see FAIL lines above`);
  console.log(`RESULT issue_cpu ${((trellis.mem.cpuTicks * 1000) / clockTicks / Math.max(1, t.ok)).toFixed(3)} ms/cert`);
  if (!c) return failures.length ? 1 : 0;
  const ratio = c.okPerSec > 0 ? t.okPerSec / c.okPerSec : NaN;
  console.log(`RESULT issue_http ${t.okPerSec.toFixed(1)} certs/s baseline ${c.okPerSec.toFixed(1)} ratio ${ratio.toFixed(2)}`);
  return failures.length ? 1 : 0;
}

runMain(main);
