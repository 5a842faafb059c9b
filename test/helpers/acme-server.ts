/**
 * A running Trellis ACME server for integration tests: a test PKI, `serve`
 * over HTTP on a free port with the real validation authority, an http-01
 * and a tls-alpn-01 responder on loopback (allowed with 127.0.0.0/8) and a
 * test DNS server every name resolves through. `acme` patches the instance's
 * acme settings in trellis.json before the server starts.
 *
 * ACME URLs come from the instance's base URL alone. By default it is the
 * server's own `http://127.0.0.1:PORT`; with `baseUrl` (a name in front of
 * the node, as behind a proxy) the clients connect to the node and keep
 * the base URL's names (AcmeClient `connectTo`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { serve, type Serving } from '../../src/cmd/server.js';
import type { AcmeConfig } from '../../src/config/instance-config.js';
import { silentLogger, type Logger } from '../../src/http/log.js';
import { startDnsServer, type DnsEntry, type TestDnsServer } from '../../src/va/testing/dns-server.js';
import { AcmeClient, assertOk, startHttp01Responder, startTlsAlpn01Responder, type AcmeClientOptions, type Http01Responder, type TlsAlpn01Responder } from './acme-client.js';
import { freePort } from './lego.js';
import { testPki, testPassphrase, type TestPki } from './test-pki.js';

export interface AcmeTestServer {
  pki: TestPki;
  server: Serving;
  http01: Http01Responder;
  tlsAlpn: TlsAlpn01Responder;
  dns: TestDnsServer;
  /** The base URL every ACME URL starts with. */
  baseUrl: string;
  /** `/acme/directory`, or `/acme/{profile}/directory`. */
  directoryUrl(profile?: string): string;
  /** A client with a new account (ES256 unless `opts.key` says otherwise). */
  client(opts?: Partial<AcmeClientOptions> & { profile?: string }): Promise<AcmeClient>;
  close(): Promise<void>;
}

export async function startAcmeServer(
  opts: { acme?: Partial<AcmeConfig>; zone?: Record<string, DnsEntry>; baseUrl?: string; trustedProxies?: string[]; log?: Logger } = {},
): Promise<AcmeTestServer> {
  const pki = await testPki(opts.baseUrl ? { baseUrl: opts.baseUrl } : {});
  const configPath = path.join(pki.dataDir, 'trellis.json');
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  config.acme = { ...config.acme, ...opts.acme };
  await pki.instance.close();
  const http01 = await startHttp01Responder();
  const tlsAlpn = await startTlsAlpn01Responder();
  const dns = await startDnsServer(opts.zone ?? {});
  let started: Serving | undefined;
  // Without a base URL of its own the server's is its own address: a port picked first (again if taken meanwhile).
  for (let attempt = 0; !started; attempt++) {
    const port = opts.baseUrl ? 0 : await freePort();
    if (!opts.baseUrl) config.baseUrl = `http://127.0.0.1:${port}`;
    fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
    try {
      started = await serve({
        dataDir: pki.dataDir,
        port,
        passphrase: testPassphrase,
        log: opts.log ?? silentLogger,
        accessLog: !!opts.log,
        ...(opts.trustedProxies ? { trustedProxies: opts.trustedProxies } : {}),
        acme: { http01Port: http01.port, tlsAlpn01Port: tlsAlpn.port, resolver: dns.address, allowAddresses: ['127.0.0.0/8'] },
      });
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test(String(err))) throw err;
    }
  }
  const server = started;
  const baseUrl: string = config.baseUrl.replace(/\/+$/, '');
  const connect = opts.baseUrl ? { connectTo: server.url } : {};
  const clients: AcmeClient[] = [];
  const directoryUrl = (profile?: string) => `${baseUrl}/acme/${profile ? `${profile}/` : ''}directory`;
  return {
    pki,
    server,
    http01,
    tlsAlpn,
    dns,
    baseUrl,
    directoryUrl,
    async client(o = {}) {
      const { profile, ...rest } = o;
      const c = await AcmeClient.create({ directoryUrl: directoryUrl(profile), ...connect, ...rest });
      clients.push(c);
      if (!rest.accountUrl) assertOk(await c.newAccount({ termsOfServiceAgreed: true }), 'newAccount', [201]);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      await server.close();
      await Promise.all([http01.close(), tlsAlpn.close(), dns.close()]);
      // Closing the store again is a no-op; this removes the files.
      await pki.close();
    },
  };
}
