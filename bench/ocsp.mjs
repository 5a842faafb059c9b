#!/usr/bin/env node
/**
 * `npm run bench:ocsp`: cached OCSP answers per second and latency on
 * loopback, Trellis against `openssl ocsp`, both serving the same 100,000
 * certificate serials (10 % revoked) and loaded by the same client, `ab`
 * (HTTP/1.0, a new connection per request, a fixed count: `openssl ocsp`
 * loops forever on a connection closed without a request, and keep-alive
 * clients make it spin, so `ab` is the one client both survive; see
 * /work/shared/notes/anchors.md §2).
 *
 * Trellis: `trellis init`, the certificates inserted straight into its
 * SQLite database (only issuer, serial and status matter to OCSP), then
 * `trellis serve` with its access log on, as users run it (one JSON line
 * per request to a file; BENCH_ACCESS_LOG=off measures without it, for its
 * cost). The requests are one good
 * serial's nonce-less SHA-1 CertID, as GET /ocsp/{base64} and as POST
 * /ocsp, so they are answered from the pre-signed cache.
 *
 * Baseline: `openssl ocsp -index index.txt -port P -rsigner resp.pem -rkey
 * resp.key -CA ca.pem` over the same serials, with its own P-256 CA and
 * delegated P-256 responder (Trellis's keys are encrypted at rest and stay
 * there); it signs every answer. It binds every interface, so it runs in a
 * private network namespace (`unshare -n`) with `ab` inside the same
 * namespace, and a fresh process serves each run. Process counts are equal:
 * for `serve --workers N` it runs as `openssl ocsp -multi N` (N processes
 * answering; one process without -multi).
 *
 * Rows: GET and POST with a new connection per request (`ab`), and the
 * same with `ab -k` against both servers: the same load generator with the
 * same flags, where Trellis keeps the connection open and `openssl ocsp`
 * closes it after every answer (it does not do keep-alive), so ab opens a
 * new one. Trellis is measured with each `serve --workers` count of
 * BENCH_WORKERS. Extra Trellis rows: POST with a nonce (signed live every
 * time), and a first-touch pass over BENCH_COLD distinct serials (store
 * lookup + signature per request). The node:http floor rows (GET, new
 * connection and ab -k) are bare node:http in as many cluster workers,
 * answering a fixed body of the same length with the same header list:
 * what Node itself costs per request. With several workers, a line gives
 * each process's share of the CPU in the new-connection GET phase (the
 * primary's should be ~0, the workers' even). Every response kind is checked once with
 * `openssl ocsp -respin`. A comparison line per pair of rows says whether it
 * meets the goal (≥ 2× openssl's req/s, Trellis p99 < 5 ms). The table has
 * p50 and p99 per row, and the server's CPU per request (user + system of
 * every server process over the phase's runs, clock ticks of 10 ms: a figure
 * that other load on the machine changes less than req/s).
 *
 * Environment: BENCH_CERTS (100000), BENCH_REQUESTS (per ab run, 20000),
 * BENCH_CONCURRENCY (8), BENCH_RUNS (3; the median is reported),
 * BENCH_WORKERS (trellis serve --workers counts, comma-separated, "1,2,2/rr";
 * "/rr" sets NODE_CLUSTER_SCHED_POLICY=rr for that run: the primary accepts
 * and hands connections over, Node's default that serve no longer uses),
 * BENCH_COLD (5000; 0 skips), BENCH_ACCESS_LOG (on; off sets
 * TRELLIS_ACCESS_LOG=off), BENCH_KEEP=1 (keep the temp dir), BENCH_DIST (the
 * compiled Trellis to run, default dist/ of this checkout: A/B against
 * another build, e.g. BENCH_DIST=/tmp/base/dist; its parent directory is
 * where that build finds prisma/, ca-profiles/ and src/console/).
 * A shortened run: BENCH_CERTS=2000 BENCH_REQUESTS=2000 BENCH_RUNS=1 BENCH_COLD=0 BENCH_WORKERS=1.
 *
 * Last lines, for the first entry of BENCH_WORKERS (N processes of each
 * server; the line above them says N and both p99s), cached GET:
 *   RESULT ocsp_get_new_connection_1_process <req/s> req/s baseline <openssl req/s> ratio <x>
 *     (the earlier name, kept: the same figures as ocsp_new_connection; "_N_workers" when N > 1)
 *   RESULT ocsp_keepalive <req/s> req/s baseline <openssl req/s> ratio <x>
 *     (ab -k: Trellis keeps the connection, openssl ocsp closes it after each answer)
 *   RESULT ocsp_new_connection <req/s> req/s baseline <openssl req/s> ratio <x>
 *     (ab without -k: a new connection per request for both)
 * Exit code 1 when a response was wrong (non-200, failed ab requests other
 * than openssl's ±1-byte signature lengths, a response that does not verify).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInfo, childPids, envInt, freePort, benchTempDir, machineBusy, processCpuTicks, reporter, requireTools, run, runMain, runOk, sampleProcess, startChild, treeUsage, waitReady, which } from './lib/harness.mjs';
import { insertCertificates as insertRows, serials, splitRequest } from './lib/ocsp-fixtures.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const cfg = {
  certs: envInt('BENCH_CERTS', 100_000, 100),
  requests: envInt('BENCH_REQUESTS', 20_000, 100),
  concurrency: envInt('BENCH_CONCURRENCY', 8),
  runs: envInt('BENCH_RUNS', 3),
  // "N" runs `serve --workers N` as shipped (workers accept connections
  // themselves, SCHED_NONE); "N/rr" the same with NODE_CLUSTER_SCHED_POLICY=rr
  // (the primary accepts every connection and hands it to a worker).
  workers: (process.env.BENCH_WORKERS ?? '1,2,2/rr').split(',').map((w) => {
    const m = /^(\d+)(\/rr)?$/.exec(w.trim());
    const n = Number(m?.[1]);
    if (!m || n < 1 || n > 64 || (m[2] && n === 1)) throw new Error(`BENCH_WORKERS: expected worker counts like 1,2,2/rr, got ${process.env.BENCH_WORKERS}`);
    return { n, roundRobin: !!m[2] };
  }),
  cold: envInt('BENCH_COLD', 5_000, 0),
  accessLog: (process.env.BENCH_ACCESS_LOG ?? 'on') !== 'off',
  keep: process.env.BENCH_KEEP === '1',
  dist: path.resolve(process.env.BENCH_DIST ?? path.join(root, 'dist')),
};
const revokedShare = 0.1;
const passphrase = 'bench-passphrase-not-secret';
const { failures, fail, warn, log } = reporter();
const tmp = benchTempDir('ocsp', cfg.keep);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const fmtMs = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');

// ---- certificates -----------------------------------------------------------

const ymd = (d) => d.toISOString().slice(2, 19).replace(/[-T:]/g, '') + 'Z'; // index.txt: YYMMDDHHMMSSZ

// The rows get the CRL shard the measured build computes (insertRows loads <its root>/dist/ca/serial.js).
const insertCertificates = (dataDir, list) => insertRows(path.dirname(cfg.dist), dataDir, list);

function writeIndex(file, list, expiry, revokedAt) {
  const lines = list.map((c) => (c.revoked ? `R\t${ymd(expiry)}\t${ymd(revokedAt)},keyCompromise\t${c.serialHex.toUpperCase()}\tunknown\t/CN=bench\n` : `V\t${ymd(expiry)}\t\t${c.serialHex.toUpperCase()}\tunknown\t/CN=bench\n`));
  fs.writeFileSync(file, lines.join(''));
  fs.writeFileSync(`${file}.attr`, 'unique_subject = no\n');
}

// ---- ab ---------------------------------------------------------------------

function abArgs({ url, body, keepAlive, csv, n }) {
  return ['-q', '-n', String(n ?? cfg.requests), '-c', String(cfg.concurrency), ...(keepAlive ? ['-k'] : []), '-e', csv, ...(body ? ['-p', body, '-T', 'application/ocsp-request'] : []), url];
}

/** ab's summary and its percentile CSV (milliseconds with µs resolution). */
function parseAb(text, csvFile, { lengthVaries }) {
  const num = (re) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : NaN;
  };
  const pct = {};
  if (fs.existsSync(csvFile)) {
    for (const line of fs.readFileSync(csvFile, 'utf8').split('\n').slice(1)) {
      const [p, ms] = line.split(',');
      if (p) pct[Number(p)] = Number(ms);
    }
  }
  const r = {
    rps: num(/Requests per second:\s+([\d.]+)/),
    complete: num(/Complete requests:\s+(\d+)/),
    failed: num(/Failed requests:\s+(\d+)/),
    lengthFailed: num(/Length: (\d+)/) || 0,
    non2xx: num(/Non-2xx responses:\s+(\d+)/) || 0,
    docLength: num(/Document Length:\s+(\d+)/),
    p50: pct[50],
    p99: pct[99],
    raw: text,
  };
  // ECDSA signatures vary by a byte or two: ab counts those as "Length" failures. Anything else is a real failure.
  r.bad = r.non2xx + (r.failed || 0) - (lengthVaries ? r.lengthFailed : 0);
  if (!Number.isFinite(r.rps) || !(r.complete > 0)) r.bad = Math.max(r.bad, 1);
  return r;
}

