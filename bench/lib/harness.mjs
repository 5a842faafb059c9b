/**
 * Shared pieces for the loopback benchmarks: child processes that die with
 * us, free ports, readiness polls, RSS sampling, and a wrk runner whose Lua
 * script rotates request bodies and counts only the expected status.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// ---- children -------------------------------------------------------------

const children = new Set();

/** Kills every child still running (SIGTERM, then SIGKILL after `graceMs`). */
export async function killAll(graceMs = 2000) {
  const alive = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  for (const c of alive) c.kill('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && alive.some((c) => c.exitCode === null && c.signalCode === null)) await sleep(50);
  for (const c of alive) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

let cleanupInstalled = false;
let interrupted = false;
/** True once SIGINT/SIGTERM/SIGHUP arrived (errors after that are expected). */
export const wasInterrupted = () => interrupted;

/** Installs exit/signal handlers once: children are killed whatever way we leave. */
export function installCleanup(extra = () => {}) {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    extra();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      interrupted = true;
      process.stderr.write(`\nbench: ${sig}, stopping children\n`);
      killAll(500).finally(() => process.exit(130));
    });
  }
}

/**
 * Starts a long-running child. stdout/stderr go to `logFile` (or are
 * discarded); the returned object has `exited` (a promise of the exit code)
 * and `stop()` (SIGTERM, then SIGKILL after `graceMs`).
 */
export function startChild(cmd, args, { env, cwd, logFile, errFile } = {}) {
  const fd = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const errFd = errFile ? fs.openSync(errFile, 'a') : fd;
  const child = spawn(cmd, args, { env: env ?? process.env, cwd, stdio: ['ignore', fd, errFd] });
  for (const f of new Set([fd, errFd])) if (typeof f === 'number') fs.closeSync(f);
  children.add(child);
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? (signal ? 128 : 1));
    });
    child.once('error', (err) => {
      children.delete(child);
      resolve(err);
    });
  });
  return {
    child,
    pid: child.pid,
    exited,
    running: () => child.exitCode === null && child.signalCode === null && children.has(child),
    async stop(graceMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Runs a command to completion; resolves {code, stdout, stderr}; rejects on spawn error. */
export function run(cmd, args, { env, cwd, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: env ?? process.env, cwd, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', (err) => {
      children.delete(child);
      reject(err);
    });
    child.once('close', (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) {
      child.stdin.on('error', () => {}); // EPIPE when the child exits without reading
      child.stdin.end(input);
    }
  });
}

/** Like run() but throws with the command's stderr when it exits non-zero. */
export async function runOk(cmd, args, opts) {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')} exited ${r.code}:\n${r.stderr || r.stdout}`);
  return r;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}

// ---- tools, ports, readiness ---------------------------------------------

