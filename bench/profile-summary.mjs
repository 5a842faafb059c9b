#!/usr/bin/env node
/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof`; several are summed): the top functions by
 * self time with file:line, and self time aggregated by origin: project code
 * (dist/ → src/), each node_modules package, node internals (node:*), V8
 * builtins/native, wasm, GC, idle.
 *
 * For the heaviest functions outside the project it also names the nearest
 * project (dist/ = compiled src/) caller, so that e.g. time in node's
 * verifyOneShot can be traced to the project function that asked for it.
 * Locations are in dist/ (compiled JS), as the profile records them; a
 * compiled tree outside the checkout (BENCH_DIST) reads as dist/ too.
 *
 *   node bench/profile-summary.mjs FILE.cpuprofile... [--top N]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const argv = process.argv.slice(2);
const topIdx = argv.indexOf('--top');
const top = topIdx >= 0 ? Number(argv.splice(topIdx, 2)[1]) : 25;
const files = argv;
if (!files.length || !Number.isInteger(top) || top < 1) {
  process.stderr.write('usage: node bench/profile-summary.mjs FILE.cpuprofile... [--top N]\n');
  process.exit(2);
}

// Several files (one per process, e.g. cluster workers) are summed; node ids
// are made unique as "<file index>:<id>".
const byId = new Map();
const parentOf = new Map();
const selfUs = new Map();
let total = 0;
let sampleCount = 0;
files.forEach((file, fi) => {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const key = (id) => `${fi}:${id}`;
  for (const n of prof.nodes) {
    byId.set(key(n.id), n);
    for (const c of n.children ?? []) parentOf.set(key(c), key(n.id));
  }
  // Self time per node: sample i lasts until sample i+1 (the last one gets the mean).
  const { samples, timeDeltas } = prof;
  const wall = prof.endTime - prof.startTime;
  const mean = samples.length ? wall / samples.length : 0;
  for (let i = 0; i < samples.length; i++) {
    const dt = i + 1 < timeDeltas.length ? Math.max(0, timeDeltas[i + 1]) : mean;
    selfUs.set(key(samples[i]), (selfUs.get(key(samples[i])) ?? 0) + dt);
  }
  total += wall;
  sampleCount += samples.length;
});

function localPath(url) {
  let p = url;
  if (p.startsWith('file://')) {
    try {
      p = fileURLToPath(p);
    } catch {
      /* keep */
    }
  }
  if (p.startsWith(root + path.sep)) return path.relative(root, p);
  // A compiled tree elsewhere (BENCH_DIST=/tmp/x/dist): its files read as dist/….
  const d = p.lastIndexOf('/dist/');
  if (d >= 0 && !p.includes('/node_modules/')) return p.slice(d + 1);
  return p;
}

/** Origin of a frame: a package, the project, node internals, or a V8 pseudo-frame. */
function originOf(frame) {
  const name = frame.functionName;
  const url = frame.url;
  if (!url) {
    if (name === '(garbage collector)' || name === '(idle)' || name === '(program)' || name === '(root)') return name;
    return 'V8 builtins / native';
  }
  if (url.startsWith('node:')) return 'node internals (node:*)';
  if (url.startsWith('wasm://')) return 'wasm';
  const p = localPath(url);
  const nm = p.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = p.slice(nm + 'node_modules/'.length).split('/');
    return `node_modules/${parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  const m = /^(?:dist|src)\/([^/]+)/.exec(p);
  if (m) return `src/${m[1]}`;
  if (p.startsWith('bin/')) return 'src (bin/)';
  return p.includes('/') ? `other: ${p.split('/').slice(0, -1).join('/')}` : `other: ${p}`;
}

const fns = new Map();
const origins = new Map();
let idle = 0;
for (const [id, us] of selfUs) {
  const node = byId.get(id);
  if (!node) continue;
  const f = node.callFrame;
  const origin = originOf(f);
  origins.set(origin, (origins.get(origin) ?? 0) + us);
  if (origin === '(idle)') {
    idle += us;
    continue;
  }
  const where = f.url ? `${localPath(f.url)}:${f.lineNumber + 1}:${f.columnNumber + 1}` : '';
  const key = `${f.functionName}\u0000${where}`;
  const e = fns.get(key) ?? { name: f.functionName || '(anonymous)', where, origin, us: 0, callers: new Map() };
  e.us += us;
  if (!origin.startsWith('src')) {
    const caller = projectCaller(id);
    e.callers.set(caller, (e.callers.get(caller) ?? 0) + us);
  }
  fns.set(key, e);
}

/** The two nearest ancestor frames in project code, as "name file:line <- name file:line". */
function projectCaller(id) {
  const found = [];
  for (let p = parentOf.get(id); p !== undefined && found.length < 2; p = parentOf.get(p)) {
    const f = byId.get(p).callFrame;
    if (f.url && originOf(f).startsWith('src')) found.push(`${f.functionName || '(anonymous)'} ${localPath(f.url)}:${f.lineNumber + 1}`);
  }
  return found.length ? found.join(' <- ') : '(no project frame on the stack)';
}

const busy = [...selfUs.values()].reduce((a, b) => a + b, 0) - idle;
const ms = (us) => (us / 1000).toFixed(0).padStart(7);
const pct = (us) => (busy > 0 ? ((100 * us) / busy).toFixed(1) : '0.0').padStart(5);

console.log(`profile ${files.map((f) => path.basename(f)).join(', ')}: ${(total / 1e6).toFixed(1)} s wall${files.length > 1 ? ' (summed over processes)' : ''}, ${sampleCount} samples, busy ${(busy / 1e6).toFixed(1)} s, idle ${(idle / 1e6).toFixed(1)} s (percentages are of busy time)`);

console.log(`\ntop ${top} functions by self time`);
console.log(`     ms      %  function  (origin)  file:line:col`);
for (const e of [...fns.values()].sort((a, b) => b.us - a.us).slice(0, top)) {
  console.log(`${ms(e.us)}  ${pct(e.us)}  ${e.name}  (${e.origin})${e.where ? `  ${e.where}` : ''}`);
}

const callersOf = 8;
console.log(`\nnearest project caller of the top ${callersOf} non-project functions`);
for (const e of [...fns.values()].filter((x) => x.callers.size).sort((a, b) => b.us - a.us).slice(0, callersOf)) {
  console.log(`${ms(e.us)}  ${pct(e.us)}  ${e.name}`);
  for (const [c, us] of [...e.callers].sort((a, b) => b[1] - a[1]).slice(0, 4)) console.log(`${ms(us)}  ${pct(us)}      <- ${c}`);
}

// Roll-up: project code, node_modules (all), node internals, V8/native, GC, other.
const groupOf = (o) =>
  o.startsWith('src') ? 'project (src/)' : o.startsWith('node_modules/') ? 'node_modules (all packages)' : o === '(idle)' ? null : o;
const groups = new Map();
for (const [o, us] of origins) {
  const g = groupOf(o);
  if (g) groups.set(g, (groups.get(g) ?? 0) + us);
}
console.log('\nself time by group');
for (const [g, us] of [...groups].sort((a, b) => b[1] - a[1])) console.log(`${ms(us)}  ${pct(us)}  ${g}`);

console.log('\nself time by origin (package / src module / internals)');
for (const [o, us] of [...origins].filter(([o]) => o !== '(idle)').sort((a, b) => b[1] - a[1])) console.log(`${ms(us)}  ${pct(us)}  ${o}`);