// ---- verification -------------------------------------------------------------

async function checkResponse(tools, der, { issuer, rootCa, serialHex, expect: status, label }) {
  const f = path.join(tmp, `check-${label.replace(/\W+/g, '-')}.der`);
  fs.writeFileSync(f, der);
  const r = await run(tools.openssl, ['ocsp', '-respin', f, '-issuer', issuer, '-CAfile', rootCa, '-no_nonce', '-serial', `0x${serialHex}`]);
  const out = r.stdout + r.stderr;
  if (!/Response verify OK/.test(out)) fail(`${label}: openssl does not verify the response: ${out.trim().slice(0, 300)}`);
  else if (!new RegExp(`0x${serialHex}: ${status}`, 'i').test(out)) fail(`${label}: expected ${status}, openssl says: ${out.trim().slice(0, 300)}`);
}

function request(url, { method = 'GET', body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...headers, ...(body ? { 'content-length': body.length } : {}) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// ---- Trellis -------------------------------------------------------------------

/** `trellis init`, the certificates, and the request files: once for every worker count. */
async function setupTrellis(tools, list, good, revoked) {
  // dist/cmd/main.js runs itself when it is the entry point (bin/trellis.js would always load this checkout's dist/).
  const bin = path.join(cfg.dist, 'cmd', 'main.js');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` first (or set BENCH_DIST)`);
  const dir = path.join(tmp, 'trellis');
  const data = path.join(dir, 'data');
  fs.mkdirSync(dir, { recursive: true });
  const env = { ...process.env, TRELLIS_PASSPHRASE: passphrase };
  // The access log is on unless BENCH_ACCESS_LOG=off: its cost belongs in the figures.
  if (cfg.accessLog) delete env.TRELLIS_ACCESS_LOG;
  else env.TRELLIS_ACCESS_LOG = 'off';
  delete env.NODE_OPTIONS;
  const cli = (...args) => runOk(process.execPath, [bin, ...args, '--data', data], { env, cwd: dir });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  log('trellis: init');
  await cli('init', '--yes', '--base-url', base);
  const issuing = path.join(dir, 'issuing.pem');
  const rootCa = path.join(dir, 'root.pem');
  fs.writeFileSync(issuing, (await cli('ca', 'cert')).stdout);
  fs.writeFileSync(rootCa, (await cli('ca', 'cert', '--root')).stdout);
  log(`trellis: inserting ${list.length.toLocaleString('en-US')} certificates`);
  const t0 = performance.now();
  await insertCertificates(data, list);
  log(`trellis: inserted in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const reqFor = async (serialHex, name, nonce = false) => {
    const f = path.join(dir, `${name}.der`);
    await runOk(tools.openssl, ['ocsp', '-issuer', issuing, '-serial', `0x${serialHex}`, ...(nonce ? [] : ['-no_nonce']), '-reqout', f]);
    return f;
  };
  const goodReq = await reqFor(good, 'good-req');
  const revokedReq = await reqFor(revoked, 'revoked-req');
  const nonceReq = await reqFor(good, 'nonce-req', true);
  return { bin, dir, data, env, port, base, issuing, rootCa, goodReq, revokedReq, nonceReq, good, revoked };
}

/** One `trellis serve --workers N` over the set-up instance: checks, ab phases, RSS; the first-touch pass when asked. */
async function benchTrellis(tools, list, t, { n: workers, roundRobin }, { cold: withCold }) {
  const { bin, dir, data, port, base, issuing, rootCa, goodReq, revokedReq, nonceReq, good, revoked } = t;
  const env = { ...t.env, ...(roundRobin ? { NODE_CLUSTER_SCHED_POLICY: 'rr' } : {}) };
  if (!roundRobin) delete env.NODE_CLUSTER_SCHED_POLICY;
  const getPath = (f) => `/ocsp/${encodeURIComponent(fs.readFileSync(f).toString('base64'))}`;
  const serverLog = path.join(dir, `serve-${workers}${roundRobin ? '-rr' : ''}.log`);
  const server = startChild(process.execPath, [bin, 'serve', '--data', data, '--port', String(port), ...(workers > 1 ? ['--workers', String(workers)] : [])], { env, cwd: dir, logFile: serverLog });
  await waitReady(async () => (await fetch(`${base}/healthz`)).status === 200, { child: server, what: `trellis serve (log: ${serverLog})` });
  // A cluster answers /healthz as soon as one worker listens: wait for all of them.
  await waitReady(async () => (fs.readFileSync(serverLog, 'utf8').match(/"msg":"serving"/g) ?? []).length >= workers, { child: server, what: `${workers} trellis workers (log: ${serverLog})` });
  log(`trellis: serving on ${base} (pid ${server.pid}, ${workers} worker(s)${roundRobin ? ', NODE_CLUSTER_SCHED_POLICY=rr' : ''})`);
  const rssIdle = sampleProcess(server.pid).stop().lastKiB;

  // Every response kind, checked by openssl once.
  const check = async (label, res, serialHex, status) => {
    if (res.status !== 200 || res.headers['content-type'] !== 'application/ocsp-response') fail(`${label}: HTTP ${res.status} ${res.headers['content-type']}`);
    await checkResponse(tools, res.body, { issuer: issuing, rootCa, serialHex, expect: status, label });
  };
  await check('trellis GET good', await request(`${base}${getPath(goodReq)}`), good, 'good');
  await check('trellis POST revoked', await request(`${base}/ocsp`, { method: 'POST', body: fs.readFileSync(revokedReq), headers: { 'content-type': 'application/ocsp-request' } }), revoked, 'revoked');
  const getRes = await request(`${base}${getPath(goodReq)}`);
  if (!/max-age=\d+, public, no-transform, must-revalidate/.test(getRes.headers['cache-control'] ?? '')) fail(`trellis GET: Cache-Control ${getRes.headers['cache-control']}`);

  // Each worker signs its own pre-signed response: ECDSA signatures differ in length by a byte or two between them.
  const many = workers > 1;
  const phases = [
    { name: 'GET', url: `${base}${getPath(goodReq)}`, lengthVaries: many },
    { name: 'POST', url: `${base}/ocsp`, body: goodReq, lengthVaries: many },
    { name: 'GET ab -k', url: `${base}${getPath(goodReq)}`, keepAlive: true, lengthVaries: many },
    { name: 'POST ab -k', url: `${base}/ocsp`, body: goodReq, keepAlive: true, lengthVaries: many },
    { name: 'POST nonce (signed live)', url: `${base}/ocsp`, body: nonceReq, extra: true, lengthVaries: true },
  ];
  log('trellis: warm-up');
  // One request through the other routes first (any status), as in real serving.
  await request(`${base}/acme/directory`);
  for (const p of phases) await run(tools.ab, abArgs({ ...p, csv: path.join(dir, 'warm.csv'), n: 3000 }));
  const results = {};
  const rss = sampleProcess(server.pid, 100);
  for (const p of phases) {
    const runs = [];
    const cpu0 = treeUsage(server.pid).cpuTicks;
    const split0 = processTicks(server.pid);
    for (let i = 0; i < cfg.runs; i++) {
      const csv = path.join(dir, `ab-${p.name.replace(/\W+/g, '-')}-${i}.csv`);
      const r = await run(tools.ab, abArgs({ ...p, csv }));
      const a = parseAb(r.stdout + r.stderr, csv, { lengthVaries: !!p.lengthVaries });
      if (a.bad) fail(`trellis ${p.name} run ${i + 1}: ${a.bad} bad responses (non-2xx ${a.non2xx}, failed ${a.failed})\n${a.raw.slice(-1200)}`);
      runs.push(a);
    }
    // Clock ticks are 10 ms (USER_HZ 100 on Linux).
    const cpuUsPerReq = ((treeUsage(server.pid).cpuTicks - cpu0) * 10_000) / runs.reduce((n, r) => n + r.complete, 0);
    results[p.name] = { runs, extra: !!p.extra, cpuUsPerReq, split: ticksSince(split0) };
  }
  const mem = rss.stop();

  let cold = null;
  if (withCold && cfg.cold > 0) cold = await coldPass(tools, base, issuing, list, server);
  const stats = { rssIdleKiB: rssIdle, peakKiB: mem.peakKiB, serverCores: mem.serverCores };
  const code = await server.stop(10_000);
  if (code !== 0) warn(`trellis serve exited with ${code} (log: ${serverLog})`);
  return { results, stats, cold };
}

/** CPU clock ticks (user + system) of a process and each of its children, by pid. */
function processTicks(pid) {
  const out = new Map();
  for (const p of [pid, ...childPids(pid)]) {
    const ticks = processCpuTicks(p);
    if (!Number.isNaN(ticks)) out.set(p, ticks);
  }
  return out;
}

/** The ticks each process used since `before` (processTicks), the first one (the primary) first. */
function ticksSince(before) {
  return [...before].map(([p, t]) => (processTicks(p).get(p) ?? t) - t);
}

/**
 * The node floor: bare node:http in the same number of cluster workers
 * (the kernel spreads connections, as serve does), answering every request
 * with a fixed body of the OCSP answer's length and the same header list,
 * under the same ab phases: what Node itself costs per request, before any
 * Trellis code.
 */
async function benchFloor(tools, workers, bodyLength) {
  const script = path.join(tmp, 'floor.mjs');
  fs.writeFileSync(
    script,
    `import cluster from 'node:cluster';
import http from 'node:http';
const [port, workers, length] = process.argv.slice(2).map(Number);
if (cluster.isPrimary && workers > 1) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const body = Buffer.alloc(length, 0x30).toString('latin1');
  let id = 0;
  http.createServer((req, res) => {
    res.writeHead(200, ['X-Request-Id', (++id).toString(16).padStart(16, '0'), 'content-type', 'application/ocsp-response', 'content-length', length, 'cache-control', 'max-age=86000, public, no-transform, must-revalidate', 'last-modified', 'Mon, 07 Dec 2026 01:00:00 GMT', 'expires', 'Tue, 08 Dec 2026 01:00:00 GMT', 'etag', '"0123456789abcdef0123456789abcdef"']);
    res.end(body, 'latin1');
  }).listen(port, '127.0.0.1');
}
`,
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/ocsp/floor`;
  const server = startChild(process.execPath, [script, String(port), String(workers), String(bodyLength)]);
  await waitReady(async () => (await fetch(url)).status === 200, { child: server, what: 'node:http floor' });
  const results = {};
  for (const p of [{ name: 'GET', url }, { name: 'GET ab -k', url, keepAlive: true }]) {
    await run(tools.ab, abArgs({ ...p, csv: path.join(tmp, 'floor-warm.csv'), n: 3000 }));
    const runs = [];
    const cpu0 = treeUsage(server.pid).cpuTicks;
    for (let i = 0; i < cfg.runs; i++) {
      const csv = path.join(tmp, `floor-${p.name.replace(/\W+/g, '-')}-${i}.csv`);
      const r = await run(tools.ab, abArgs({ ...p, csv }));
      const a = parseAb(r.stdout + r.stderr, csv, { lengthVaries: false });
      if (a.bad) fail(`node:http floor ${p.name} run ${i + 1}: ${a.bad} bad responses`);
      runs.push(a);
    }
    results[p.name] = { runs, cpuUsPerReq: ((treeUsage(server.pid).cpuTicks - cpu0) * 10_000) / runs.reduce((n, r) => n + r.complete, 0) };
  }
  const peakKiB = treeUsage(server.pid).rssKiB;
  await server.stop(5000);
  return { results, peakKiB };
}

/**
 * First touch of `cfg.cold` distinct serials over GET (8 keep-alive
 * connections from this process): each is a cache miss, so a store lookup
 * and a signature. A second pass over the same serials is all hits.
 */
async function coldPass(tools, base, issuing, list, server) {
  log(`trellis: first-touch pass over ${cfg.cold.toLocaleString('en-US')} distinct serials`);
  // Build the requests with openssl once (-reqout with many serials is one request; we need one each), batched 200 per call.
  const picked = list.slice(0, cfg.cold);
  const paths = [];
  const batch = 200;
  for (let i = 0; i < picked.length; i += batch) {
    const chunk = picked.slice(i, i + batch);
    const f = path.join(tmp, 'cold.der');
    await runOk(tools.openssl, ['ocsp', '-issuer', issuing, '-no_nonce', ...chunk.flatMap((c) => ['-serial', `0x${c.serialHex}`]), '-reqout', f]);
    paths.push(...splitRequest(fs.readFileSync(f)).map((der) => `/ocsp/${encodeURIComponent(der.toString('base64'))}`));
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: cfg.concurrency });
  const pass = async () => {
    let next = 0;
    let bad = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: cfg.concurrency }, async () => {
        while (next < paths.length) {
          const p = paths[next++];
          const r = await new Promise((resolve, reject) => {
            http.get(`${base}${p}`, { agent }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode));
            }).on('error', reject);
          });
          if (r !== 200) bad++;
        }
      }),
    );
    return { rps: paths.length / ((performance.now() - t0) / 1000), bad };
  };
  const rss = sampleProcess(server.pid, 100);
  const first = await pass();
  const second = await pass();
  const mem = rss.stop();
  agent.destroy();
  if (first.bad + second.bad) fail(`trellis first-touch pass: ${first.bad + second.bad} non-200 answers`);
  return { first: first.rps, second: second.rps, peakKiB: mem.peakKiB, n: paths.length };
}