/** Absolute path of `name` on PATH, or undefined. */
export function which(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Fails with one clear message listing every missing tool. */
export function requireTools(tools) {
  const found = {};
  const missing = [];
  for (const [name, hint] of Object.entries(tools)) {
    const p = which(name);
    if (p) found[name] = p;
    else missing.push(`  ${name}: ${hint}`);
  }
  if (missing.length) throw new Error(`missing tools:\n${missing.join('\n')}`);
  return found;
}

/** A port that was free a moment ago on 127.0.0.1 (the kernel picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Polls `probe()` (true when ready) every 100 ms until it holds, the child
 * exits, or `timeoutMs` passes.
 */
export async function waitReady(probe, { child, timeoutMs = 30_000, what = 'server' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && !child.running()) throw new Error(`${what} exited before it was ready`);
    try {
      if (await probe()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms`);
    await sleep(100);
  }
}

// ---- memory and CPU ---------------------------------------------------------

/** A file's text, or '' when it cannot be read (a process that has exited, a log not yet written). */
export function readOrEmpty(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The direct children of `pid` (Linux /proc). */
export function childPids(pid) {
  return readOrEmpty(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/).filter(Boolean).map(Number);
}

/** RSS (KiB) and CPU time (clock ticks) of `pid` plus its descendants. */
export function treeUsage(pid) {
  let rssKiB = 0;
  let cpuTicks = 0;
  const stack = [pid];
  const seen = new Set();
  while (stack.length) {
    const p = stack.pop();
    if (seen.has(p)) continue;
    seen.add(p);
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readOrEmpty(`/proc/${p}/status`));
    if (m) rssKiB += Number(m[1]);
    const ticks = processCpuTicks(p);
    if (!Number.isNaN(ticks)) cpuTicks += ticks;
    stack.push(...childPids(p));
  }
  return { rssKiB, cpuTicks };
}

/** CPU clock ticks (user + system) of this process's children that have exited and been reaped. */
export function reapedChildrenTicks() {
  const rest = statFields('self');
  return Number(rest[13]) + Number(rest[14]); // cutime + cstime (fields 16, 17)
}

/** The fields of /proc/<pid>/stat after the command name: [0] is field 3 (state); [] when it cannot be read. */
function statFields(pid) {
  const stat = readOrEmpty(`/proc/${pid}/stat`);
  return stat ? stat.slice(stat.lastIndexOf(')') + 2).split(' ') : [];
}

/** utime + stime of one process (not its children) in clock ticks (USER_HZ, 100 a second on Linux); NaN when it cannot be read. */
export function processCpuTicks(pid) {
  const rest = statFields(pid);
  return rest.length > 12 ? Number(rest[11]) + Number(rest[12]) : NaN; // fields 14 and 15
}

/** Busy and total clock ticks of the whole machine, from /proc/stat. */
export function machineTicks() {
  const f = readOrEmpty('/proc/stat').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  return { busy: total - f[3] - f[4], total };
}

/** Share of the machine's CPU time that was busy during the next `ms` (0..1). */
export async function machineBusy(ms = 1000) {
  const a = machineTicks();
  await sleep(ms);
  const b = machineTicks();
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
}

/**
 * Samples the process tree every `everyMs`. `stop()` returns peak and last
 * RSS (KiB), the CPU the tree used in cores (1 = one core busy all along),
 * and how busy the whole machine was (0..1 of all cores).
 */
export function sampleProcess(pid, everyMs = 200) {
  const ncpu = os.cpus().length;
  let peak = 0;
  let last = 0;
  let samples = 0;
  const t0 = treeUsage(pid);
  const m0 = machineTicks();
  const tick = () => {
    last = treeUsage(pid).rssKiB;
    if (last > 0) samples++;
    if (last > peak) peak = last;
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      const t1 = treeUsage(pid);
      const m1 = machineTicks();
      const elapsedTicksPerCpu = (m1.total - m0.total) / ncpu;
      return {
        peakKiB: peak,
        lastKiB: last,
        samples,
        serverCores: elapsedTicksPerCpu > 0 ? (t1.cpuTicks - t0.cpuTicks) / elapsedTicksPerCpu : NaN,
        machineBusy: m1.total > m0.total ? (m1.busy - m0.busy) / (m1.total - m0.total) : NaN,
      };
    },
  };
}

// ---- CPU profiles ----------------------------------------------------------

/**
 * `node --cpu-prof` for a server under test (cluster workers inherit it, each
 * writes its own file at exit). Off: no arguments and no profiles. The
 * directory is BENCH_PROFILE_DIR or a new temp dir; `profiles()` lists the
 * .cpuprofile files written since `start()`, warning through `warn` when none was.
 */
export function cpuProfiler(on, prefix = 'trellis-bench-prof-') {
  if (!on) return { nodeArgs: [], start() {}, profiles: () => [] };
  const dir = process.env.BENCH_PROFILE_DIR ? path.resolve(process.env.BENCH_PROFILE_DIR) : fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.mkdirSync(dir, { recursive: true });
  let since = Date.now();
  return {
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
    start() {
      since = Date.now();
    },
    profiles(warn) {
      const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(dir, f)).filter((f) => fs.statSync(f).mtimeMs >= since);
      if (!files.length) warn?.(`no .cpuprofile written in ${dir} (did the server exit cleanly?)`);
      return files;
    },
  };
}

// ---- wrk ------------------------------------------------------------------

function luaLong(text) {
  let eq = '=';
  while (text.includes(`]${eq}]`)) eq += '=';
  return `[${eq}[${text}]${eq}]`;
}

function luaString(text) {
  return JSON.stringify(text); // a JSON string literal of ASCII is a valid Lua string literal
}

/**
 * Writes a wrk Lua script that POSTs `bodies` in rotation to `path` with
 * `headers`, counts responses whose status is `expectStatus` and whose body
 * contains `expectBody`, and prints one `BENCHJSON {...}` line from done().
 */
export function writeWrkScript(file, { path: urlPath, headers, bodies, expectStatus, expectBody }) {
  const hdr = Object.entries(headers).map(([k, v]) => `  [${luaString(k)}] = ${luaString(v)},`).join('\n');
  const lua = `-- generated by bench/lib/harness.mjs
local bodies = {
${bodies.map((b) => `  ${luaLong(b)},`).join('\n')}
}
local path = ${luaString(urlPath)}
local headers = {
${hdr}
}
local expect_status = ${Number(expectStatus)}
local expect_body = ${luaString(expectBody ?? '')}

local threads = {}
local nthreads = 0

function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
  table.insert(threads, thread)
end

-- globals so that done() can read them with thread:get()
ok = 0
bad = 0
bad_status = 0
bad_body = ""

local reqs = {}
local i = 0

function init(args)
  for k, b in ipairs(bodies) do
    reqs[k] = wrk.format("POST", path, headers, b)
  end
  i = ((tid or 1) - 1) * 17
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function response(status, hdrs, body)
  if status == expect_status and (expect_body == "" or string.find(body, expect_body, 1, true)) then
    ok = ok + 1
  else
    bad = bad + 1
    if bad_status == 0 then
      bad_status = status
      bad_body = string.sub(body or "", 1, 300)
    end
  end
end

local function jstr(s)
  s = string.gsub(s, '[%c"\\\\]', function(c) return string.format("\\\\u%04x", string.byte(c)) end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local tok, tbad, fstatus, fbody = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    tok = tok + t:get("ok")
    tbad = tbad + t:get("bad")
    if fstatus == 0 and t:get("bad_status") ~= 0 then
      fstatus = t:get("bad_status")
      fbody = t:get("bad_body")
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"duration_us":%d,"requests":%d,"ok":%d,"bad":%d,"first_bad_status":%d,"first_bad_body":%s,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\\n',
    summary.duration, summary.requests, tok, tbad, fstatus, jstr(fbody),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
`;
  fs.writeFileSync(file, lua);
  return file;
}

/** Runs wrk and returns the BENCHJSON summary plus derived rates and the raw output. */
export async function runWrk(wrkPath, { url, script, seconds, connections, threads, timeoutSeconds = 10 }) {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, `--timeout`, `${timeoutSeconds}s`, '--latency', '-s', script, url];
  const r = await run(wrkPath, args);
  const line = r.stdout.split('\n').find((l) => l.startsWith('BENCHJSON '));
  if (r.code !== 0 || !line) throw new Error(`wrk ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  const s = JSON.parse(line.slice('BENCHJSON '.length));
  const secs = s.duration_us / 1e6;
  const socketErrors = s.err_connect + s.err_read + s.err_write + s.err_timeout;
  return { ...s, seconds: secs, okPerSec: s.ok / secs, reqPerSec: s.requests / secs, socketErrors, raw: r.stdout, args };
}

/** An integer from the environment (BENCH_* settings), `def` when unset; anything else below `min` is an error. */
export function envInt(name, def, min = 1) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}: expected an integer >= ${min}, got ${raw}`);
  return n;
}

// ---- reporting ---------------------------------------------------------------

/**
 * Which code a benchmark measures: HEAD, the uncommitted changes under src/,
 * and when `distDir` (the compiled Trellis it runs) was last written.
 */
export async function buildInfo(root, distDir) {
  const head = await run('git', ['-C', root, 'rev-parse', '--short', 'HEAD']).catch(() => ({ code: 1 }));
  const dirty = await run('git', ['-C', root, 'status', '--porcelain', '--', 'src']).catch(() => ({ code: 1 }));
  let newest = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.js')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  if (fs.existsSync(distDir)) walk(distDir); // a missing dist/ is reported by the benchmark itself
  const changed = dirty.code === 0 ? dirty.stdout.split('\n').filter(Boolean).length : NaN;
  return `HEAD ${head.code === 0 ? head.stdout.trim() : '?'}, ${Number.isNaN(changed) ? '?' : changed} uncommitted path(s) under src/, ${path.relative(root, distDir) || distDir}/ built ${newest ? new Date(newest).toISOString() : '?'}`;
}

/** Runs a benchmark's main(): exit with its code (2 on a crash), children stopped either way. */
export function runMain(main) {
  main().then(
    async (code) => {
      await killAll();
      process.exit(code);
    },
    async (err) => {
      if (wasInterrupted()) return; // the signal handler stops children and exits
      console.error(`bench: ${err?.stack ?? err}`);
      await killAll();
      process.exit(2);
    },
  );
}

/**
 * What every benchmark reports through: `fail` (a FAIL line on stdout, kept
 * in `failures` for the exit code), `warn` (a WARNING line) and `log`
 * (progress on stderr).
 */
export function reporter() {
  const failures = [];
  return {
    failures,
    fail: (msg) => {
      failures.push(msg);
      console.log(`FAIL: ${msg}`);
    },
    warn: (msg) => console.log(`WARNING: ${msg}`),
    log: (msg) => process.stderr.write(`bench: ${msg}\n`),
  };
}

/** A temp dir for one benchmark run, removed at exit unless `keep` (BENCH_KEEP=1). */
export function benchTempDir(name, keep) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `trellis-bench-${name}-`));
  installCleanup(() => {
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
