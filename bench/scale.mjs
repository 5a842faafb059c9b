#!/usr/bin/env node
/**
 * `npm run bench:scale`: Trellis on PostgreSQL with 10 million certificates,
 * as an operator who outgrew SQLite. One run, each figure against the same
 * on an empty database:
 *
 *   1. empty database: `serve --workers 2` start (to /readyz 200), issuance
 *      over HTTP (wrk, stored certificates), OCSP cache misses (distinct serials);
 *   2. fill: BENCH_SCALE_CERTS rows (10 M, 10 % revoked) streamed into
 *      "Certificate" with COPY (psql, not through the API), the way a migration
 *      from another CA would load them, with the table's secondary indexes
 *      dropped during the COPY and built once after it; then `trellis crl
 *      publish` makes every CRL once, as the database of a running CA would
 *      already hold them;
 *   3. the same measurements on the full database, plus regenerating one shard
 *      CRL after a revocation (in-process, the CA's own generator, median of 5:
 *      from the shard's previous CRL plus the changes, as the scheduler does
 *      after a revocation; the same shard read whole from the store, as at its
 *      half-life, is logged beside it) and the server's peak RSS.
 *
 * Last lines:
 *   RESULT scale_issue_10m <certs/s> certs/s baseline <empty db> ratio <x>
 *   RESULT scale_crl_shard_10m <ms> ms baseline 50 ratio <x>      (goal: under 50 ms)
 *   RESULT scale_start_10m <s> s baseline <empty db> ratio <x>    (goal: under 5 s)
 *
 * The filled rows carry everything OCSP, CRLs, the admin API and issuance read
 * (issuer, serial, shard, status, dates, subject, SANs) but no DER: 10 M
 * certificates of ~500 octets would add ~5 GB that no measured path reads.
 *
 * Environment: BENCH_PG_URL (postgres://postgres@127.0.0.1:5432/postgres; a
 * database trellis_scale_<time> is made there and dropped after), BENCH_SCALE_CERTS
 * (10000000), BENCH_SCALE_SHARDS (CRL shards per CA, 1024: ~1,000 revoked
 * entries per shard CRL at 10 M; docs/crl.md, "Choosing crlShards"), BENCH_SECONDS (10),
 * BENCH_WARMUP (2), BENCH_CONNECTIONS (32), BENCH_WORKERS (2), BENCH_MISSES
 * (OCSP cache misses per pass, 2000), BENCH_KEEP=1 (keep the database and temp dir),
 * BENCH_DIST (a compiled tree other than dist/, e.g. from `npx tsc -p
 * tsconfig.build.json --outDir <dir>` with node_modules reachable from it).
 *
 * Iterating on the full database: a run with BENCH_KEEP=1 writes
 * scale-state.json into its kept directory; BENCH_SCALE_REUSE=<that directory>
 * then skips init, the empty database and the fill, and runs step 3 on the
 * kept database (each run adds its issuances to it), against the empty figures
 * of the run that filled it. The database stays; drop it by hand
 * (DROP DATABASE "trellis_scale_<time>" WITH (FORCE)), and remove the directory.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { issueWrkScript, makeCsrs } from './lib/csrs.mjs';
import { benchTempDir, envInt, freePort, reporter, requireTools, runOk, runMain, runWrk, sampleProcess, startChild, treeUsage } from './lib/harness.mjs';
import { ocspGetPaths, serials } from './lib/ocsp-fixtures.mjs';
import { freshDatabase, loadWithoutIndexes } from './lib/pg-database.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// BENCH_DIST: a compiled tree other than dist/ (its cmd/main.js runs as the CLI).
const dist = path.resolve(process.env.BENCH_DIST ?? path.join(root, 'dist'));
const bin = process.env.BENCH_DIST ? path.join(dist, 'cmd', 'main.js') : path.join(root, 'bin', 'trellis.js');
const cfg = {
  certs: envInt('BENCH_SCALE_CERTS', 10_000_000),
  shards: envInt('BENCH_SCALE_SHARDS', 1024),
  seconds: envInt('BENCH_SECONDS', 10),
  warmup: envInt('BENCH_WARMUP', 2, 0),
  connections: envInt('BENCH_CONNECTIONS', 32),
  workers: envInt('BENCH_WORKERS', 2),
  misses: envInt('BENCH_MISSES', 2000),
  csrs: 50,
  pgUrl: process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  keep: process.env.BENCH_KEEP === '1',
};
const revokedEvery = 10; // every 10th row: 10 % revoked
const passphrase = 'bench-passphrase-not-secret';
const { failures, fail, warn, log } = reporter();
const reuse = process.env.BENCH_SCALE_REUSE ? path.resolve(process.env.BENCH_SCALE_REUSE) : null;
const tmp = reuse ?? benchTempDir('scale', cfg.keep);
const stateFile = path.join(tmp, 'scale-state.json');
let dbUrl; // the run's own database (freshDatabase), set in main()
const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

// ---- one Trellis instance on its PostgreSQL database ----------------------------------------

const data = path.join(tmp, 'data');
const env = { ...process.env, TRELLIS_PASSPHRASE: passphrase, TRELLIS_ROOT_PASSPHRASE: `${passphrase}-root` };
delete env.NODE_OPTIONS;
const cli = (...args) => runOk(process.execPath, [bin, ...args, '--data', data], { env, cwd: tmp });

/**
 * `serve --workers N`; resolves when /readyz answers 200, with the seconds it
 * took from the spawn, and the CPU seconds and RSS of its processes then (the
 * CPU says what start costs when the machine is shared and the wall time does not).
 */
