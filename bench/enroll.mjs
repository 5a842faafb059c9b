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
 * enrolls once with curl (BENCH_CLIENTS processes of `curl --parallel`,
 * BENCH_CONCURRENCY transfers in flight in all; `Connection: close` and
 * `--no-sessionid`, so each enrollment is a new TCP connection and a full TLS
 * handshake, the server verified against our root). A C TLS client as devices
 * have: Node's https client spent 3.7 ms of CPU per connection (a third of it
 * turning the server's chain into JS objects for checkServerIdentity), more
 * than the server, on the same two cores. Then the checks: every
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
 * The server runs as users run it: access log on (to serve.log in the temp
 * dir), durable commits.
 *
 * Last line:
 *   RESULT enroll_est <enrollments/s> enrollments/s baseline <issue_http certs/s> ratio <x>
 * Exit code 1 on any mismatch (status, body, stored rows), 2 on a setup error.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
// The DER pieces of the ACME bench's CSRs serve the device CSRs too.
import { ALG_ECDSA_SHA256, p256Csr, seq, tlv } from './lib/acme-client.mjs';
import { issueWrkScript } from './lib/csrs.mjs';
import {
  benchTempDir,
  buildInfo,
  cpuProfiler,
  envInt,
  freePort,
  machineBusy,
  machineTicks,
  mapLimit,
  reapedChildrenTicks,
  reporter,
  requireTools,
  run,
  runMain,
  runOk,
  runWrk,
  sampleProcess,
  startChild,
  waitReady,
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

// ---- the client: curl, a new TLS connection per enrollment ---------------------

/**
 * A curl config (-K) enrolling each job once: simpleenroll with HTTP Basic,
 * `Connection: close` and no TLS session cache (a full handshake each),
 * the server verified against our root, each answer saved as <dir>/<id>.b64.
 */
function curlConfig({ port, rootFile, csrDir, outDir, jobs }) {
  const q = (v) => JSON.stringify(v); // curl config strings: double quotes with backslash escapes
  return jobs
    .map(
      (j) => `url = ${q(`https://${SERVERNAME}:${port}/.well-known/est/simpleenroll`)}
resolve = ${q(`${SERVERNAME}:${port}:127.0.0.1`)}
cacert = ${q(rootFile)}
no-sessionid
user = ${q(`${j.id}:${j.secret}`)}
header = "Content-Type: application/pkcs10"
header = "Connection: close"
data-binary = ${q(`@${path.join(csrDir, `${j.id}.b64`)}`)}
output = ${q(path.join(outDir, `${j.id}.b64`))}
write-out = "%{http_code} %{time_total} %{content_type}|%{filename_effective}\\n"
`,
    )
    .join('next\n');
}

/** Checks one saved answer: a certs-only CMS naming the device (subject serialNumber and the URI SAN). */
function checkAnswer(id, status, type, file) {
  if (status !== 200) return { ok: false, why: fs.existsSync(file) ? fs.readFileSync(file, 'utf8').slice(0, 200) : 'no body' };
  if (!/^application\/pkcs7-mime\b/.test(type) || !/smime-type=certs-only/.test(type)) return { ok: false, why: `content-type ${type}` };
  const der = Buffer.from(fs.readFileSync(file, 'ascii').replace(/\s+/g, ''), 'base64');
  if (der[0] !== 0x30 || !der.includes(Buffer.from(`urn:dev:trellis:${id}`))) return { ok: false, why: 'answer is not a CMS naming the device' };
  return { ok: true, why: '' };
}

runMain(main);

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
    curl: 'the enrolling devices (Debian: apt-get install curl)',
  });
  const bin = path.join(root, 'bin', 'trellis.js');
  if (!fs.existsSync(path.join(root, 'dist', 'cmd', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const tmp = benchTempDir('enroll', cfg.keep);
  log(`temp dir ${tmp}${cfg.keep ? ' (kept)' : ''}`);
  const busyBefore = await machineBusy(1000);
  const build = await buildInfo(root, path.join(root, 'dist'));

  const data = path.join(tmp, 'data');
  const env = { ...process.env, TRELLIS_PASSPHRASE: 'bench-passphrase-not-secret' };
  delete env.TRELLIS_ACCESS_LOG;
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
  const profiler = cpuProfiler(cfg.cpuProf);
  const serverLog = path.join(tmp, 'serve.log');
  profiler.start();
  const server = startChild(process.execPath, [...profiler.nodeArgs, bin, 'serve', '--data', data, '--port', String(port), '--tls', '--workers', String(cfg.workers)], { env, cwd: tmp, logFile: serverLog });
  await waitReady(async () => (await httpsStatus(port, rootPem, '/healthz')) === 200, { child: server, what: `trellis serve --tls (log: ${serverLog})` });
  log(`trellis: serving on https://127.0.0.1:${port} (pid ${server.pid}, ${cfg.workers} workers)`);

  // ---- baseline: issue_http with wrk, as bench/issue.mjs (shorter), same server ----
  const script = issueWrkScript(path.join(tmp, 'issue.lua'), token, baselineCsrs);
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

  // ---- enrollment: curl, each device once ----
  const nClients = Math.min(cfg.clients, cfg.devices);
  const csrDir = path.join(tmp, 'csr');
  const outDir = path.join(tmp, 'answers');
  fs.mkdirSync(csrDir);
  fs.mkdirSync(outDir);
  for (const j of jobs) fs.writeFileSync(path.join(csrDir, `${j.id}.b64`), j.csr);
  const rootFile = path.join(tmp, 'root.pem');
  fs.writeFileSync(rootFile, rootPem);
  const perClient = Math.max(1, Math.round(cfg.concurrency / nClients));
  const curls = Array.from({ length: nClients }, (_, k) => {
    const conf = path.join(tmp, `enroll-${k}.curl`);
    fs.writeFileSync(conf, curlConfig({ port, rootFile, csrDir, outDir, jobs: jobs.filter((_, i) => i % nClients === k) }), { mode: 0o600 });
    return { conf, out: path.join(tmp, `enroll-${k}.out`), err: path.join(tmp, `enroll-${k}.err`) };
  });
  log(`enrolling ${cfg.devices} devices: ${nClients} curl process(es), ${cfg.concurrency} in flight, a new TLS connection each (Connection: close, --no-sessionid)`);
  const m0 = machineTicks();
  const rss = sampleProcess(server.pid, 200);
  const started = performance.now();
  const c0 = reapedChildrenTicks();
  const running = curls.map((c) => startChild(tools.curl, ['--no-progress-meter', '--parallel', '--parallel-immediate', '--parallel-max', String(perClient), '-K', c.conf], { cwd: tmp, logFile: c.out, errFile: c.err }));
  const codes = await Promise.all(running.map((r) => r.exited));
  const wallS = (performance.now() - started) / 1000;
  const mem = rss.stop();
  const m1 = machineTicks();
  const ncpu = os.cpus().length;
  // Ticks of the reaped curl processes over ticks per CPU of the machine in the same window.
  const clientCores = (reapedChildrenTicks() - c0) / Math.max(1, (m1.total - m0.total) / ncpu);
  codes.forEach((code, k) => code !== 0 && fail(`curl (${curls[k].conf}) exited ${code}: ${fs.readFileSync(curls[k].err, 'utf8').slice(0, 300)}`));
  const results = curls.flatMap((c) =>
    fs.readFileSync(c.out, 'utf8').split('\n').filter((l) => /^\d{3} /.test(l)).map((l) => {
      const m = /^(\d{3}) ([\d.]+) (.*)\|(.*)$/.exec(l);
      const file = m?.[4] ?? '';
      const id = path.basename(file, '.b64');
      return { id, status: Number(m?.[1]), ms: 1000 * Number(m?.[2]), file, ...checkAnswer(id, Number(m?.[1]), m?.[3] ?? '', file) };
    }),
  );
  const okCount = results.filter((r) => r.ok).length;
  const rate = okCount / wallS;
  const bad = results.filter((r) => !r.ok);
  if (bad.length) {
    const byStatus = {};
    for (const r of bad) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    fail(`enroll: ${bad.length} of ${results.length} answers were not a 200 with the device's certificate (${Object.entries(byStatus).map(([s, n]) => `HTTP ${s}: ${n}`).join(', ')}; first: ${bad[0].id} HTTP ${bad[0].status} ${bad[0].why})`);
  }
  if (results.length !== cfg.devices || new Set(results.map((r) => r.id)).size !== cfg.devices) fail(`enroll: ${results.length} answers for ${cfg.devices} devices`);
  const lat = results.map((r) => r.ms).sort((a, b) => a - b);

  // ---- openssl samples ----
  const sampleDir = path.join(tmp, 'samples');
  fs.mkdirSync(sampleDir);
  const kept = results.filter((r, i) => r.ok && i % Math.max(1, Math.floor(results.length / Math.max(1, cfg.samples))) === 0).slice(0, cfg.samples);
  let samplesOk = 0;
  await mapLimit(kept, 4, async (r) => {
    const p7 = path.join(sampleDir, `${r.id}.p7`);
    fs.writeFileSync(p7, Buffer.from(fs.readFileSync(r.file, 'ascii').replace(/\s+/g, ''), 'base64'));
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

  const profiles = profiler.profiles(warn);

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
  console.log(`EST enrollment: ${cfg.devices} devices, each once, simpleenroll with HTTP Basic, a new TLS connection per enrollment, ${nClients} curl process(es), ${cfg.concurrency} in flight; trellis serve --tls --workers ${cfg.workers}, access log on; ${ncpu} CPUs, machine ${(100 * busyBefore).toFixed(0)}% busy before${cfg.cpuProf ? ', server under --cpu-prof' : ''}`);
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
