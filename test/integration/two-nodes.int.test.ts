/**
 * Two nodes on one PostgreSQL (issue 12, "Deployment"; docs/deployment.md,
 * "N nodes on one PostgreSQL"): two `trellis serve --tls` processes (the
 * built CLI) share one data directory's configuration and one database, and
 * are driven at once with API issuance and revocation, ACME (the account made
 * on one node, the order run on the other) and EST. A revocation made on node
 * 1 is reported by node 2's OCSP. Node 1 is then killed with SIGKILL; node 2
 * keeps serving every kind of request, and the crash invariants hold.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { freePort } from '../helpers/lego.js';
import { freshPgDatabase, pgAvailable } from '../helpers/postgres.js';
import { adminToken, checkInvariants, configureForNodes, httpsRequest, newLedger, pgSql, startWorkload, startAcmeWorld, startServeNode, workloadInputs, type AcmeWorld, type ServeNode, type WorkloadTarget } from '../helpers/serve-process.js';
import { opensslRun } from '../helpers/openssl.js';
import { testPki, type TestPki } from '../helpers/test-pki.js';

const enabled = pgAvailable();
let db: { url: string; drop(): Promise<void> };
let pki: TestPki;
let acme: AcmeWorld;
const nodes: ServeNode[] = [];

beforeAll(async () => {
  if (!enabled) return;
  db = await freshPgDatabase();
  pki = await testPki({ databaseUrl: db.url });
  acme = await startAcmeWorld();
}, 60_000);
afterAll(async () => {
  for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
  await Promise.all(nodes.map((n) => n.exited));
  await acme?.close();
  await pki?.close();
  await db?.drop();
});

/** What OCSP on `nodeUrl` says of `serialHex`, the response judged by OpenSSL. */
async function ocspStatus(nodeUrl: string, serialHex: string): Promise<string> {
  const req = path.join(pki.dir, `two-${serialHex}.req`);
  const resp = path.join(pki.dir, `two-${serialHex}.resp`);
  await opensslRun(['ocsp', '-issuer', pki.issuingPemPath, '-serial', `0x${serialHex}`, '-no_nonce', '-reqout', req]);
  const r = await httpsRequest(pki.rootPem, `${nodeUrl}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: fs.readFileSync(req) });
  fs.writeFileSync(resp, r.body);
  const judged = await opensslRun(['ocsp', '-respin', resp, '-issuer', pki.issuingPemPath, '-serial', `0x${serialHex}`, '-CAfile', pki.rootPemPath, '-no_nonce']);
  expect(judged.stderr + judged.stdout).toMatch(/Response verify OK/);
  return /: (good|revoked|unknown)/.exec(judged.stdout)?.[1] ?? 'none';
}

test.skipIf(!enabled)('two nodes, one database: driven together, one SIGKILLed, the survivor serves on and nothing is lost', async () => {
  const [port1, port2] = [await freePort(), await freePort()];
  configureForNodes(pki, port1);
  const token = await adminToken(pki);
  const inputs = await workloadInputs(pki, 10, 'two');
  const [node1, node2] = await Promise.all([startServeNode(pki.dataDir, port1, acme), startServeNode(pki.dataDir, port2, acme)]);
  nodes.push(node1!, node2!);
  const baseUrl = `https://127.0.0.1:${port1}`;

  // A revocation made on node 1 is what node 2's OCSP says (nodes poll the database at a third of ocspSeconds, 1 s here).
  const issued = await httpsRequest(pki.rootPem, `${node1!.url}/api/v1/certificates`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ profile: 'server', csr: inputs.apiCsrPem }) });
  expect(issued.status).toBe(201);
  const serialHex = (JSON.parse(issued.body.toString()) as { serialHex: string }).serialHex;
  expect(await ocspStatus(node2!.url, serialHex)).toBe('good');
  const revoked = await httpsRequest(pki.rootPem, `${node1!.url}/api/v1/certificates/${serialHex}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'keyCompromise' }) });
  expect(revoked.status).toBe(200);
  let seen = await ocspStatus(node2!.url, serialHex);
  for (let i = 0; seen !== 'revoked' && i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    seen = await ocspStatus(node2!.url, serialHex);
  }
  expect(seen).toBe('revoked');

  // Both nodes driven at once; node 1 killed once both have answered every kind of request.
  const ledger = newLedger();
  let alive: WorkloadTarget[] = [
    { node: 1, url: node1!.url },
    { node: 2, url: node2!.url },
  ];
  let afterKill = 0;
  let stop = false;
  const stream = startWorkload({ pki, baseUrl, token, acme, inputs, ledger, targets: () => alive, stop: () => stop, apiLoops: 2 });
  const answered = (node: number) => new Set(ledger.received.filter((c) => c.node === node).map((c) => c.via));
  for (let i = 0; i < 300 && !stream.failed() && !(answered(1).size === 3 && answered(2).size === 3 && ledger.revoked.size >= 3); i++) await new Promise((r) => setTimeout(r, 100));
  expect(answered(1)).toEqual(new Set(['api', 'acme', 'est']));
  expect(answered(2)).toEqual(new Set(['api', 'acme', 'est']));
  node1!.child.kill('SIGKILL');
  alive = [{ node: 2, url: node2!.url }];
  const atKill = ledger.received.length;
  const revokedAtKill = ledger.revoked.size;
  // The survivor keeps serving: issuance, ACME and revocation after the kill.
  for (let i = 0; i < 300 && !stream.failed(); i++) {
    const since = ledger.received.slice(atKill);
    afterKill = since.length;
    if (since.some((c) => c.via === 'api') && since.some((c) => c.via === 'acme') && ledger.revoked.size > revokedAtKill + 1) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  stop = true;
  await stream.done;
  await node1!.exited;
  const since = ledger.received.slice(atKill);
  expect(since.some((c) => c.via === 'api' && c.node === 2)).toBe(true);
  expect(since.some((c) => c.via === 'acme' && c.node === 2)).toBe(true);
  expect(ledger.revoked.size).toBeGreaterThan(revokedAtKill + 1);

  const { problems, revokedChecked } = await checkInvariants(pki, pgSql(db.url), ledger, node2!.url);
  expect(problems).toEqual([]);
  expect(revokedChecked).toBeGreaterThanOrEqual(ledger.revoked.size);
  console.log(`two nodes: ${atKill} certificates before the kill (${ledger.received.filter((c) => c.node === 1).length} from node 1), ${afterKill} after from node 2, ${ledger.revoked.size} revocations, ${ledger.cut} requests cut`);
});
