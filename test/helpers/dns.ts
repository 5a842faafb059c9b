/**
 * A mock DNS server for ACME validation tests: Debian's pebble-challtestsrv
 * (2.4.0) with only its DNS part on, answering every A query with
 * 127.0.0.1 and every AAAA query with nothing, so any name in a test
 * resolves to loopback for the server's validator (`trellis serve
 * --acme-resolver 127.0.0.1:<port>`) without touching /etc/hosts. Per-name
 * records (e.g. a name pointing at a denied address) go through its
 * management API.
 */
import { Resolver } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, startTool, startWithPortRetry, type ToolProcess } from './lego.js';

export interface MockDns {
  /** "127.0.0.1:<port>", for --acme-resolver / pebble -dnsserver. */
  address: string;
  host: string;
  port: number;
  managementUrl: string;
  process: ToolProcess;
  /** A records for `name` (replacing the default answer for it). */
  addA(name: string, addresses: string[]): Promise<void>;
  clearA(name: string): Promise<void>;
  addAAAA(name: string, addresses: string[]): Promise<void>;
  clearAAAA(name: string): Promise<void>;
  /** SERVFAIL for every query of `name`. */
  setServfail(name: string): Promise<void>;
  clearServfail(name: string): Promise<void>;
  /** Resolves A records through this server (what the validator will see). */
  resolve4(name: string): Promise<string[]>;
  stop(): Promise<void>;
}

const fqdn = (name: string) => (name.endsWith('.') ? name : `${name}.`);

/**
 * Starts pebble-challtestsrv with DNS on 127.0.0.1 (UDP and TCP) and its
 * HTTP/TLS challenge servers off:
 *
 *   pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" -dns01 127.0.0.1:P
 *     -http01 "" -https01 "" -tlsalpn01 "" -management 127.0.0.1:M
 *
 * (2.4.0 has no -doh flag; its management port defaults to :8055 on every
 * interface, hence the explicit one.) Resolves once a query answers.
 */
export function startMockDns(opts: { defaultIPv4?: string; defaultIPv6?: string; bin?: string; logFile?: string } = {}): Promise<MockDns> {
  return startWithPortRetry(async () => {
    const host = '127.0.0.1';
    const port = await freePort({ udp: true });
    const mgmt = await freePort();
    const args = ['-defaultIPv4', opts.defaultIPv4 ?? '127.0.0.1', '-defaultIPv6', opts.defaultIPv6 ?? '', '-dns01', `${host}:${port}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `${host}:${mgmt}`];
    const proc = startTool(opts.bin ?? 'pebble-challtestsrv', args, opts.logFile ? { logFile: opts.logFile } : {});
    const resolver = new Resolver({ timeout: 500, tries: 1 });
    resolver.setServers([`${host}:${port}`]);
    const managementUrl = `http://${host}:${mgmt}`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (!proc.running()) throw new Error(`pebble-challtestsrv exited: ${proc.output()}`);
      try {
        await resolver.resolve4('probe.mock-dns.test');
        const r = await fetch(`${managementUrl}/clear-a`, { method: 'POST', body: JSON.stringify({ host: 'probe.mock-dns.test.' }) });
        if (r.ok) break;
      } catch {
        // not listening yet: poll again below
      }
      if (Date.now() > deadline) {
        await proc.stop();
        throw new Error(`pebble-challtestsrv not answering on ${host}:${port} after 10 s: ${proc.output()}`);
      }
      await sleep(50);
    }
    const call = async (pathName: string, body: Record<string, unknown>) => {
      const r = await fetch(`${managementUrl}${pathName}`, { method: 'POST', body: JSON.stringify(body) });
      if (!r.ok) throw new Error(`pebble-challtestsrv ${pathName}: HTTP ${r.status} ${await r.text()}`);
    };
    return {
      address: `${host}:${port}`,
      host,
      port,
      managementUrl,
      process: proc,
      addA: (name, addresses) => call('/add-a', { host: fqdn(name), addresses }),
      clearA: (name) => call('/clear-a', { host: fqdn(name) }),
      addAAAA: (name, addresses) => call('/add-aaaa', { host: fqdn(name), addresses }),
      clearAAAA: (name) => call('/clear-aaaa', { host: fqdn(name) }),
      setServfail: (name) => call('/set-servfail', { host: fqdn(name) }),
      clearServfail: (name) => call('/clear-servfail', { host: fqdn(name) }),
      resolve4: (name) => resolver.resolve4(name),
      stop: () => proc.stop(),
    };
  });
}
