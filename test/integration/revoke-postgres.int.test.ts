/**
 * Revocation on the scale-out setup: two `trellis serve` nodes on one
 * PostgreSQL database. A certificate revoked through one node's API is
 * answered "revoked" by the other node's OCSP responder within
 * `revocation.ocspSeconds`, and listed in the shard CRL (and the full CRL's
 * delta) the other node serves within `revocation.crlSeconds`; the pre-signed
 * answers and the CRLs both nodes serve come from the shared database.
 * OpenSSL judges every answer and every CRL. Skips loudly without
 * TRELLIS_TEST_DATABASE_URL; fails under TRELLIS_REQUIRE_INTEROP=1.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { toPem } from '../../src/pki/pem.js';
import { createToken } from '../../src/tokens/tokens.js';
import { makeCsr, openssl, opensslRun } from '../helpers/openssl.js';
import { freshPgDatabase, pgAvailable } from '../helpers/postgres.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

const ocspSeconds = 3;
const crlSeconds = 4;

const enabled = pgAvailable();
let db: Awaited<ReturnType<typeof freshPgDatabase>>;
let pki: TestPki;
let a: Serving;
let b: Serving;
let admin: string;
const leaves: Record<string, Awaited<ReturnType<TestPki['issue']>>> = {};

beforeAll(async () => {
  if (!enabled) return;
  db = await freshPgDatabase();
  pki = await testPki({ databaseUrl: db.url });
  const configPath = `${pki.dataDir}/trellis.json`;
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  fs.writeFileSync(configPath, JSON.stringify({ ...config, revocation: { ocspSeconds, crlSeconds, crlValiditySeconds: 86_400, ocspValiditySeconds: 86_400 } }));
  for (const n of ['pg-good', 'pg-bad', 'pg-hold']) leaves[n] = await pki.issue('device', (await makeCsr(pki.dir, n, `/serialNumber=${n}`)).csrPem, n);
  admin = (await createToken(pki.instance.store.tokens, 'admin', 'pg-admin')).secret;
  const opts = { dataDir: pki.dataDir, databaseUrl: db.url, port: 0, passphrase: testPassphrase, log: silentLogger, accessLog: false };
  a = await serve(opts);
  b = await serve(opts);
}, 60_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await pki?.close();
  await db?.drop();
});

/** `openssl ocsp` against a node: the status line for a leaf, after verifying the responder's signature. */
async function ocspStatus(node: Serving, leaf: string): Promise<string> {
  const r = await opensslRun(['ocsp', '-url', `${node.url}/ocsp`, '-issuer', pki.issuingPemPath, '-cert', leaves[leaf]!.pemPath, '-CAfile', pki.rootPemPath, '-no_nonce']);
  expect(r.stdout + r.stderr).toMatch(/Response verify OK/);
  return r.stdout;
}

/** A CRL as a node serves it, written as PEM; its `openssl crl -text`. */
async function fetchCrl(node: Serving, file: string, name: string): Promise<{ path: string; text: string; number: string }> {
  const res = await fetch(`${node.url}/crl/issuing-1/${file}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/pkix-crl');
  const path = `${pki.dir}/${name}.pem`;
  fs.writeFileSync(path, toPem('X509 CRL', Buffer.from(await res.arrayBuffer())));
  const text = await openssl('crl', '-in', path, '-CAfile', pki.issuingPemPath, '-noout', '-text');
  expect(text).toMatch(/verify OK/);
  return { path, text, number: /X509v3 CRL Number: \s*\n\s*(\d+)/.exec(text)![1]! };
}

const shardOf = async (leaf: string) => (await pki.instance.store.certificates.findBySerial('issuing-1', leaves[leaf]!.serialHex))!.crlShard;
const revoke = (node: Serving, leaf: string, reason: string) =>
  fetch(`${node.url}/api/v1/certificates/${leaves[leaf]!.serialHex}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason }) });

