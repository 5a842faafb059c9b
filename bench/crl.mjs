#!/usr/bin/env node
/**
 * `npm run bench:crl`: a full CRL of 1,000,000 revoked certificates read from
 * the store (SQLite), encoded and signed with the issuing CA's P-256 key,
 * each measurement in a fresh process whose peak RSS (VmHWM, reset after the
 * key is unlocked) is reported; in the same run `openssl ca -gencrl` over an
 * index.txt of the same entries (the baseline, anchors §3 set-up: P-256 CA,
 * AKI + CRL number, keyCompromise on every entry, 7-day nextUpdate). Also:
 * the same with the size hint the publisher uses after its first CRL, the
 * store read alone, CrlPublisher.generate end to end (stores the DER; fresh,
 * and holding the previous full CRL as a running server does), and one
 * shard CRL regenerated after one revocation, in the pass the schedule runs (that shard, then the delta). Last line:
 *
 *   RESULT crl_full_1m <seconds> s baseline <openssl seconds> ratio <openssl ÷ ours>
 *
 * Environment: BENCH_ENTRIES (1000000), BENCH_SHARDS (crlShards of the
 * instance, 16), BENCH_SHARD_RUNS (5), BENCH_KEEP=1 (keep the temp dir).
 * Needs `npm run build` first (it runs dist/). Exit code 1 when a CRL does not
 * verify with OpenSSL or holds the wrong number of entries.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { envInt, installCleanup, machineBusy, requireTools, run, runOk } from './lib/harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => pathToFileURL(path.join(root, 'dist', p)).href;
const passphrase = 'bench-passphrase-not-secret';
const caId = 'issuing-1';

/** Peak and current resident set of this process, MiB (Linux /proc). */
function memory() {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { hwmMiB: kb('VmHWM') / 1024, rssMiB: kb('VmRSS') / 1024 };
}

// ---- child: one measured operation in a fresh process ----------------------

