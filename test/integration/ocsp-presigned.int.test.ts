/**
 * Pre-signed OCSP responses through the real store, with two responder
 * "nodes" on two connections to one database, each behind its own node:http
 * server: shared rows, a restart, a revocation seen at once on the node that
 * made it and by polling on the other, the refresh loop; openssl judges.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { currentResponder } from '../../src/cmd/held-certificates.js';
import { keystoreFor, openInstance, unlockIssuers, type Instance } from '../../src/cmd/instance.js';
import { ocspHandler } from '../../src/ocsp/http.js';
import { OcspResponder } from '../../src/ocsp/responder.js';
import { readResponseSummary } from '../../src/ocsp/response.js';
import { RevocationAuthority } from '../../src/ra/revoke.js';
import { makeCsr, openssl, opensslRun } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

interface Node {
  responder: OcspResponder;
  url: string;
  close(): Promise<void>;
}

let pki: TestPki;
let second: Instance;
const nodes: Node[] = [];
const leaves: Record<string, Awaited<ReturnType<TestPki['issue']>>> = {};

async function startNode(instance: Instance): Promise<Node> {
  const issuer = pki.issuers.all()[0]!;
  const material = await currentResponder(instance, keystoreFor(instance, testPassphrase), issuer, 'test');
  const responder = new OcspResponder({ certificates: instance.store.certificates, responses: instance.store.ocspResponses, clock: instance.clock, validitySeconds: 3600, pollSeconds: 1, refreshSeconds: 60 });
  responder.setResponder(material);
  responder.start();
  const handler = ocspHandler(responder, { now: () => instance.clock.now() });
  const server = http.createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const node: Node = {
    responder,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await responder.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  nodes.push(node);
  return node;
}

beforeAll(async () => {
  pki = await testPki();
  for (const n of ['p-shared', 'p-revoked', 'p-refresh']) leaves[n] = await pki.issue('device', (await makeCsr(pki.dir, n, `/serialNumber=${n}`)).csrPem, n);
  second = await openInstance(pki.dataDir);
  // The second node's CA holds its own unlocked issuing CA, as a second `serve` would.
  await unlockIssuers(second, keystoreFor(second, testPassphrase));
});
afterAll(async () => {
  for (const n of nodes) await n.close();
  await second?.close();
  await pki?.close();
});

/** GET /ocsp/{base64} for a certificate, as a CDN would fetch it. */
async function get(node: Node, leaf: string): Promise<{ der: Buffer; headers: Headers }> {
  const reqFile = `${pki.dir}/${leaf}-req.der`;
  await openssl('ocsp', '-issuer', pki.issuingPemPath, '-cert', leaves[leaf]!.pemPath, '-no_nonce', '-reqout', reqFile);
  const res = await fetch(`${node.url}/ocsp/${encodeURIComponent(fs.readFileSync(reqFile).toString('base64'))}`);
  expect(res.status).toBe(200);
  return { der: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

async function verify(der: Buffer, leaf: string): Promise<string> {
  const f = `${pki.dir}/${leaf}-resp-${Math.random().toString(36).slice(2)}.der`;
  fs.writeFileSync(f, der);
  const r = await opensslRun(['ocsp', '-respin', f, '-issuer', pki.issuingPemPath, '-cert', leaves[leaf]!.pemPath, '-CAfile', pki.rootPemPath, '-no_nonce']);
  expect(r.stdout + r.stderr).toMatch(/Response verify OK/);
  return r.stdout;
}

describe('pre-signed OCSP responses in the database', () => {
  test('signed once on one node, served by another (and after a restart) without signing', async () => {
    const a = await startNode(pki.instance);
    const first = await get(a, 'p-shared');
    expect(await verify(first.der, 'p-shared')).toMatch(/: good/);
    await a.responder.flush();
    const row = await pki.instance.store.ocspResponses.get('issuing-1', leaves['p-shared']!.serialHex);
    expect(row?.der.equals(first.der)).toBe(true);

    const b = await startNode(second);
    const fromB = await get(b, 'p-shared');
    expect(fromB.der.equals(first.der)).toBe(true);
    expect(fromB.headers.get('etag')).toBe(first.headers.get('etag'));
    expect(b.responder.stats()).toMatchObject({ dbHits: 1, signed: 0 });
  });

  test('a revocation: at once on the node that made it, within the poll interval on the other', async () => {
    const [a, b] = nodes as [Node, Node];
    expect(await verify((await get(a, 'p-revoked')).der, 'p-revoked')).toMatch(/: good/);
    expect(await verify((await get(b, 'p-revoked')).der, 'p-revoked')).toMatch(/: good/);
    await a.responder.flush();
    const revocation = new RevocationAuthority({ certificates: pki.instance.store.certificates, audit: pki.instance.audit, clock: pki.instance.clock, listeners: [a.responder] });
    await revocation.revoke({ serialHex: leaves['p-revoked']!.serialHex, reason: 'keyCompromise', by: 'test', via: 'cli' });
    const now = await verify((await get(a, 'p-revoked')).der, 'p-revoked');
    expect(now).toMatch(/: revoked/);
    expect(now).toMatch(/Reason: keyCompromise/);
    const t0 = Date.now();
    let out = '';
    while (!/: revoked/.test(out) && Date.now() - t0 < 5000) {
      await new Promise((r) => setTimeout(r, 200));
      out = await verify((await get(b, 'p-revoked')).der, 'p-revoked');
    }
    expect(out).toMatch(/: revoked/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('the refresh loop re-signs stored rows with the current status', async () => {
    const [a] = nodes as [Node];
    await get(a, 'p-refresh');
    await a.responder.flush();
    // With refreshSeconds 1000 the horizon (half of 3600 s + 2 × 1000 s) covers every fresh row, so all are due now.
    const refresher = new OcspResponder({ certificates: pki.instance.store.certificates, responses: pki.instance.store.ocspResponses, clock: pki.instance.clock, validitySeconds: 3600, pollSeconds: 1, refreshSeconds: 1000 });
    refresher.setResponder(await currentResponder(pki.instance, keystoreFor(pki.instance, testPassphrase), pki.issuers.all()[0]!, 'test'));
    const before = await pki.instance.store.ocspResponses.get('issuing-1', leaves['p-refresh']!.serialHex);
    await new Promise((r) => setTimeout(r, 1100)); // the next thisUpdate is a new second
    expect(await refresher.refresh()).toBe(3);
    const after = await pki.instance.store.ocspResponses.get('issuing-1', leaves['p-refresh']!.serialHex);
    expect(after!.thisUpdate.getTime()).toBeGreaterThan(before!.thisUpdate.getTime());
    expect(await verify(after!.der, 'p-refresh')).toMatch(/: good/);
    const revokedRow = await pki.instance.store.ocspResponses.get('issuing-1', leaves['p-revoked']!.serialHex);
    expect(readResponseSummary(revokedRow!.der).status.status).toBe('revoked');
  });
});