async function startServe(port, label) {
  const logFile = path.join(tmp, `serve-${label}.log`);
  const t0 = performance.now();
  const server = startChild(process.execPath, [bin, 'serve', '--data', data, '--port', String(port), '--workers', String(cfg.workers)], { env, cwd: tmp, logFile });
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    if (!server.running()) throw new Error(`serve exited with ${server.exitCode} (log: ${logFile})`);
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (performance.now() - t0 > 180_000) throw new Error(`serve not ready after 180 s (log: ${logFile})`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const startSeconds = (performance.now() - t0) / 1000;
  const use = treeUsage(server.pid);
  const startCpuSeconds = use.cpuTicks / 100;
  log(`${label}: ready in ${startSeconds.toFixed(2)} s; CPU ${startCpuSeconds.toFixed(2)} s, RSS ${(use.rssKiB / 1024).toFixed(0)} MiB (all processes), load ${os.loadavg()[0].toFixed(2)}`);
  return { server, base, startSeconds, startCpuSeconds, startRssMiB: use.rssKiB / 1024 };
}

/** Issuance over HTTP with wrk: certificates per second (201 with a PEM chain). */
async function issuance(tools, base, token, csrs, label) {
  const script = issueWrkScript(path.join(tmp, `issue-${label}.lua`), token, csrs.map((c) => c.pem));
  const opts = { url: base, script, connections: cfg.connections, threads: 1 };
  if (cfg.warmup) await runWrk(tools.wrk, { ...opts, seconds: cfg.warmup });
  const m = await runWrk(tools.wrk, { ...opts, seconds: cfg.seconds });
  if (m.bad || m.err_timeout) fail(`${label} issuance: ${m.bad} unexpected answers (first: HTTP ${m.first_bad_status}), ${m.err_timeout} timeouts`);
  log(`${label}: issuance ${fmtInt(m.ok / cfg.seconds)} certs/s, p99 ${(m.p99_us / 1000).toFixed(1)} ms`);
  return m.ok / cfg.seconds;
}

/** Latencies of OCSP GETs over `paths`, each serial asked once (a cache miss), 8 at a time on keep-alive connections. */
async function ocspMisses(base, paths, label) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const times = [];
  let next = 0;
  let bad = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < paths.length) {
        const p = paths[next++];
        const t0 = performance.now();
        const status = await new Promise((resolve, reject) =>
          http
            .get(`${base}${p}`, { agent }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode));
            })
            .on('error', reject),
        );
        times.push(performance.now() - t0);
        if (status !== 200) bad++;
      }
    }),
  );
  agent.destroy();
  if (bad) fail(`${label} OCSP: ${bad} answers were not 200`);
  const p99 = percentile(times, 99);
  log(`${label}: OCSP cache misses p50 ${percentile(times, 50).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms over ${times.length}`);
  return p99;
}

// ---- the fill -------------------------------------------------------------------------------

