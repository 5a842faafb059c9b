#!/usr/bin/env node
/**
 * `npm run bench:enroll`: complete EST device enrollments per second
 * (RFC 7030 `simpleenroll`, HTTP Basic with the device id and its one-time
 * secret) against `trellis serve --tls --workers 2`, every enrollment on a new
 * TLS connection (a full handshake, no keep-alive, no session resumption), as a
 * fleet of devices coming online would do. Baseline: `POST /api/v1/certificates`
 * on the same server with wrk (keep-alive), as bench/issue.mjs measures it.
 *
 * Steps: `trellis init` in a temp dir, `trellis device import --csv` of
 * BENCH_DEVICES devices with `--secrets-out` (timed), one P-256 key and CSR per
 * device (subject serialNumber=<id>; made with node:crypto and a small DER
 * builder before timing starts), the baseline wrk run, then every device
 * enrolls once from BENCH_CLIENTS client processes (Node https, agent: false)
 * with BENCH_CONCURRENCY requests in flight in all. Then the checks: every
 * answer 200 with a certs-only PKCS#7 naming the device (all by a byte check,
 * BENCH_SAMPLES of them through `openssl pkcs7 -print_certs` and
 * `openssl x509`), and, after the server stopped, exactly one valid
 * certificate with deviceId per device and every device `active`.
 *
 * Environment: BENCH_DEVICES (3000), BENCH_CONCURRENCY (64), BENCH_CLIENTS
 * (client processes, 1), BENCH_WORKERS (serve --workers, 2), BENCH_SECONDS
 * (baseline wrk seconds, 5), BENCH_WARMUP (baseline warm-up seconds, 2),
 * BENCH_CONNECTIONS (baseline wrk connections, 64), BENCH_SAMPLES (openssl
 * checks, 20), BENCH_IMPORT (also time an import of this many lines after
 * the run; 0 = off), BENCH_CPU_PROF=1 (server under `node --cpu-prof`,
 * summarised with bench/profile-summary.mjs), BENCH_PROFILE_DIR, BENCH_KEEP=1.
 *
 * Access log: off (TRELLIS_ACCESS_LOG=off), as bench/issue.mjs runs the server.
 *
 * Last line:
 *   RESULT enroll_est <enrollments/s> enrollments/s baseline <issue_http certs/s> ratio <x>
 * Exit code 1 on any mismatch (status, body, stored rows), 2 on a setup error.
 */
import { fork } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
// The DER pieces of the ACME bench's CSRs serve the device CSRs too.
import { ALG_ECDSA_SHA256, p256Csr, seq, tlv } from './lib/acme-client.mjs';
import {
  benchTempDir,
  buildInfo,
  envInt,
  freePort,
  machineBusy,
  machineTicks,
  mapLimit,
  reporter,
  requireTools,
  run,
  runMain,
  runOk,
  runWrk,
  sampleProcess,
  startChild,
  waitReady,
  writeWrkScript,
} from './lib/harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SERVERNAME = 'localhost';

// ---- DER: a PKCS#10 CSR with subject serialNumber=<id> ---------------------------

const OID_SERIAL_NUMBER = Buffer.from('0603550405', 'hex'); // 2.5.4.5

/** A fresh P-256 key and the DER CSR for subject serialNumber=<id> (PrintableString). */
function deviceCsr(id) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const subject = seq(tlv(0x31, seq(OID_SERIAL_NUMBER, tlv(0x13, Buffer.from(id, 'ascii')))));
  const info = seq(Buffer.from([0x02, 0x01, 0x00]), subject, publicKey.export({ type: 'spki', format: 'der' }), tlv(0xa0));
  const sig = crypto.sign('sha256', info, privateKey);
  return seq(info, ALG_ECDSA_SHA256, tlv(0x03, Buffer.from([0]), sig));
}

const pem = (label, der) => `-----BEGIN ${label}-----\n${der.toString('base64').match(/.{1,64}/g).join('\n')}\n-----END ${label}-----\n`;

