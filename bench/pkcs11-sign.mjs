#!/usr/bin/env node
/**
 * P-256 signatures per second: a key in a SoftHSM2 token (Pkcs11Keystore)
 * against a NodeSigningKey (OpenSSL in process), sequentially and with 64
 * signatures in flight, for several session-pool sizes. Not wired to npm
 * scripts: run `node bench/pkcs11-sign.mjs` after `npm run build` (or point
 * BENCH_DIST at another compiled tree). BENCH_N sets the signatures per cell
 * (default 5000); each cell is the median of BENCH_REPEAT runs (default 3).
 * The token lives in a temporary directory, removed at the end.
 *
 * Each signature is over a 600-octet buffer (about a leaf TBSCertificate),
 * so the SHA-256 done in process is included, as in issuance.
 *
 * Two reference rows call pkcs11js directly on one session, sequentially:
 * C_Sign synchronous (the event loop waits for the token) and C_SignAsync
 * (what the keystore does), to show what the thread hop costs.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(process.env.BENCH_DIST ?? path.join(here, '..', 'dist'));
const modulePath = process.env.TRELLIS_PKCS11_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';
const n = Number(process.env.BENCH_N ?? 5000);
const repeat = Number(process.env.BENCH_REPEAT ?? 3);
const concurrency = 64;

const { Pkcs11Keystore } = await import(path.join(dist, 'keys/pkcs11-keystore.js'));
const { NodeSigningKey } = await import(path.join(dist, 'keys/node-signing-key.js'));
const { generatePrivateKey } = await import(path.join(dist, 'keys/algorithms.js'));

// A token of our own (SOFTHSM2_CONF must be set before the module is initialized).
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-softhsm-'));
fs.mkdirSync(path.join(dir, 'tokens'));
fs.writeFileSync(path.join(dir, 'softhsm2.conf'), `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
process.env.SOFTHSM2_CONF = path.join(dir, 'softhsm2.conf');
execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--pin', '1234', '--so-pin', '5678'], { stdio: 'pipe' });

const data = randomBytes(600);

/** Signatures per second for `total` signatures with `inFlight` at a time. */
async function rate(key, total, inFlight) {
  let started = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (started < total) {
        started += 1;
        await key.sign(data);
      }
    }),
  );
  return total / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const rows = [];
async function measure(label, key) {
  const sig = await key.sign(data);
  if (!verify('sha256', data, { key: createPublicKey({ key: key.spkiDer, format: 'der', type: 'spki' }), dsaEncoding: 'der' }, sig)) throw new Error(`${label}: signature does not verify`);
  await rate(key, Math.min(500, n), concurrency); // warm-up
  const median = async (inFlight) => {
    const runs = [];
    for (let i = 0; i < repeat; i++) runs.push(await rate(key, n, inFlight));
    return Math.round(runs.sort((a, b) => a - b)[Math.floor(runs.length / 2)]);
  };
  rows.push({ key: label, sequential: await median(1), [`${concurrency} in flight`]: await median(concurrency) });
}

/** pkcs11js on one session, no pool: synchronous and asynchronous C_Sign, sequential. */
async function rawRows(keyId) {
  const { default: p11 } = await import('pkcs11js');
  const m = new p11.PKCS11();
  m.load(modulePath);
  m.C_Initialize({ flags: p11.CKF_OS_LOCKING_OK });
  try {
    const slot = m.C_GetSlotList(true).find((s) => m.C_GetTokenInfo(s).label.trimEnd() === 'bench');
    const session = m.C_OpenSession(slot, p11.CKF_SERIAL_SESSION);
    m.C_Login(session, p11.CKU_USER, '1234');
    m.C_FindObjectsInit(session, [{ type: p11.CKA_CLASS, value: p11.CKO_PRIVATE_KEY }, { type: p11.CKA_LABEL, value: keyId }]);
    const [handle] = m.C_FindObjects(session, 1);
    m.C_FindObjectsFinal(session);
    const digest = () => createHash('sha256').update(data).digest();
    const time = async (one) => {
      const runs = [];
      for (let r = 0; r < repeat; r++) {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < n; i++) await one();
        runs.push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
      }
      return Math.round(runs.sort((a, b) => a - b)[Math.floor(runs.length / 2)]);
    };
    const sync = await time(() => {
      m.C_SignInit(session, { mechanism: p11.CKM_ECDSA }, handle);
      return m.C_Sign(session, digest(), Buffer.alloc(64));
    });
    const async = await time(() => {
      m.C_SignInit(session, { mechanism: p11.CKM_ECDSA }, handle);
      return m.C_SignAsync(session, digest(), Buffer.alloc(64));
    });
    rows.push({ key: 'pkcs11js C_Sign (sync), 1 session', sequential: sync, [`${concurrency} in flight`]: '-' });
    rows.push({ key: 'pkcs11js C_SignAsync, 1 session', sequential: async, [`${concurrency} in flight`]: '-' });
    m.C_Logout(session);
    m.C_CloseSession(session);
  } finally {
    m.C_Finalize();
  }
}

try {
  await measure('NodeSigningKey', new NodeSigningKey('bench', 'ecdsa-p256', await generatePrivateKey('ecdsa-p256')));
  let keyId;
  for (const sessions of [1, 2, 4, 8, 16]) {
    const ks = new Pkcs11Keystore({ modulePath, tokenLabel: 'bench', pin: Buffer.from('1234'), sessions });
    const key = keyId ? await ks.load(keyId) : await ks.generate('ecdsa-p256');
    keyId = key.keyId;
    await measure(`SoftHSM2, ${sessions} session${sessions > 1 ? 's' : ''}`, key);
    await ks.close();
  }
  await rawRows(keyId);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(`P-256 signatures/s over ${data.length} octets, median of ${repeat} runs of ${n}, ${os.cpus().length} CPUs, node ${process.version}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 4}`);
console.table(rows);