// ---- openssl ocsp ---------------------------------------------------------------

/**
 * `openssl ocsp` over the same serials, with `processes` responder
 * processes (`-multi N` when N > 1): the same ab phases as Trellis.
 */
async function benchOpenssl(tools, list, good, revoked, processCounts) {
  const dir = path.join(tmp, 'openssl');
  fs.mkdirSync(dir, { recursive: true });
  const f = (n) => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await runOk(tools.openssl, ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-subj', '/O=Bench/CN=Bench openssl CA', '-days', '30', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', f('ca.pem')]);
  fs.writeFileSync(f('resp.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\nnoCheck=ignored\n');
  await runOk(tools.openssl, ['req', '-new', ...ec, '-keyout', f('resp.key'), '-subj', '/CN=Bench openssl OCSP responder', '-out', f('resp.csr')]);
  await runOk(tools.openssl, ['x509', '-req', '-in', f('resp.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-set_serial', '0x1234', '-days', '7', '-extfile', f('resp.ext'), '-out', f('resp.pem')]);
  const now = Date.now();
  writeIndex(f('index.txt'), list, new Date(now + 365 * 86_400_000), new Date(now - 86_400_000));
  await runOk(tools.openssl, ['ocsp', '-issuer', f('ca.pem'), '-serial', `0x${good}`, '-no_nonce', '-reqout', f('good-req.der')]);
  await runOk(tools.openssl, ['ocsp', '-issuer', f('ca.pem'), '-serial', `0x${revoked}`, '-no_nonce', '-reqout', f('revoked-req.der')]);
  const getPath = `/${encodeURIComponent(fs.readFileSync(f('good-req.der')).toString('base64'))}`;

  /**
   * One fresh responder in a fresh network namespace: bring up lo, start it,
   * wait until a real OCSP request is answered (never a bare connect, which
   * would make it spin), run the client, record peak RSS, stop it.
   */
  const inNamespace = async (name, clientCmd, processes = 1) => {
    const port = 8000 + Math.floor(Math.random() * 1000);
    const sh = f(`${name}.sh`);
    fs.writeFileSync(
      sh,
      `set -u
ip link set lo up
cd ${JSON.stringify(dir)}
timeout 300 ${tools.openssl} ocsp -index index.txt -port ${port} -rsigner resp.pem -rkey resp.key -CA ca.pem -nmin 60${processes > 1 ? ` -multi ${processes}` : ''} > ${name}-server.log 2>&1 &
P=$!
# $P is timeout; openssl is its child, and with -multi the responders are openssl's children.
tree() { echo $1; for c in $(cat /proc/$1/task/*/children 2>/dev/null); do tree $c; done; }
# SIGKILL the whole tree: a TERM reaches only timeout and the -multi parent, whose responders then spin on, unreaped, for good.
trap 'kill -9 $(tree $P) 2>/dev/null' EXIT INT TERM
ok=0
for i in $(seq 1 100); do
  if ${tools.openssl} ocsp -reqin good-req.der -url http://127.0.0.1:${port}/ -respout ${name}-probe.der -noverify -no_nonce >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.05
done
[ $ok = 1 ] || { echo "openssl ocsp did not answer" >&2; exit 3; }
${clientCmd(`http://127.0.0.1:${port}`)}
for c in $(tree $P); do grep VmHWM /proc/$c/status; done | awk '{s += $2} END {print "HWM_KIB", s}'
for c in $(tree $P); do cut -d' ' -f14,15 /proc/$c/stat; done | awk '{s += $1 + $2} END {print "CPU_TICKS", s}'
`,
    );
    const r = await run(tools.unshare, ['-n', 'sh', sh]);
    if (r.code !== 0) throw new Error(`openssl ${name} in a network namespace failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r;
  };

  // Correctness once: good and revoked, verified against its CA.
  await inNamespace('check', (url) => `${tools.openssl} ocsp -reqin revoked-req.der -url ${url}/ -respout revoked-resp.der -noverify -no_nonce >/dev/null 2>&1 && ${tools.curl ? `${tools.curl} -s -o get-resp.der '${url}${getPath}'` : 'true'}`);
  await checkResponse(tools, fs.readFileSync(f('check-probe.der')), { issuer: f('ca.pem'), rootCa: f('ca.pem'), serialHex: good, expect: 'good', label: 'openssl POST good' });
  await checkResponse(tools, fs.readFileSync(f('revoked-resp.der')), { issuer: f('ca.pem'), rootCa: f('ca.pem'), serialHex: revoked, expect: 'revoked', label: 'openssl POST revoked' });
  if (tools.curl) await checkResponse(tools, fs.readFileSync(f('get-resp.der')), { issuer: f('ca.pem'), rootCa: f('ca.pem'), serialHex: good, expect: 'good', label: 'openssl GET good' });

  const byCount = {};
  for (const processes of processCounts) byCount[processes] = await opensslPhases(processes);
  return byCount;

  async function opensslPhases(processes) {
    const results = {};
    let peakKiB = 0;
    // ab -k: ab asks for keep-alive; openssl ocsp answers HTTP/1.0 and closes
    // the connection after every response, so each request still pays for one.
    for (const p of [
      { name: 'GET', path: getPath },
      { name: 'POST', path: '/', body: 'good-req.der' },
      { name: 'GET ab -k', path: getPath, keepAlive: true },
      { name: 'POST ab -k', path: '/', body: 'good-req.der', keepAlive: true },
    ]) {
      const runs = [];
      let ticks = 0;
      for (let i = 0; i < cfg.runs; i++) {
        const tag = `${p.name.replace(/\W+/g, '-')}-${processes}-${i}`;
        const csv = f(`ab-${tag}.csv`);
        const r = await inNamespace(tag, (url) => `${tools.ab} ${abArgs({ url: `${url}${p.path}`, body: p.body ? f(p.body) : undefined, keepAlive: p.keepAlive, csv }).map((a) => `'${a}'`).join(' ')} 2>&1 || true`, processes);
        const hwm = /HWM_KIB (\d+)/.exec(r.stdout);
        if (hwm) peakKiB = Math.max(peakKiB, Number(hwm[1]));
        ticks += Number(/CPU_TICKS (\d+)/.exec(r.stdout)?.[1] ?? NaN);
        const a = parseAb(r.stdout, csv, { lengthVaries: true });
        if (a.bad) fail(`openssl ${p.name} (${processes} processes) run ${i + 1}: ${a.bad} bad responses\n${a.raw.slice(-1200)}`);
        runs.push(a);
      }
      // The responders' CPU includes the readiness probe's one request per run: negligible against ab's count.
      results[p.name] = { runs, cpuUsPerReq: (ticks * 10_000) / runs.reduce((n, r) => n + r.complete, 0) };
    }
    return { results, peakKiB };
  }
}

// ---- main -----------------------------------------------------------------------

function row(server, mode, r, rssMiB) {
  const rps = r.runs.map((x) => x.rps);
  return [server, mode, fmtInt(median(rps)), `${fmtInt(Math.min(...rps))}–${fmtInt(Math.max(...rps))}`, fmtMs(median(r.runs.map((x) => x.p50))), fmtMs(median(r.runs.map((x) => x.p99))), fmtInt(r.cpuUsPerReq), rssMiB];
}

async function main() {
  const tools = requireTools({
    ab: 'ApacheBench, the load generator (Debian: apt-get install apache2-utils)',
    openssl: 'the baseline responder and the verifier (Debian: apt-get install openssl)',
    unshare: 'private network namespace for openssl ocsp (Debian: util-linux)',
    ip: 'brings up lo in the namespace (Debian: apt-get install iproute2)',
  });
  tools.curl = which('curl'); // optional: openssl's GET answer is checked with it
  log(`temp dir ${tmp}${cfg.keep ? ' (kept)' : ''}; ${await buildInfo(root, cfg.dist)}`);
  const busyBefore = await machineBusy(1000);

  const list = serials(cfg.certs).map((serialHex, i) => ({ serialHex, revoked: i % Math.round(1 / revokedShare) === 0 }));
  const good = list.find((c, i) => !c.revoked && i > list.length / 2).serialHex;
  const revoked = list.find((c, i) => c.revoked && i > list.length / 2).serialHex;

  const setup = await setupTrellis(tools, list, good, revoked);
  const trellis = [];
  for (const [i, w] of cfg.workers.entries()) trellis.push({ workers: w.n, roundRobin: w.roundRobin, ...(await benchTrellis(tools, list, setup, w, { cold: i === 0 })) });
  // Equal process counts: openssl ocsp -multi N for every --workers N measured.
  const openssl = await benchOpenssl(tools, list, good, revoked, [...new Set(cfg.workers.map((w) => w.n))]);
  const docLength = trellis[0].results.GET.runs[0].docLength;
  const floors = {};
  for (const n of new Set(cfg.workers.map((w) => w.n))) floors[n] = await benchFloor(tools, n, docLength);

  console.log('');
  console.log(
    `OCSP on loopback: ${fmtInt(cfg.certs)} certificates (${revokedShare * 100}% revoked), ab -n ${cfg.requests} -c ${cfg.concurrency} (HTTP/1.0; a connection per request, or ab -k), median of ${cfg.runs} runs, ${os.cpus().length} CPUs shared by server and ab, machine ${(100 * busyBefore).toFixed(0)}% busy before, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; Trellis access log ${cfg.accessLog ? 'on' : 'off (BENCH_ACCESS_LOG=off)'}`,
  );
  if (busyBefore > 0.2) warn(`CPU was ${(100 * busyBefore).toFixed(0)}% busy before the run: other work on this machine skews the figures`);
  const mib = (kib) => `${(kib / 1024).toFixed(0)}`;
  const label = (t) => (t.workers === 1 ? 'trellis' : `trellis --workers ${t.workers}${t.roundRobin ? ' round-robin' : ''}`);
  const opensslLabel = (n) => (n === 1 ? 'openssl ocsp' : `openssl ocsp -multi ${n}`);
  const rows = [
    ['server', 'request', 'req/s', 'min–max', 'p50 ms', 'p99 ms', 'CPU µs/req', 'peak RSS MiB'],
    ...trellis.flatMap((t) => Object.entries(t.results).map(([mode, r]) => row(label(t), mode, r, mib(t.stats.peakKiB)))),
    ...Object.entries(openssl).flatMap(([n, o]) => Object.entries(o.results).map(([mode, r]) => row(opensslLabel(Number(n)), mode, r, mib(o.peakKiB)))),
    ...Object.entries(floors).flatMap(([n, f]) => Object.entries(f.results).map(([mode, r]) => row(`node:http floor${Number(n) > 1 ? ` ×${n}` : ''}`, mode, r, mib(f.peakKiB)))),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log('  ' + r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
  console.log('  (ab -k against openssl ocsp: it answers HTTP/1.0 and closes every connection, so ab opens a new one per request; against trellis the connections stay open)');
  console.log('  (CPU µs/req: user + system time of every server process over the phase, clock ticks of 10 ms; peak RSS: all server processes)');
  console.log('  (node:http floor: bare node:http in as many cluster workers, a fixed body of the same length and header list: Node\'s own cost per request; RSS at the end)');
  for (const t of trellis) {
    if (t.workers < 2) continue;
    const s = t.results.GET.split;
    const sum = s.reduce((a, b) => a + b, 0) || 1;
    console.log(`${label(t)} GET, new connection: CPU by process, primary first: ${s.map((x) => `${((100 * x) / sum).toFixed(0)} %`).join(' / ')}`);
  }
  for (const t of trellis) {
    console.log(`${label(t)} RSS: ${mib(t.stats.rssIdleKiB)} MiB after start with ${fmtInt(cfg.certs)} certificates in the store, peak ${mib(t.stats.peakKiB)} MiB under load (all processes; server used ${t.stats.serverCores.toFixed(2)} cores)`);
  }
  const cold = trellis[0].cold;
  if (cold) {
    console.log(`trellis first touch of ${fmtInt(cold.n)} distinct serials (store lookup + signature each, 8 keep-alive connections): ${fmtInt(cold.first)} req/s; the same serials again (cached): ${fmtInt(cold.second)} req/s; peak RSS ${mib(cold.peakKiB)} MiB`);
  }
  // The goals of issue 13, row by row against openssl ocsp with as many processes:
  // ≥ 2.5× its req/s with ab -k, ≥ 1.0× with a new connection per request; Trellis p99 < 5 ms.
  const rps = (r) => median(r.runs.map((x) => x.rps));
  const p99 = (r) => median(r.runs.map((x) => x.p99));
  for (const t of trellis) {
    const o = openssl[t.workers].results;
    for (const mode of ['GET', 'POST', 'GET ab -k', 'POST ab -k']) {
      const ratio = rps(t.results[mode]) / rps(o[mode]);
      const want = mode.endsWith('ab -k') ? 2.5 : 1.0;
      const met = ratio >= want && p99(t.results[mode]) < 5;
      console.log(`goal ${met ? 'MET    ' : 'NOT MET'} (≥ ${want.toFixed(1)}×, p99 < 5 ms): ${label(t)} ${mode} ${fmtInt(rps(t.results[mode]))} req/s = ${ratio.toFixed(2)}× ${opensslLabel(t.workers)} ${mode} (${fmtInt(rps(o[mode]))}), p99 ${fmtMs(p99(t.results[mode]))} ms vs ${fmtMs(p99(o[mode]))} ms`);
    }
  }
  if (failures.length) console.log(`${failures.length} failure(s), see FAIL lines above`);
  const first = trellis[0];
  const o = openssl[first.workers].results;
  const line = (name, mode) => `RESULT ${name} ${rps(first.results[mode]).toFixed(1)} req/s baseline ${rps(o[mode]).toFixed(1)} ratio ${(rps(first.results[mode]) / rps(o[mode])).toFixed(2)}`;
  const oldName = first.workers === 1 ? 'ocsp_get_new_connection_1_process' : `ocsp_get_new_connection_${first.workers}_workers${first.roundRobin ? '_round_robin' : ''}`;
  console.log(`${label(first)} vs ${opensslLabel(first.workers)}, cached GET: p99 ${fmtMs(p99(first.results['GET ab -k']))} ms vs ${fmtMs(p99(o['GET ab -k']))} ms with ab -k, ${fmtMs(p99(first.results.GET))} ms vs ${fmtMs(p99(o.GET))} ms with a new connection each`);
  console.log(line(oldName, 'GET'));
  console.log(line('ocsp_keepalive', 'GET ab -k'));
  console.log(line('ocsp_new_connection', 'GET'));
  return failures.length ? 1 : 0;
}

runMain(main);