// ---- the client process (`node bench/enroll.mjs --client`) -----------------------

/**
 * Receives {port, ca, concurrency, jobs: [{id, secret, csr}]} over IPC, enrolls
 * each job on a new TLS connection, answers {results: [{id, status, ms, ok, why, b64?}]}.
 * b64 (the answer) only for the ids in `keep` (the openssl samples).
 */
function clientMain() {
  process.on('disconnect', () => process.exit(0));
  process.once('message', async ({ port, ca, concurrency, jobs, keep }) => {
    const keepSet = new Set(keep);
    const t0 = performance.now();
    const results = await mapLimit(jobs, concurrency, (job) => enrollOne(port, ca, job, keepSet.has(job.id)));
    const ms = performance.now() - t0;
    process.send({ results, ms, cpu: process.cpuUsage() }, () => process.exit(0));
  });
}

function enrollOne(port, ca, { id, secret, csr }, keepBody) {
  const t = performance.now();
  return new Promise((resolve) => {
    const done = (status, ok, why, b64) => resolve({ id, status, ms: performance.now() - t, ok, why, ...(b64 ? { b64 } : {}) });
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/.well-known/est/simpleenroll',
        method: 'POST',
        ca,
        servername: SERVERNAME,
        agent: false,
        headers: {
          'content-type': 'application/pkcs10',
          'content-length': Buffer.byteLength(csr),
          authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', (err) => done(res.statusCode, false, String(err)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('ascii');
          if (res.statusCode !== 200) return done(res.statusCode, false, text.slice(0, 200));
          const type = String(res.headers['content-type'] ?? '');
          if (!/^application\/pkcs7-mime\b/.test(type) || !/smime-type=certs-only/.test(type)) return done(200, false, `content-type ${type}`);
          const der = Buffer.from(text.replace(/\s+/g, ''), 'base64');
          // the certificate names the device: subject serialNumber and the URI SAN urn:dev:trellis:<id>
          if (der[0] !== 0x30 || !der.includes(Buffer.from(`urn:dev:trellis:${id}`))) return done(200, false, 'answer is not a CMS naming the device');
          done(200, true, '', keepBody ? text : undefined);
        });
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error('no answer in 60 s')));
    req.on('error', (err) => done(0, false, String(err.message ?? err)));
    req.end(csr);
  });
}

if (process.argv[2] === '--client') {
  clientMain();
} else {
  runMain(main);
}

// ---- the benchmark ------------------------------------------------------------

function cfgFromEnv() {
  return {
    devices: envInt('BENCH_DEVICES', 3000),
    concurrency: envInt('BENCH_CONCURRENCY', 64),
    clients: envInt('BENCH_CLIENTS', 1),
    workers: envInt('BENCH_WORKERS', 2),
    seconds: envInt('BENCH_SECONDS', 5),
    warmup: envInt('BENCH_WARMUP', 2, 0),
    connections: envInt('BENCH_CONNECTIONS', 64),
    samples: envInt('BENCH_SAMPLES', 20, 0),
    importLines: envInt('BENCH_IMPORT', 0, 0),
    cpuProf: process.env.BENCH_CPU_PROF === '1',
    keep: process.env.BENCH_KEEP === '1',
  };
}

/** GET over TLS with our root; resolves the status. */
function httpsStatus(port, ca, p) {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: p, ca, servername: SERVERNAME, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      })
      .on('error', reject);
  });
}