async function child(mode, dataDir, out) {
  const { openInstance, unlockIssuers, keystoreFor } = await import(dist('cmd/instance.js'));
  const { CrlPublisher } = await import(dist('crl/crl-publisher.js'));
  const { buildCrl } = await import(dist('crl/build.js'));
  const instance = await openInstance(dataDir);
  const issuers = await unlockIssuers(instance, keystoreFor(instance, passphrase));
  const issuer = issuers.all().find((i) => i.id === caId);
  const publisher = new CrlPublisher({
    crls: instance.store.crls, certificates: instance.store.certificates, audit: instance.audit, clock: instance.clock, urls: instance.urls,
    validitySeconds: 7 * 86_400, delaySeconds: 60,
  });
  publisher.addIssuer({ id: caId, shards: issuer.crlShards, signer: instance.authority.crlSigner(caId) });
  // Unlocking the CA key runs scrypt (128 MiB) once at start-up; reset the
  // high-water mark so VmHWM measures the CRL work (Linux ≥ 4.0, proc(5) clear_refs "5").
  const unlockPeak = memory().hwmMiB;
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const before = { ...memory(), unlockPeakMiB: unlockPeak };
  const result = { before };
  if (mode === 'sign' || mode === 'sign-hint') {
    // The figure: entries streamed from the store (CertificateRepository.revokedEntries),
    // encoded, signed once with the issuing CA's SigningKey. 'sign-hint' passes the
    // previous CRL's size, as CrlPublisher does on every regeneration after the first.
    const sizeHint = mode === 'sign-hint' ? fs.statSync(out).size + 65_536 : undefined;
    const now = instance.clock.now();
    const t0 = performance.now();
    const built = await buildCrl(instance.authority.crlSigner(caId), { crlNumber: 1000n, thisUpdate: now, nextUpdate: new Date(now.getTime() + 7 * 86_400_000), freshestUrl: 'http://pki.bench:8080/crl/issuing-1/full-delta.crl' },
      instance.store.certificates.revokedEntries(caId, null, { notAfterAfter: now, pageSize: 2_000 }), [], sizeHint ? { sizeHint } : {});
    result.seconds = (performance.now() - t0) / 1000;
    result.entries = built.entries;
    result.bytes = built.der.length;
    result.after = memory();
    if (mode === 'sign') fs.writeFileSync(out, built.der);
  } else if (mode === 'generate' || mode === 'generate-held') {
    // End to end as the schedule runs it: CrlPublisher.generate = draw the
    // number, read + encode + sign, store the DER through CrlRepository.insert, audit.
    // 'generate-held': as a running server does it at half-life, holding (and
    // serving) the previous full CRL, loaded from the store first, which also
    // gives the encoder its size hint.
    if (mode === 'generate-held') {
      const l0 = performance.now();
      await publisher.refresh();
      if (!publisher.get(caId, 'full')) throw new Error('no full CRL in the store to hold');
      result.loadSeconds = (performance.now() - l0) / 1000;
      result.loadPeakMiB = memory().hwmMiB;
      fs.writeFileSync('/proc/self/clear_refs', '5');
      result.before = { ...memory(), unlockPeakMiB: unlockPeak };
    }
    const t0 = performance.now();
    const crl = await publisher.generate(caId, 'full');
    result.seconds = (performance.now() - t0) / 1000;
    result.entries = crl.entries;
    result.after = memory();
  } else if (mode === 'read') {
    // The store's share: reading the entries and nothing else.
    const t0 = performance.now();
    let n = 0;
    for await (const page of instance.store.certificates.revokedEntries(caId, null, { notAfterAfter: instance.clock.now(), pageSize: 2_000 })) n += page.length;
    result.seconds = (performance.now() - t0) / 1000;
    result.entries = n;
  } else if (mode === 'shard') {
    // A running server after one revocation: its first pass made every CRL
    // (not measured); then one revocation at a time, told to the publisher as
    // RevocationAuthority does, and the pass the schedule runs next, timed
    // whole (the shard's CRL, then the full CRL's delta). The shard CRL's own
    // time (draw the number, entries, sign, store, audit) is the publisher's log line.
    const serials = JSON.parse(fs.readFileSync(out, 'utf8'));
    const published = [];
    const server = new CrlPublisher({
      crls: instance.store.crls, certificates: instance.store.certificates, audit: instance.audit, clock: instance.clock, urls: instance.urls,
      validitySeconds: 7 * 86_400, delaySeconds: 60, log: (e) => e.msg === 'CRL published' && published.push(e),
    });
    server.addIssuer({ id: caId, shards: issuer.crlShards, signer: instance.authority.crlSigner(caId) });
    const w0 = performance.now();
    await server.tick();
    result.firstPassSeconds = (performance.now() - w0) / 1000;
    result.passMs = [];
    result.ms = [];
    result.deltaMs = [];
    for (const serialHex of serials) {
      const cert = await instance.store.certificates.findBySerial(caId, serialHex);
      const r = await instance.store.certificates.revoke(caId, serialHex, { reason: 1, revokedAt: instance.clock.now(), invalidityDate: null, revokedBy: 'bench' });
      if (r !== 'revoked') throw new Error(`revoke ${serialHex}: ${r}`);
      published.length = 0;
      server.statusChanged(caId, serialHex, cert.crlShard);
      const t0 = performance.now();
      await server.tick();
      result.passMs.push(performance.now() - t0);
      const shardLog = published.find((e) => e.scope === `shard-${cert.crlShard}`);
      if (!shardLog) throw new Error(`the pass did not publish shard ${cert.crlShard}: ${JSON.stringify(published)}`);
      result.ms.push(shardLog.ms);
      result.deltaMs.push(published.find((e) => e.scope === 'full-delta')?.ms ?? NaN);
      result.from = shardLog.from;
      result.shard = cert.crlShard;
    }
    const crl = server.get(caId, `shard-${result.shard}`);
    result.entries = crl.entries;
    fs.writeFileSync(`${out}.der`, crl.der);
    // What a complete read of the shard would list, to check the merged CRL against.
    let n = 0;
    for await (const page of instance.store.certificates.revokedEntries(caId, result.shard, { notAfterAfter: instance.clock.now(), pageSize: 2_000 })) n += page.length;
    result.storeEntries = n;
  }
  result.after ??= memory();
  await instance.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// ---- parent ----------------------------------------------------------------

/** Counts revokedCertificates entries with a DER walk of its own (not the encoder's code). */
function countEntries(der) {
  const hdr = (p) => {
    const tag = der[p];
    let len = der[p + 1];
    let q = p + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[q++];
    }
    return { tag, start: q, end: q + len };
  };
  const outer = hdr(0);
  const tbs = hdr(outer.start);
  let p = tbs.start;
  const fields = [];
  while (p < tbs.end) {
    const h = hdr(p);
    fields.push(h);
    p = h.end;
  }
  // version, signature, issuer, thisUpdate, nextUpdate, then revokedCertificates if present
  const list = fields[5]?.tag === 0x30 ? fields[5] : null;
  if (!list) return 0;
  let n = 0;
  for (let q = list.start; q < list.end; n++) q = hdr(q).end;
  return n;
}

