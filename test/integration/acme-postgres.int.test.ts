/**
 * ACME on the scale-out setup: two `serve` nodes on one PostgreSQL behind a
 * round-robin TCP balancer, so consecutive requests of one client land on
 * different nodes. Nonces minted by one node are redeemed by the other (and
 * still only once), orders and authorizations written by one are read and
 * finalized by the other, and the certificate verifies with openssl.
 */
import fs from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { AcmeClient, assertOk, startHttp01Responder, type Http01Responder } from '../helpers/acme-client.js';
import { openssl } from '../helpers/openssl.js';
import { freshPgDatabase, pgAvailable } from '../helpers/postgres.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

/** A TCP balancer on loopback that sends each new connection to the next backend in turn. */
async function roundRobin(backends: number[]): Promise<{ url: string; hits: number[]; close(): Promise<void> }> {
  let next = 0;
  const hits = backends.map(() => 0);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const i = next++ % backends.length;
    hits[i]!++;
    const upstream = net.connect(backends[i]!, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => (s === client ? upstream : client).destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const enabled = pgAvailable();
let db: Awaited<ReturnType<typeof freshPgDatabase>>;
let pki: TestPki;
let nodes: Serving[] = [];
let balancer: Awaited<ReturnType<typeof roundRobin>>;
let http01: Http01Responder;

beforeAll(async () => {
  if (!enabled) return;
  db = await freshPgDatabase();
  pki = await testPki({ databaseUrl: db.url });
  http01 = await startHttp01Responder();
  const opts = { dataDir: pki.dataDir, databaseUrl: db.url, port: 0, passphrase: testPassphrase, log: silentLogger, accessLog: false, acme: { http01Port: http01.port, allowAddresses: ['127.0.0.0/8'] } };
  nodes = [await serve(opts), await serve(opts)];
  balancer = await roundRobin(nodes.map((n) => Number(new URL(n.url).port)));
});

afterAll(async () => {
  await balancer?.close();
  for (const n of nodes) await n.close();
  await http01?.close();
  await pki?.close();
  await db?.drop();
});

test.skipIf(!enabled)('PostgreSQL: two nodes serve one ACME client in turn; nonces cross nodes once; the certificate verifies', async () => {
  // No keep-alive: every request is a new connection, hence the other node.
  // URLs name the base URL (http://pki.test:8080); the connections go to the balancer.
  const client = await AcmeClient.create({ directoryUrl: `${pki.instance.config.baseUrl}/acme/directory`, connectTo: balancer.url, keepAlive: false });
  assertOk(await client.newAccount({ termsOfServiceAgreed: true }), 'newAccount', [201]);

  const nonce = await client.newNonce();
  const uses = await Promise.all(Array.from({ length: 6 }, () => client.post(client.directory.newOrder, { identifiers: [{ type: 'ip', value: '127.0.0.1' }] }, { nonce })));
  expect(uses.filter((r) => r.status === 201)).toHaveLength(1);
  expect(uses.filter((r) => r.problem?.type === 'urn:ietf:params:acme:error:badNonce')).toHaveLength(5);

  const { certificate } = await client.obtainCertificate({ identifiers: ['127.0.0.1'], challengeType: 'http-01', respond: (_a, ch, keyAuth) => http01.set(ch.token, keyAuth) });
  const file = `${pki.dir}/pg-leaf.pem`;
  fs.writeFileSync(file, certificate.pem);
  await expect(openssl('verify', '-CAfile', pki.rootPemPath, '-untrusted', file, file)).resolves.toMatch(/: OK$/m);
  expect(balancer.hits.every((h) => h > 5)).toBe(true);
  client.close();
});