/** Streams `cfg.certs` rows into "Certificate" through `COPY … FROM STDIN` (psql). Returns sample serials and the seconds taken. */
async function fill(caId) {
  const { crlShardOf } = await import(path.join(dist, 'ca', 'serial.js'));
  const columns = ['issuerId', 'serialHex', 'profile', 'subject', 'sans', 'notBefore', 'notAfter', 'status', 'crlShard', 'requestedVia', 'requestedBy', 'revokedAt', 'revocationReason', 'createdAt', 'issuedAt'];
  const copy = `COPY "Certificate" (${columns.map((c) => `"${c}"`).join(',')}) FROM STDIN`;
  const psql = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', dbUrl, '-c', copy], { stdio: ['pipe', 'inherit', 'inherit'] });
  const done = new Promise((resolve, reject) => psql.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql COPY exited with ${code}`)))));
  const now = Date.now();
  const ts = (ms) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
  const notBefore = ts(now - 200 * 86_400_000);
  const notAfter = ts(now + 165 * 86_400_000);
  const revokedAt = ts(now - 86_400_000);
  const sample = { valid: [], revoked: [] };
  const t0 = performance.now();
  const chunk = 10_000;
  for (let i = 0; i < cfg.certs; i += chunk) {
    const n = Math.min(chunk, cfg.certs - i);
    const hexes = serials(n);
    let text = '';
    for (let k = 0; k < n; k++) {
      const row = i + k;
      const s = hexes[k];
      const revoked = row % revokedEvery === 0;
      const name = `d${row}.fleet.example`;
      text += `${caId}\t${s}\tserver\tCN=${name}\t[{"type":"dns","value":"${name}"}]\t${notBefore}\t${notAfter}\t${revoked ? 'revoked' : 'valid'}\t${crlShardOf(s, cfg.shards)}\tapi\tbench-scale\t${revoked ? revokedAt : '\\N'}\t${revoked ? 1 : '\\N'}\t${notBefore}\t${notBefore}\n`;
      // A random sample for the OCSP misses, spread over the whole fill.
      if (crypto.randomInt(cfg.certs) < cfg.misses * 2) (revoked ? sample.revoked : sample.valid).push(s);
    }
    if (!psql.stdin.write(text)) await new Promise((r) => psql.stdin.once('drain', r));
    if (i % 1_000_000 === 0 && i) log(`fill: ${fmtInt(i)} rows, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  psql.stdin.end();
  await done;
  const seconds = (performance.now() - t0) / 1000;
  log(`fill: ${fmtInt(cfg.certs)} rows in ${seconds.toFixed(0)} s (${fmtInt(cfg.certs / seconds)} rows/s)`);
  return { sample, seconds };
}

// ---- one shard CRL after a revocation, in-process -------------------------------------------

async function shardCrlAfterRevocation(caId, serialsToRevoke) {
  const { openInstance, keystoreFor, unlockIssuers } = await import(path.join(dist, 'cmd', 'instance.js'));
  const { crlPublisher } = await import(path.join(dist, 'cmd', 'crl-publishing.js'));
  const { crlShardOf } = await import(path.join(dist, 'ca', 'serial.js'));
  const instance = await openInstance(data, { databaseUrl: dbUrl });
  try {
    const issuers = await unlockIssuers(instance, keystoreFor(instance, passphrase));
    // The publisher a node runs: it holds every CRL (refresh) and regenerates a shard from its previous CRL plus the changes.
    const publisher = crlPublisher(instance, issuers.all());
    await publisher.refresh();
    const shardOf = (serial) => `shard-${crlShardOf(serial, cfg.shards)}`;
    // One regeneration first, not counted: the code paths are cold in this process.
    await publisher.generate(caId, shardOf(serialsToRevoke[0]));
    const times = [];
    const complete = [];
    let crlEntries = 0;
    for (const serial of serialsToRevoke) {
      // Revoked by another process (the CLI), as an operator or another node would; this process then regenerates the
      // shard as its scheduler does for a change: from the shard's previous CRL plus the changes since (incremental).
      await cli('revoke', '--serial', serial, '--reason', 'keyCompromise');
      let t0 = performance.now();
      const crl = await publisher.generate(caId, shardOf(serial), { incremental: true });
      times.push(performance.now() - t0);
      if (!crl.entries) fail(`shard CRL ${shardOf(serial)} has no entries`);
      crlEntries = crl.entries;
      // The same shard read whole from the store, as at its half-life.
      t0 = performance.now();
      const whole = await publisher.generate(caId, shardOf(serial));
      complete.push(performance.now() - t0);
      if (whole.entries !== crl.entries) fail(`shard CRL ${shardOf(serial)}: ${crl.entries} entries from the previous CRL, ${whole.entries} read whole`);
    }
    log(`shard CRL after a revocation: ${times.map((t) => t.toFixed(1)).join(', ')} ms (${crlEntries} entries); read whole from the store: ${complete.map((t) => t.toFixed(1)).join(', ')} ms`);
    return { incremental: median(times), complete: median(complete) };
  } finally {
    await instance.close();
  }
}

/**
 * Steps 1 and 2: init, the empty database's figures, the fill and `crl
 * publish`. Returns what step 3 needs; with BENCH_KEEP=1 also writes it to
 * scale-state.json for BENCH_SCALE_REUSE.
 */
async function emptyAndFill(tools, port) {
  await cli('init', '--yes', '--base-url', `http://127.0.0.1:${port}`);
  // The shard count is fixed per certificate at issuance: set before the first one.
  const configFile = path.join(data, 'trellis.json');
  fs.writeFileSync(configFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(configFile, 'utf8')), crlShards: cfg.shards }, null, 2));
  const token = (await cli('token', 'create', '--role', 'issuer')).stdout.trim();
  const cas = JSON.parse((await cli('ca', 'list', '--json')).stdout);
  const caId = cas.find((c) => c.role === 'issuing').id;
  const issuerPem = path.join(tmp, 'issuing.pem');
  fs.writeFileSync(issuerPem, (await cli('ca', 'cert', '--ca', caId)).stdout);
  const csrs = await makeCsrs(tools.openssl, path.join(tmp, 'csrs'), cfg.csrs);

  // 1. the empty database
  const empty = await startServe(port, 'empty');
  const emptyRate = await issuance(tools, empty.base, token, csrs, 'empty');
  const unknown = await ocspGetPaths(tools.openssl, path.join(tmp, 'req.der'), issuerPem, serials(cfg.misses));
  const emptyMissP99 = await ocspMisses(empty.base, unknown, 'empty');
  await empty.server.stop(30_000);

  // 2. the fill
  // The secondary indexes are dropped for the COPY and built once after it (bench only: a load, not what serve does).
  let sample;
  const load = await loadWithoutIndexes(dbUrl, 'Certificate', async () => ({ sample } = await fill(caId)));
  log(`fill: ${load.indexes} indexes built again in ${load.indexSeconds.toFixed(0)} s; ANALYZE`);
  await runOk('psql', ['-X', '-q', '-d', dbUrl, '-c', 'ANALYZE "Certificate"']);
  const t0 = performance.now();
  await cli('crl', 'publish', '--out', path.join(tmp, 'crls'));
  const publishSeconds = (performance.now() - t0) / 1000;
  log(`crl publish (every CRL of ${fmtInt(cfg.certs / revokedEvery)} revoked): ${publishSeconds.toFixed(1)} s`);
  const state = {
    dbName: new URL(dbUrl).pathname.slice(1), dbUrl, filledAt: new Date().toISOString(), caId, token, issuerPem, sample,
    empty: { startSeconds: empty.startSeconds, startCpuSeconds: empty.startCpuSeconds, rate: emptyRate, missP99: emptyMissP99 }, load, publishSeconds,
  };
  if (cfg.keep) fs.writeFileSync(stateFile, JSON.stringify(state), { mode: 0o600 });
  return { state, csrs };
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  const tools = requireTools({ openssl: 'apt-get install openssl', wrk: 'apt-get install wrk', psql: 'apt-get install postgresql-client' });
  if (!fs.existsSync(path.join(dist, 'cmd', 'main.js'))) throw new Error(`${dist} is missing: run \`npm run build\` first`);
  log(`machine: ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; ${fmtInt(cfg.certs)} certificates, ${cfg.shards} CRL shards per CA`);
  // A kept run's state (BENCH_SCALE_REUSE), or a fresh database filled below.
  const kept = reuse ? JSON.parse(fs.readFileSync(stateFile, 'utf8')) : null;
  const db = kept ? { name: kept.dbName, url: kept.dbUrl, drop: async () => {} } : await freshDatabase(cfg.pgUrl, 'trellis_scale');
  dbUrl = env.TRELLIS_DATABASE_URL = db.url;
  const port = await freePort();
  try {
    if (kept) log(`reusing ${db.name} and ${tmp} (filled ${kept.filledAt}); empty-database figures from that run`);
    const { state, csrs } = kept ? { state: kept, csrs: await makeCsrs(tools.openssl, path.join(tmp, 'csrs'), cfg.csrs) } : await emptyAndFill(tools, port);
    const { caId, token, sample, issuerPem } = state;
    // A reused database: the OCSP answers an earlier run signed are dropped (the misses below are misses again).
    if (kept) await runOk('psql', ['-X', '-q', '-d', dbUrl, '-c', 'DELETE FROM "OcspResponse"']);
    const empty = state.empty;
    const load = state.load;
    const publishSeconds = state.publishSeconds;

    // 3. the full database
    const full = await startServe(port, 'full');
    const rss = sampleProcess(full.server.pid, 200);
    const fullRate = await issuance(tools, full.base, token, csrs, 'full');
    const picked = [...sample.valid.slice(0, Math.floor(cfg.misses * 0.9)), ...sample.revoked.slice(0, Math.ceil(cfg.misses * 0.1))];
    const fullMissP99 = await ocspMisses(full.base, await ocspGetPaths(tools.openssl, path.join(tmp, 'req.der'), issuerPem, picked), 'full');
    const mem = rss.stop();
    await full.server.stop(30_000);
    // Five valid certificates from the end of the sample, each run its own (the OCSP misses take the first ones).
    const used = state.revokedForCrl ?? 0;
    const { incremental: crlMs, complete: crlWholeMs } = await shardCrlAfterRevocation(caId, sample.valid.slice(-5 - used, sample.valid.length - used));
    if (cfg.keep || kept) fs.writeFileSync(stateFile, JSON.stringify({ ...state, revokedForCrl: used + 5 }), { mode: 0o600 });

    const rows = [
      ['', 'empty database', `${fmtInt(cfg.certs)} certificates`],
      ['serve ready (s)', empty.startSeconds.toFixed(2), full.startSeconds.toFixed(2)],
      ['serve start CPU, all processes (s)', empty.startCpuSeconds?.toFixed(2) ?? '', full.startCpuSeconds.toFixed(2)],
      ['serve RSS at ready, all processes (MiB)', '', full.startRssMiB.toFixed(0)],
      ['issuance (certs/s)', fmtInt(empty.rate), fmtInt(fullRate)],
      ['OCSP cache-miss p99 (ms)', empty.missP99.toFixed(2), fullMissP99.toFixed(2)],
      ['shard CRL after a revocation (ms)', '', crlMs.toFixed(1)],
      ['shard CRL read whole from the store (ms)', '', crlWholeMs.toFixed(1)],
      ['serve peak RSS, all processes (MiB)', '', (mem.peakKiB / 1024).toFixed(0)],
      ['fill: COPY, then the indexes (s)', '', `${load.loadSeconds.toFixed(0)} + ${load.indexSeconds.toFixed(0)}`],
      ['crl publish, every CRL (s)', '', publishSeconds.toFixed(1)],
    ];
    console.log();
    for (const r of rows) console.log(`| ${r[0].padEnd(42)} | ${r[1].padStart(14)} | ${r[2].padStart(22)} |`);
    console.log();
    if (mem.peakKiB / 1024 > 500) warn(`serve peak RSS ${(mem.peakKiB / 1024).toFixed(0)} MiB is above the 500 MiB goal`);
    console.log(`RESULT scale_issue_10m ${fullRate.toFixed(1)} certs/s baseline ${empty.rate.toFixed(1)} ratio ${(fullRate / empty.rate).toFixed(2)}`);
    console.log(`RESULT scale_crl_shard_10m ${crlMs.toFixed(1)} ms baseline 50 ratio ${(crlMs / 50).toFixed(2)}`);
    if (failures.length) process.exitCode = 1;
    console.log(`RESULT scale_start_10m ${full.startSeconds.toFixed(2)} s baseline ${empty.startSeconds.toFixed(2)} ratio ${(full.startSeconds / empty.startSeconds).toFixed(2)}`);
  } finally {
    if (!cfg.keep && !reuse) await db.drop().catch((err) => warn(`could not drop ${db.name}: ${err.message}`));
    else log(`kept: database ${db.name}, directory ${tmp} (BENCH_SCALE_REUSE=${tmp} runs step 3 on it again)`);
  }
}

runMain(main);