function dbCounts(dbFile) {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const one = (sql) => db.prepare(sql).get().n;
    return {
      deviceCerts: one(`SELECT count(*) AS n FROM "Certificate" WHERE "deviceId" IS NOT NULL AND status = 'valid'`),
      deviceCertsDistinct: one(`SELECT count(DISTINCT "deviceId") AS n FROM "Certificate" WHERE "deviceId" IS NOT NULL AND status = 'valid'`),
      deviceCertsOther: one(`SELECT count(*) AS n FROM "Certificate" WHERE "deviceId" IS NOT NULL AND status <> 'valid'`),
      active: one(`SELECT count(*) AS n FROM "Device" WHERE status = 'active'`),
      devices: one(`SELECT count(*) AS n FROM "Device"`),
      unusedSecrets: one(`SELECT count(*) AS n FROM "Device" WHERE "secretHash" IS NOT NULL`),
      pending: one(`SELECT count(*) AS n FROM "Certificate" WHERE status = 'pending'`),
    };
  } finally {
    db.close();
  }
}

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);

async function main() {
  const cfg = cfgFromEnv();
  const { failures, fail, warn, log } = reporter();
  const tools = requireTools({
    wrk: 'HTTP load generator for the issue_http baseline (Debian: apt-get install wrk)',
    openssl: 'sample checks of the answers (Debian: apt-get install openssl)',
  });
  const bin = path.join(root, 'bin', 'trellis.js');
  if (!fs.existsSync(path.join(root, 'dist', 'cmd', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const tmp = benchTempDir('enroll', cfg.keep);
  log(`temp dir ${tmp}${cfg.keep ? ' (kept)' : ''}`);
  const busyBefore = await machineBusy(1000);
  const build = await buildInfo(root, path.join(root, 'dist'));

  const data = path.join(tmp, 'data');
  const env = { ...process.env, TRELLIS_PASSPHRASE: 'bench-passphrase-not-secret', TRELLIS_ACCESS_LOG: 'off' };
  delete env.NODE_OPTIONS;
  const cli = (...args) => runOk(process.execPath, [bin, ...args, '--data', data], { env, cwd: tmp });

  const port = await freePort();
  log('trellis: init');
  await cli('init', '--yes', '--base-url', `https://${SERVERNAME}:${port}`);
  const rootPem = (await cli('ca', 'cert', '--root')).stdout;
  const token = (await cli('token', 'create', '--role', 'issuer')).stdout.trim();

  // ---- device import (timed) ----
  const ids = Array.from({ length: cfg.devices }, (_, i) => `bench-${String(i + 1).padStart(7, '0')}`);
  const csvFile = path.join(tmp, 'devices.csv');
  fs.writeFileSync(csvFile, `id,model\n${ids.map((id) => `${id},sensor-v1`).join('\n')}\n`);
  const secretsFile = path.join(tmp, 'secrets.csv');
  log(`trellis device import: ${cfg.devices} devices`);
  let t = performance.now();
  const imp = await cli('device', 'import', '--csv', csvFile, '--secrets-out', secretsFile);
  const importWallS = (performance.now() - t) / 1000;
  const importSays = /imported \d+ devices in ([\d.]+) s/.exec(imp.stdout)?.[1];
  const secrets = new Map(
    fs.readFileSync(secretsFile, 'utf8').split('\n').filter(Boolean).map((l) => {
      const i = l.indexOf(',');
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );
  if (secrets.size !== cfg.devices) fail(`--secrets-out holds ${secrets.size} secrets for ${cfg.devices} devices`);

  // ---- keys and CSRs (before timing) ----
  log(`making ${cfg.devices} P-256 keys and CSRs (node:crypto)`);
  t = performance.now();
  const jobs = ids.map((id) => ({ id, secret: secrets.get(id) ?? '', csr: deviceCsr(id).toString('base64') }));
  const csrS = (performance.now() - t) / 1000;
  const baselineCsrs = Array.from({ length: 50 }, (_, i) => pem('CERTIFICATE REQUEST', p256Csr([`b${i + 1}.bench.example`])));

  // ---- server ----
  let profDir;
  const nodeArgs = [];
  if (cfg.cpuProf) {
    profDir = process.env.BENCH_PROFILE_DIR ? path.resolve(process.env.BENCH_PROFILE_DIR) : fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-prof-'));
    fs.mkdirSync(profDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profDir}`);
  }
  const serverLog = path.join(tmp, 'serve.log');
  const serverStarted = Date.now();
  const server = startChild(process.execPath, [...nodeArgs, bin, 'serve', '--data', data, '--port', String(port), '--tls', '--workers', String(cfg.workers)], { env, cwd: tmp, logFile: serverLog });
  await waitReady(async () => (await httpsStatus(port, rootPem, '/healthz')) === 200, { child: server, what: `trellis serve --tls (log: ${serverLog})` });
  log(`trellis: serving on https://127.0.0.1:${port} (pid ${server.pid}, ${cfg.workers} workers)`);

  // ---- baseline: issue_http with wrk, as bench/issue.mjs (shorter), same server ----
  const script = writeWrkScript(path.join(tmp, 'issue.lua'), {
    path: '/api/v1/certificates',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    bodies: baselineCsrs.map((csr) => JSON.stringify({ profile: 'server', csr })),
    expectStatus: 201,
    expectBody: '-----BEGIN CERTIFICATE-----',
  });
  const wrkOpts = { url: `https://127.0.0.1:${port}`, script, connections: cfg.connections, threads: 1 };
  if (cfg.warmup) {
    log(`issue_http: warm-up ${cfg.warmup} s`);
    await runWrk(tools.wrk, { ...wrkOpts, seconds: cfg.warmup });
  }
  log(`issue_http: measuring ${cfg.seconds} s, wrk -t1 -c${cfg.connections} (keep-alive TLS)`);
  const baseRss = sampleProcess(server.pid, 200);
  const base = await runWrk(tools.wrk, { ...wrkOpts, seconds: cfg.seconds });
  const baseMem = baseRss.stop();
  if (base.bad || base.err_timeout) fail(`issue_http: ${base.bad} unexpected responses (first: HTTP ${base.first_bad_status} ${base.first_bad_body.replace(/\s+/g, ' ').slice(0, 200)}), ${base.err_timeout} timeouts`);

  // ---- enrollment ----
  const nClients = Math.min(cfg.clients, cfg.devices);
  const keep = new Set();
  for (let i = 0; i < Math.min(cfg.samples, cfg.devices); i++) keep.add(ids[Math.floor((i * cfg.devices) / Math.min(cfg.samples, cfg.devices))]);
  log(`enrolling ${cfg.devices} devices: ${nClients} client process(es), ${cfg.concurrency} in flight, a new TLS connection each`);
  const clients = Array.from({ length: nClients }, () => fork(fileURLToPath(import.meta.url), ['--client'], { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const shares = clients.map((_, k) => jobs.filter((_, i) => i % nClients === k));
  const m0 = machineTicks();
  const rss = sampleProcess(server.pid, 200);
  const started = performance.now();
  const outs = await Promise.all(
    clients.map(
      (c, k) =>
        new Promise((resolve, reject) => {
          c.once('message', resolve);
          c.once('exit', (code) => reject(new Error(`enroll client exited ${code} without an answer`)));
          c.send({ port, ca: rootPem, concurrency: Math.max(1, Math.round(cfg.concurrency / nClients)), jobs: shares[k], keep: [...keep] });
        }),
    ),
  );
  const wallS = (performance.now() - started) / 1000;
  const mem = rss.stop();
  const m1 = machineTicks();
  const ncpu = os.cpus().length;
  const clientCores = outs.reduce((a, o) => a + (o.cpu.user + o.cpu.system) / 1e6, 0) / wallS;
  const results = outs.flatMap((o) => o.results);
  const okCount = results.filter((r) => r.ok).length;
  const rate = okCount / wallS;
  const bad = results.filter((r) => !r.ok);
  if (bad.length) {
    const byStatus = {};
    for (const r of bad) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    fail(`enroll: ${bad.length} of ${results.length} answers were not a 200 with the device's certificate (${Object.entries(byStatus).map(([s, n]) => `HTTP ${s}: ${n}`).join(', ')}; first: ${bad[0].id} HTTP ${bad[0].status} ${bad[0].why})`);
  }
  if (results.length !== cfg.devices) fail(`enroll: ${results.length} answers for ${cfg.devices} devices`);
  const lat = results.map((r) => r.ms).sort((a, b) => a - b);

  // ---- openssl samples ----
  const sampleDir = path.join(tmp, 'samples');
  fs.mkdirSync(sampleDir);
  const kept = results.filter((r) => r.b64);
  let samplesOk = 0;
  await mapLimit(kept, 4, async (r) => {
    const p7 = path.join(sampleDir, `${r.id}.p7`);
    fs.writeFileSync(p7, Buffer.from(r.b64.replace(/\s+/g, ''), 'base64'));
    const printed = await run(tools.openssl, ['pkcs7', '-inform', 'DER', '-in', p7, '-print_certs']);
    const certs = printed.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
    if (printed.code !== 0 || certs.length < 1) return fail(`sample ${r.id}: openssl pkcs7 -print_certs: ${(printed.stderr || printed.stdout).trim().slice(0, 200)}`);
    const leaf = path.join(sampleDir, `${r.id}.pem`);
    fs.writeFileSync(leaf, certs[0]);
    const x = await run(tools.openssl, ['x509', '-in', leaf, '-noout', '-subject', '-ext', 'subjectAltName', '-nameopt', 'RFC2253']);
    if (x.code !== 0 || !x.stdout.includes(`serialNumber=${r.id}`) || !x.stdout.includes(`URI:urn:dev:trellis:${r.id}`)) return fail(`sample ${r.id}: certificate does not name the device: ${x.stdout.replace(/\s+/g, ' ').trim()}`);
    samplesOk++;
  });

  // ---- stop, then the rows ----
  log('trellis: stopping (SIGTERM)');
  const code = await server.stop(30_000);
  if (code !== 0) warn(`trellis serve exited with ${code} (log: ${serverLog})`);
  const rows = dbCounts(path.join(data, 'trellis.db'));
  const rowsOk = rows.deviceCerts === cfg.devices && rows.deviceCertsDistinct === cfg.devices && rows.active === cfg.devices && rows.deviceCertsOther === 0 && rows.unusedSecrets === 0 && rows.pending === 0;
  if (!rowsOk) fail(`stored rows: ${rows.deviceCerts} valid device certificates for ${rows.deviceCertsDistinct} devices, ${rows.deviceCertsOther} device certificates not valid, ${rows.active} of ${rows.devices} devices active, ${rows.unusedSecrets} secrets unused, ${rows.pending} pending (expected ${cfg.devices}, ${cfg.devices}, 0, ${cfg.devices}, 0, 0)`);

  let profiles = [];
  if (cfg.cpuProf) {
    profiles = fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(profDir, f)).filter((f) => fs.statSync(f).mtimeMs >= serverStarted);
    if (!profiles.length) warn(`no .cpuprofile written in ${profDir}`);
  }

  // ---- optional: a large import ----
  let bigImport;
  if (cfg.importLines) {
    const bigCsv = path.join(tmp, 'import-big.csv');
    const lines = ['id,model'];
    for (let i = 1; i <= cfg.importLines; i++) lines.push(`imp-${String(i).padStart(7, '0')},sensor-v2`);
    fs.writeFileSync(bigCsv, `${lines.join('\n')}\n`);
    log(`trellis device import: ${cfg.importLines} lines (into the same instance, ${cfg.devices} devices already there)`);
    const t1 = performance.now();
    const r = await cli('device', 'import', '--csv', bigCsv, '--secrets-out', path.join(tmp, 'secrets-big.csv'));
    bigImport = { wallS: (performance.now() - t1) / 1000, says: /imported \d+ devices in ([\d.]+) s/.exec(r.stdout)?.[1] };
  }

  // ---- report ----
  const busyDuring = (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total);
  console.log('');
  console.log(`EST enrollment: ${cfg.devices} devices, each once, simpleenroll with HTTP Basic, a new TLS connection per enrollment, ${nClients} client process(es), ${cfg.concurrency} in flight; trellis serve --tls --workers ${cfg.workers}, access log off; ${ncpu} CPUs, machine ${(100 * busyBefore).toFixed(0)}% busy before${cfg.cpuProf ? ', server under --cpu-prof' : ''}`);
  console.log(`trellis build: ${build}`);
  if (busyBefore > 0.2) warn(`CPU was ${(100 * busyBefore).toFixed(0)}% busy before the run: other work on this machine skews the figures`);
  console.log(`device import: ${cfg.devices} devices with --secrets-out in ${importWallS.toFixed(2)} s wall (the CLI says ${importSays ?? '?'} s)`);
  if (bigImport) console.log(`device import: ${cfg.importLines} lines with --secrets-out in ${bigImport.wallS.toFixed(2)} s wall (the CLI says ${bigImport.says ?? '?'} s)`);
  console.log(`keys and CSRs: ${cfg.devices} P-256 keys + CSRs (one key per device, node:crypto) in ${csrS.toFixed(2)} s, before timing`);
  console.log(`enrollments: ${okCount} ok of ${results.length} in ${wallS.toFixed(2)} s = ${rate.toFixed(1)} enrollments/s (goal >= 300 on 2 cores)${rate < 300 ? '  <-- below goal' : ''}`);
  console.log(`  latency ms p50 ${pct(lat, 50).toFixed(1)} p90 ${pct(lat, 90).toFixed(1)} p99 ${pct(lat, 99).toFixed(1)} max ${lat.at(-1)?.toFixed(1)}`);
  console.log(`  server CPU ${mem.serverCores.toFixed(2)} cores (${((1000 * mem.serverCores) / rate).toFixed(2)} ms per enrollment), client CPU ${clientCores.toFixed(2)} cores (${nClients} process(es)), machine ${(100 * busyDuring).toFixed(0)}% busy, server peak RSS ${(mem.peakKiB / 1024).toFixed(0)} MiB`);
  console.log(`  answers: byte check on all ${results.length}; openssl pkcs7 -print_certs + x509 on ${samplesOk} of ${kept.length} samples ok`);
  console.log(`  rows: ${rows.deviceCerts} valid certificates with deviceId for ${rows.deviceCertsDistinct} devices, ${rows.active} of ${rows.devices} devices active, ${rows.unusedSecrets} secrets unused${rowsOk ? '  ok' : '  MISMATCH'}`);
  console.log(`issue_http baseline (same server, wrk -t1 -c${cfg.connections}, keep-alive TLS, ${cfg.seconds} s after ${cfg.warmup} s warm-up): ${base.okPerSec.toFixed(1)} certs/s, p50 ${(base.p50_us / 1000).toFixed(1)} ms, p99 ${(base.p99_us / 1000).toFixed(1)} ms, server CPU ${baseMem.serverCores.toFixed(2)} cores (${((1000 * baseMem.serverCores) / base.okPerSec).toFixed(2)} ms per certificate), machine ${(100 * baseMem.machineBusy).toFixed(0)}% busy`);
  if (profiles.length) {
    console.log(`cpu profile(s): ${profiles.join(' ')}`);
    const summary = await run(process.execPath, [path.join(root, 'bench', 'profile-summary.mjs'), ...profiles]);
    console.log(summary.stdout.trimEnd());
    if (summary.code !== 0) warn(`profile-summary failed: ${summary.stderr.trim()}`);
  }
  if (failures.length) console.log(`${failures.length} failure(s), see FAIL lines above`);
  const ratio = base.okPerSec > 0 ? rate / base.okPerSec : NaN;
  console.log(`RESULT enroll_est ${rate.toFixed(1)} enrollments/s baseline ${base.okPerSec.toFixed(1)} ratio ${ratio.toFixed(2)}`);
  return failures.length ? 1 : 0;
}
