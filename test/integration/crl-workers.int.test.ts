/**
 * `trellis serve --workers 2` (compiled, node:cluster): one worker publishes
 * the CRLs (the database lease), both serve the newest from the database. A
 * revocation through the API is listed by every worker's shard CRL, and that
 * CRL and its delta are made once, not once per worker. OpenSSL reads the CRLs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { crlPublisher } from '../../src/cmd/crl-publishing.js';
import { createToken } from '../../src/tokens/tokens.js';
import { makeCsr, openssl } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

const bin = path.join(import.meta.dirname, '../../bin/trellis.js');
const crlSeconds = 4;

let pki: TestPki;
let server: ChildProcess | undefined;
let output = '';
let url = '';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

/** CRL rows per scope of the issuing CA, read straight from the SQLite file. */
function crlRows(): { scope: string; crlNumber: number }[] {
  const db = new Database(path.join(pki.dataDir, 'trellis.db'), { readonly: true });
  try {
    return db.prepare(`SELECT "scope", "crlNumber" FROM "Crl" WHERE "caId" = 'issuing-1' ORDER BY "crlNumber"`).all() as { scope: string; crlNumber: number }[];
  } finally {
    db.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  pki = await testPki();
  const configPath = `${pki.dataDir}/trellis.json`;
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  fs.writeFileSync(configPath, JSON.stringify({ ...config, revocation: { ocspSeconds: 5, crlSeconds, crlValiditySeconds: 86_400, ocspValiditySeconds: 86_400 } }));
  // CRLs exist before the workers start (an instance that has served before),
  // so what the workers publish afterwards can be counted.
  await crlPublisher(pki.instance, pki.issuers.all()).tick();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  server = spawn(process.execPath, [bin, 'serve', '--data', pki.dataDir, '--port', String(port), '--workers', '2'], { env: { ...process.env, TRELLIS_PASSPHRASE: testPassphrase }, stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout!.on('data', (d) => (output += d));
  server.stderr!.on('data', (d) => (output += d));
  const t0 = Date.now();
  while ((output.match(/"msg":"serving"/g) ?? []).length < 2) {
    if (Date.now() - t0 > 30_000 || server.exitCode !== null) throw new Error(`serve --workers 2 did not start:\n${output}`);
    await sleep(100);
  }
  // Let both workers run a few passes: one takes the lease and catches up.
  await sleep(3000);
}, 60_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server!.once('exit', r));
  }
  await pki?.close();
});

test('serve --workers 2: one worker publishes each CRL once; every worker serves the newest from the database', async () => {
  const leaseLines = output.match(/"msg":"CRL publisher lease taken","ca":"issuing-1"/g) ?? [];
  expect(leaseLines).toHaveLength(1);
  const leaf = await pki.issue('device', (await makeCsr(pki.dir, 'w-bad', '/serialNumber=w-bad')).csrPem, 'w-bad');
  const shard = (await pki.instance.store.certificates.findBySerial('issuing-1', leaf.serialHex))!.crlShard;
  const before = crlRows();
  const highest = before.at(-1)!.crlNumber;

  const admin = (await createToken(pki.instance.store.tokens, 'admin', 'w-admin')).secret;
  const res = await fetch(`${url}/api/v1/certificates/${leaf.serialHex}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json', connection: 'close' }, body: '{"reason":"keyCompromise"}' });
  expect(res.status).toBe(200);

  // Each fetch is a new connection, and the cluster hands connections to the
  // workers in turn: four answers in a row that list it cover both workers.
  const serial = leaf.serialHex.toUpperCase();
  const listed = async () => {
    const r = await fetch(`${url}/crl/issuing-1/${shard}.crl`, { headers: { connection: 'close' } });
    if (r.status !== 200) throw new Error(`${r.status} ${await r.text()}; the server printed:\n${output.slice(-4000)}`);
    const file = `${pki.dir}/w-${Math.random().toString(36).slice(2)}.der`;
    fs.writeFileSync(file, Buffer.from(await r.arrayBuffer()));
    const text = await openssl('crl', '-inform', 'DER', '-in', file, '-CAfile', pki.issuingPemPath, '-noout', '-text');
    expect(text).toMatch(/verify OK/);
    return text.includes(`Serial Number: ${serial}`);
  };
  const t0 = Date.now();
  let inARow = 0;
  while (inARow < 4) {
    inARow = (await listed()) ? inARow + 1 : 0;
    if (Date.now() - t0 > crlSeconds * 1000 + 2000) throw new Error(`not listed by every worker within ${crlSeconds} s`);
    if (inARow < 4) await sleep(100);
  }

  // Past crlSeconds again, when a worker without the lease would step in if the CRL were missing.
  await sleep(crlSeconds * 1000 + 1500);
  const made = crlRows().filter((r) => r.crlNumber > highest);
  expect(made.map((r) => r.scope).sort(), `CRLs made: ${made.map((r) => `${r.scope}#${r.crlNumber}`).join(', ')}; the server printed:\n${output.slice(-6000)}`).toEqual(['full-delta', `shard-${shard}`]);
});
