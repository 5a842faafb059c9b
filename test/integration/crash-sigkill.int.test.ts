/**
 * The crash test of issue 12: `trellis serve --tls` (the built CLI, a child
 * process) under a stream of concurrent API issuances, revocations, ACME
 * orders and EST enrollments is killed with SIGKILL mid-stream, restarted
 * on the same data directory, and then: every certificate a client received
 * is recorded valid or revoked, every acknowledged revocation is recorded,
 * no serial appears twice for the CA, the CRL number never goes back, and
 * OCSP (each answer judged by OpenSSL) reports every recorded revocation.
 * On SQLite: PostgreSQL gets the same invariants after a SIGKILL in
 * two-nodes.int.test.ts (one file each keeps the suite's time; this one runs
 * on PostgreSQL too by passing `databaseUrl` to crashAndCheck).
 */
import { afterAll, describe, expect, test } from 'vitest';
import { freePort } from '../helpers/lego.js';
import { adminToken, checkInvariants, configureForNodes, httpsRequest, newLedger, pgSql, sqliteSql, startAcmeWorld, startServeNode, startWorkload, workloadInputs, type ServeNode } from '../helpers/serve-process.js';
import { testPki } from '../helpers/test-pki.js';

const nodes: ServeNode[] = [];
afterAll(() => {
  for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
});

async function crashAndCheck(flavour: { databaseUrl?: string }) {
  const pki = await testPki(flavour.databaseUrl ? { databaseUrl: flavour.databaseUrl } : {});
  const acme = await startAcmeWorld();
  try {
    const port = await freePort();
    configureForNodes(pki, port);
    const sql = flavour.databaseUrl ? pgSql(flavour.databaseUrl) : sqliteSql(pki);
    const token = await adminToken(pki);
    const inputs = await workloadInputs(pki, 8, 'crash');
    const first = await startServeNode(pki.dataDir, port, acme);
    nodes.push(first);
    const ledger = newLedger();
    let killed = false;
    const baseUrl = `https://127.0.0.1:${port}`;
    const stream = startWorkload({ pki, baseUrl, token, acme, inputs, ledger, targets: () => [{ node: 1, url: first.url }], stop: () => killed });
    // Mid-stream: once every kind of request has been answered at least once, with more in flight, and the
    // delta CRL has been republished after a revocation (crlSeconds 2): a fast machine gets there by requests alone first.
    for (let i = 0; i < 300 && !stream.failed(); i++) {
      const vias = new Set(ledger.received.map((c) => c.via));
      const deltaNumbers = new Set(ledger.crlNumbers.get('full-delta.crl') ?? []).size;
      if (vias.has('api') && vias.has('acme') && vias.has('est') && ledger.revoked.size >= 3 && ledger.received.length >= 20 && deltaNumbers > 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    first.child.kill('SIGKILL');
    killed = true;
    await first.exited;
    await stream.done;
    const before = { received: ledger.received.length, revoked: ledger.revoked.size };

    const second = await startServeNode(pki.dataDir, port, acme);
    nodes.push(second);
    const { problems, revokedChecked, goodChecked, crlAfter } = await checkInvariants(pki, sql, ledger, second.url);
    expect(problems).toEqual([]);
    // The stream really was mixed and really was cut.
    expect(new Set(ledger.received.map((c) => c.via))).toEqual(new Set(['api', 'acme', 'est']));
    expect(before.revoked).toBeGreaterThanOrEqual(3);
    // Requests were in flight when the node died.
    expect(ledger.cut).toBeGreaterThan(0);
    expect(revokedChecked).toBeGreaterThanOrEqual(before.revoked);
    expect(goodChecked).toBeGreaterThan(0);
    // CRLs were republished during the stream (the delta took new numbers), and read again after the restart.
    const deltas = ledger.crlNumbers.get('full-delta.crl') ?? [];
    expect(new Set(deltas).size).toBeGreaterThan(1);
    expect(crlAfter.get('full-delta.crl')).toBeGreaterThanOrEqual(deltas[deltas.length - 1]!);
    console.log(`crash (${flavour.databaseUrl ? 'postgres' : 'sqlite'}): ${before.received} certificates received, ${before.revoked} revocations acknowledged, ${ledger.cut} requests cut, delta CRL numbers ${deltas[0]}..${crlAfter.get('full-delta.crl')}, ${revokedChecked} revoked checked by OCSP`);
    // The restarted node keeps working: one more issuance after the crash.
    const again = await httpsRequest(pki.rootPem, `${second.url}/api/v1/certificates`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ profile: 'server', csr: inputs.apiCsrPem }) });
    expect(again.status).toBe(201);
    second.child.kill('SIGTERM');
    await second.exited;
  } finally {
    await acme.close();
    await pki.close();
  }
}

describe('SIGKILL mid-stream, restart on the same data (the built CLI)', () => {
  test('SQLite: nothing handed out is lost, no serial twice, CRL numbers go on, revocations stay revoked in OCSP', async () => {
    await crashAndCheck({});
  });
});