const ymd = (d) => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';

async function main() {
  const cfg = {
    entries: envInt('BENCH_ENTRIES', 1_000_000),
    shards: envInt('BENCH_SHARDS', 16),
    shardRuns: envInt('BENCH_SHARD_RUNS', 5),
    keep: process.env.BENCH_KEEP === '1',
  };
  requireTools({ openssl: 'apt-get install openssl' });
  if (!fs.existsSync(path.join(root, 'dist', 'crl', 'build.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-crl-'));
  installCleanup(() => {
    if (!cfg.keep) fs.rmSync(tmp, { recursive: true, force: true });
  });
  const log = (msg) => process.stderr.write(`bench: ${msg}\n`);
  const env = { ...process.env, TRELLIS_PASSPHRASE: passphrase };
  const dataDir = path.join(tmp, 'data');

  log(`trellis init in ${tmp}`);
  await runOk(process.execPath, [path.join(root, 'bin', 'trellis.js'), 'init', '--yes', '--data', dataDir, '--base-url', 'http://pki.bench:8080'], { env });
  const configPath = path.join(dataDir, 'trellis.json');
  fs.writeFileSync(configPath, JSON.stringify({ ...JSON.parse(fs.readFileSync(configPath, 'utf8')), crlShards: cfg.shards }, null, 2));
  const issuingPem = path.join(tmp, 'issuing.pem');
  fs.writeFileSync(issuingPem, (await runOk(process.execPath, [path.join(root, 'bin', 'trellis.js'), 'ca', 'cert', '--data', dataDir], { env })).stdout);

  // ---- the same revoked entries into trellis.db and into OpenSSL's index.txt
  log(`inserting ${cfg.entries.toLocaleString('en-US')} revoked certificates (and ${cfg.shardRuns} valid ones to revoke later)`);
  const { default: Database } = await import('better-sqlite3');
  const { crlShardOf } = await import(dist('ca/serial.js'));
  const db = new Database(path.join(dataDir, 'trellis.db'));
  const iso = (d) => d.toISOString().replace('Z', '+00:00'); // the store's DateTime text (sqlite-hot-path.ts)
  const now = Date.now();
  const notBefore = new Date(now - 365 * 86_400_000);
  const notAfter = new Date(now + 365 * 86_400_000);
  const insert = db.prepare(`INSERT INTO "Certificate" ("issuerId","serialHex","profile","subject","sans","notBefore","notAfter","status","crlShard","requestedVia","requestedBy","revokedAt","revocationReason","revokedBy","createdAt","issuedAt")
    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`);
  const index = fs.openSync(path.join(tmp, 'index.txt'), 'w');
  const expiry = ymd(notAfter);
  const t0 = performance.now();
  const rnd = crypto.randomBytes(16 * cfg.entries);
  let lines = [];
  db.transaction(() => {
    for (let i = 0; i < cfg.entries; i++) {
      const b = rnd.subarray(i * 16, i * 16 + 16);
      b[0] = (b[0] & 0x7f) | 0x01; // positive, no leading zero octet: as Trellis stores serials
      const serialHex = b.toString('hex');
      const revokedAt = new Date(now - 1000 * Math.floor((i * 7919) % (300 * 86_400)));
      insert.run(caId, serialHex, 'device', 'CN=bench', '[]', iso(notBefore), iso(notAfter), 'revoked', crlShardOf(serialHex, cfg.shards), 'cli', 'bench', iso(revokedAt), 1, 'bench', iso(notBefore), iso(notBefore));
      lines.push(`R\t${expiry}\t${ymd(revokedAt)},keyCompromise\t${serialHex.toUpperCase()}\tunknown\t/CN=bench\n`);
      if (lines.length === 10_000) {
        fs.writeSync(index, lines.join(''));
        lines = [];
      }
    }
  })();
  fs.writeSync(index, lines.join(''));
  fs.closeSync(index);
  // Valid certificates in one shard, revoked one by one in the shard measurement.
  const toRevoke = [];
  for (let i = 0; toRevoke.length < cfg.shardRuns; i++) {
    const serialHex = '7e' + crypto.randomBytes(15).toString('hex');
    if (crlShardOf(serialHex, cfg.shards) !== crlShardOf(toRevoke[0] ?? serialHex, cfg.shards)) continue;
    insert.run(caId, serialHex, 'device', 'CN=bench', '[]', iso(notBefore), iso(notAfter), 'valid', crlShardOf(serialHex, cfg.shards), 'cli', 'bench', null, null, null, iso(notBefore), iso(notBefore));
    toRevoke.push(serialHex);
  }
  db.close();
  log(`inserted in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const busy = await machineBusy(1000);
  if (busy > 0.15) console.log(`WARNING: machine ${(busy * 100).toFixed(0)}% busy before measuring`);

  const runChild = async (mode, out) => {
    const r = await run(process.execPath, [fileURLToPath(import.meta.url), '--child', mode, dataDir, out], { env });
    if (r.code !== 0) throw new Error(`child ${mode} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop());
  };
  const failures = [];

  // ---- ours: the full CRL, each measurement in a fresh process
  log('trellis: full CRL, read + encode + sign (cold: no size hint)');
  const fullDer = path.join(tmp, 'full.crl');
  const full = await runChild('sign', fullDer);
  const verified = await run('openssl', ['crl', '-inform', 'DER', '-in', fullDer, '-CAfile', issuingPem, '-noout']);
  if (!/verify OK/.test(verified.stdout + verified.stderr)) failures.push(`openssl crl did not verify the full CRL: ${verified.stderr}`);
  const counted = countEntries(fs.readFileSync(fullDer));
  if (counted !== cfg.entries) failures.push(`full CRL holds ${counted} entries, expected ${cfg.entries}`);
  log('trellis: full CRL, read + encode + sign (warm: size hint from the previous CRL)');
  const warm = await runChild('sign-hint', fullDer);
  log('trellis: store read alone');
  const read = await runChild('read', '');
  log('trellis: CrlPublisher.generate end to end (stores the DER)');
  const generated = await runChild('generate', '');
  log('trellis: CrlPublisher.generate with the previous full CRL held, as a running server regenerates it');
  const held = await runChild('generate-held', '');

  // ---- ours: one shard after one revocation
  log(`trellis: shard CRL after one revocation x${cfg.shardRuns}`);
  const serialsFile = path.join(tmp, 'to-revoke.json');
  fs.writeFileSync(serialsFile, JSON.stringify(toRevoke));
  const shard = await runChild('shard', serialsFile);
  const shardOk = await run('openssl', ['crl', '-inform', 'DER', '-in', `${serialsFile}.der`, '-CAfile', issuingPem, '-noout']);
  if (!/verify OK/.test(shardOk.stdout + shardOk.stderr)) failures.push('openssl crl did not verify the shard CRL');
  const shardDer = fs.readFileSync(`${serialsFile}.der`);
  if (countEntries(shardDer) !== shard.storeEntries) failures.push(`shard CRL holds ${countEntries(shardDer)} entries, the store ${shard.storeEntries}`);
  const shardText = (await runOk('openssl', ['crl', '-inform', 'DER', '-in', `${serialsFile}.der`, '-noout', '-text'])).stdout.replace(/\s+/g, '');
  for (const s of toRevoke) if (!shardText.includes(`SerialNumber:${s.toUpperCase()}`)) failures.push(`shard CRL does not list ${s}`);

  // ---- baseline: openssl ca -gencrl on the same entries
  log('openssl ca -gencrl');
  await runOk('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', path.join(tmp, 'ca.key')]);
  await runOk('openssl', ['req', '-x509', '-new', '-key', path.join(tmp, 'ca.key'), '-subj', '/O=Bench/CN=Bench CA', '-days', '3650', '-out', path.join(tmp, 'ca.pem')]);
  fs.writeFileSync(path.join(tmp, 'crlnumber'), '1000\n');
  fs.writeFileSync(path.join(tmp, 'ca.cnf'), [
    '[ ca ]', 'default_ca = CA_default', '[ CA_default ]', `dir = ${tmp}`, 'database = $dir/index.txt', 'crlnumber = $dir/crlnumber',
    'certificate = $dir/ca.pem', 'private_key = $dir/ca.key', 'default_md = sha256', 'default_crl_days = 7', 'crl_extensions = crl_ext',
    'unique_subject = no', '[ crl_ext ]', 'authorityKeyIdentifier = keyid:always', '',
  ].join('\n'));
  const timeBin = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
  const o0 = performance.now();
  const gencrl = timeBin
    ? await run(timeBin, ['-v', 'openssl', 'ca', '-config', path.join(tmp, 'ca.cnf'), '-gencrl', '-out', path.join(tmp, 'openssl-crl.pem')])
    : await run('openssl', ['ca', '-config', path.join(tmp, 'ca.cnf'), '-gencrl', '-out', path.join(tmp, 'openssl-crl.pem')]);
  const opensslSeconds = (performance.now() - o0) / 1000;
  if (gencrl.code !== 0) throw new Error(`openssl ca -gencrl failed: ${gencrl.stderr}`);
  const opensslHwm = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(gencrl.stderr)?.[1] ?? NaN) / 1024;
  await runOk('openssl', ['crl', '-in', path.join(tmp, 'openssl-crl.pem'), '-outform', 'DER', '-out', path.join(tmp, 'openssl-crl.der')]);
  const opensslCount = countEntries(fs.readFileSync(path.join(tmp, 'openssl-crl.der')));
  if (opensslCount !== cfg.entries) failures.push(`openssl CRL holds ${opensslCount} entries, expected ${cfg.entries}`);

  // ---- report
  const medianOf = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const median = medianOf(shard.ms);
  const fmt = (xs) => xs.map((x) => x.toFixed(1)).join(', ');
  const mib = (x) => `${x.toFixed(0)} MiB`;
  console.log(`entries: ${cfg.entries.toLocaleString('en-US')} revoked (P-256 issuing CA, keyCompromise on each), ${cfg.shards} shards`);
  console.log(`trellis full CRL, read from the store + encoded + signed: ${full.seconds.toFixed(2)} s, ${(full.bytes / 1e6).toFixed(1)} MB DER, peak RSS ${mib(full.after.hwmMiB)} (process before: ${mib(full.before.rssMiB)}; start-up peak while scrypt unlocked the key: ${mib(full.before.unlockPeakMiB)})`);
  console.log(`  with the previous CRL's size as hint (every regeneration after the first): ${warm.seconds.toFixed(2)} s, peak RSS ${mib(warm.after.hwmMiB)}`);
  console.log(`  of which the store read alone: ${read.seconds.toFixed(2)} s`);
  console.log(`  CrlPublisher.generate end to end (also stores the DER via CrlRepository.insert, audits): ${generated.seconds.toFixed(2)} s, peak RSS ${mib(generated.after.hwmMiB)}`);
  console.log(`  the same holding the previous full CRL, as a server at half-life: ${held.seconds.toFixed(2)} s, peak RSS ${mib(held.after.hwmMiB)} (holding it: ${mib(held.before.rssMiB)}; loading it from the store: ${held.loadSeconds.toFixed(2)} s, peak ${mib(held.loadPeakMiB)})`);
  console.log(`trellis sharded regeneration after one revocation: median ${median.toFixed(1)} ms (runs ${fmt(shard.ms)} ms; built from the ${shard.from === 'previous' ? 'previous CRL + changes' : 'store'}), ${shard.entries.toLocaleString('en-US')} entries in shard ${shard.shard}`);
  console.log(`  the whole pass after it (that shard, then the full CRL's delta): median ${medianOf(shard.passMs).toFixed(1)} ms (runs ${fmt(shard.passMs)} ms; delta ${fmt(shard.deltaMs)} ms); the server's first pass (every CRL): ${shard.firstPassSeconds.toFixed(2)} s`);
  console.log(`openssl ca -gencrl: ${opensslSeconds.toFixed(2)} s, peak RSS ${Number.isFinite(opensslHwm) ? mib(opensslHwm) : 'n/a'}`);
  for (const [what, r] of [['the full CRL', full], ['CrlPublisher.generate', generated], ['CrlPublisher.generate, previous held', held]]) {
    if (r.after.hwmMiB * 1.048576 >= 300) console.log(`WARNING: peak RSS of ${what}, ${mib(r.after.hwmMiB)} (${(r.after.hwmMiB * 1.048576).toFixed(0)} MB), is over the 300 MB goal`);
  }
  if (median >= 50) console.log(`WARNING: shard regeneration ${median.toFixed(1)} ms is over the 50 ms goal`);
  for (const f of failures) console.log(`FAIL: ${f}`);
  console.log(`RESULT crl_full_1m ${full.seconds.toFixed(2)} s baseline ${opensslSeconds.toFixed(2)} ratio ${(opensslSeconds / full.seconds).toFixed(2)}`);
  if (cfg.keep) log(`kept ${tmp}`);
  process.exitCode = failures.length ? 1 : 0;
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], process.argv[4], process.argv[5]);
} else {
  await main();
}