/** Polls `check` every 200 ms until it holds or `seconds` pass; resolves with the time it took (ms). */
async function within(seconds: number, check: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > seconds * 1000) throw new Error(`not within ${seconds} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return Date.now() - t0;
}

describe.skipIf(!enabled)('PostgreSQL: two serve nodes on one database', () => {
  test('both nodes answer OCSP for the same certificates (pre-signed rows shared through PostgreSQL)', async () => {
    expect(await ocspStatus(a, 'pg-bad')).toMatch(/: good/);
    expect(await ocspStatus(b, 'pg-bad')).toMatch(/: good/);
    expect(await ocspStatus(b, 'pg-good')).toMatch(/: good/);
    // Pre-signed answers are written in the background; both nodes' end up in the shared table.
    await within(5, async () => !!(await pki.instance.store.ocspResponses.get('issuing-1', leaves['pg-bad']!.serialHex)));
  });

  test('revoked through node A: node B answers revoked within ocspSeconds, and lists it in its shard CRL and delta within crlSeconds', async () => {
    const shard = await shardOf('pg-bad');
    const before = await fetchCrl(b, `${shard}.crl`, 'b-before');
    expect(before.text).not.toContain(leaves['pg-bad']!.serialHex.toUpperCase());

    const res = await revoke(a, 'pg-bad', 'keyCompromise');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'revoked', ocspWithinSeconds: ocspSeconds, crlWithinSeconds: crlSeconds });

    let ocspOut = '';
    const ocspMs = await within(ocspSeconds, async () => /: revoked/.test((ocspOut = await ocspStatus(b, 'pg-bad'))));
    expect(ocspOut).toMatch(/Reason: keyCompromise/);
    expect(ocspMs).toBeLessThan(ocspSeconds * 1000);

    let crl = before;
    const crlMs = await within(crlSeconds, async () => (crl = await fetchCrl(b, `${shard}.crl`, 'b-after')).text.includes(leaves['pg-bad']!.serialHex.toUpperCase()));
    expect(crlMs).toBeLessThan(crlSeconds * 1000);
    expect(BigInt(crl.number)).toBeGreaterThan(BigInt(before.number));
    expect(crl.text).toMatch(new RegExp(`Serial Number: ${leaves['pg-bad']!.serialHex.toUpperCase()}[\\s\\S]*?Key Compromise`));

    // openssl verify -crl_check with the CRL node B serves: revoked is revoked, good is OK.
    const check = (leaf: string, crlPath: string) => opensslRun(['verify', '-crl_check', '-CAfile', pki.rootPemPath, '-untrusted', pki.issuingPemPath, '-CRLfile', crlPath, leaves[leaf]!.pemPath]);
    const revoked = await check('pg-bad', crl.path);
    expect(revoked.code).not.toBe(0);
    expect(revoked.stdout + revoked.stderr).toMatch(/certificate revoked/);
    const goodShard = await fetchCrl(b, `${await shardOf('pg-good')}.crl`, 'b-good-shard');
    expect((await check('pg-good', goodShard.path)).stdout).toMatch(/: OK$/m);

    // The full CRL and its delta from node B: with -use_deltas the revocation is seen.
    let delta = await fetchCrl(b, 'full-delta.crl', 'b-delta');
    await within(crlSeconds, async () => (delta = await fetchCrl(b, 'full-delta.crl', 'b-delta')).text.includes(leaves['pg-bad']!.serialHex.toUpperCase()));
    const full = await fetchCrl(b, 'full.crl', 'b-full');
    const bundle = `${pki.dir}/b-full-delta.pem`;
    fs.writeFileSync(bundle, fs.readFileSync(full.path, 'utf8') + fs.readFileSync(delta.path, 'utf8'));
    const withDelta = await opensslRun(['verify', '-crl_check', '-use_deltas', '-CAfile', pki.rootPemPath, '-untrusted', pki.issuingPemPath, '-CRLfile', bundle, leaves['pg-bad']!.pemPath]);
    expect(withDelta.stdout + withDelta.stderr).toMatch(/certificate revoked/);

    // Both nodes serve the same, highest CRL of the shard from the database.
    await within(crlSeconds, async () => (await fetchCrl(a, `${shard}.crl`, 'a-after')).number === (await fetchCrl(b, `${shard}.crl`, 'b-again')).number);
    const stored = await pki.instance.store.crls.latest('issuing-1', `shard-${shard}`);
    expect(stored!.crlNumber).toBeGreaterThanOrEqual(BigInt(crl.number));
  });

  test('a hold placed through node B and lifted through node A: node B follows both ways', async () => {
    const shard = await shardOf('pg-hold');
    const serial = leaves['pg-hold']!.serialHex.toUpperCase();
    expect((await revoke(b, 'pg-hold', 'certificateHold')).status).toBe(200);
    await within(ocspSeconds, async () => /: revoked/.test(await ocspStatus(a, 'pg-hold')));
    await within(crlSeconds, async () => new RegExp(`Serial Number: ${serial}[\\s\\S]*?Certificate Hold`).test((await fetchCrl(b, `${shard}.crl`, 'b-hold')).text));
    expect((await revoke(a, 'pg-hold', 'removeFromCRL')).status).toBe(200);
    await within(ocspSeconds, async () => /: good/.test(await ocspStatus(b, 'pg-hold')));
    await within(crlSeconds, async () => !(await fetchCrl(b, `${shard}.crl`, 'b-hold')).text.includes(serial));
    // The delta carries the lifted hold as removeFromCRL.
    await within(crlSeconds, async () => new RegExp(`Serial Number: ${serial}[\\s\\S]*?Remove From CRL`).test((await fetchCrl(b, 'full-delta.crl', 'b-hold-delta')).text));
  });
});
