/**
 * DNS for the validator: A then AAAA (RFC 8555 §8.3 leaves the choice of
 * address to the server; IPv4 first is Trellis's order) through one
 * `dns.promises.Resolver` per validation, so that the deadline can cancel its
 * queries without touching other validations. The system resolver's
 * `getaddrinfo` is never used: it would read /etc/hosts and could not be
 * cancelled.
 */
import { isIP } from 'node:net';
import { Resolver } from 'node:dns/promises';
import { PkiError } from '../errors/pki-error.js';
import type { Budget } from './budget.js';
import { describeError, ValidationFailure } from './failure.js';

/** Returns every address of a name, IPv4 first; rejects with a `dns` ValidationFailure. */
export type LookupHost = (name: string) => Promise<string[]>;

/**
 * Parses the `resolver` option: `HOST:PORT`, `[V6]:PORT` or a bare address
 * (port 53), to the form `Resolver.setServers` takes. Node would wrap an
 * out-of-range port silently, so the port is checked here. Throws `invalidConfig`.
 */
export function parseResolverAddress(text: string): string {
  const bad = (why: string) => new PkiError('invalidConfig', `resolver "${text}": ${why}; expected HOST:PORT, [IPV6]:PORT or an address`);
  let host = text;
  let port = '53';
  const v6 = text.match(/^\[([^\]]+)\](?::(\d+))?$/);
  const v4 = text.match(/^([^:]+):(\d+)$/);
  if (v6) [host, port] = [v6[1]!, v6[2] ?? '53'];
  else if (v4) [host, port] = [v4[1]!, v4[2]!];
  if (isIP(host) === 0 || host.includes('%')) throw bad(`"${host}" is not an IP address`);
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw bad(`port ${port} is out of range`);
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Per-try timeout and tries for c-ares; the validation's budget bounds the total anyway. */
const DNS_TRY_MS = 2_000;
const DNS_TRIES = 2;

/** Error codes that mean "the name has no such records", as opposed to "the lookup failed". */
const NO_DATA = new Set(['ENODATA', 'ENOTFOUND']);

/**
 * Makes the lookup function for one validation. Answers are cached for the
 * validation, so a redirect back to the same host reuses the checked
 * addresses rather than asking again (a rebinding DNS server gets one answer).
 */
export function createLookup(server: string | undefined, budget: Budget): { lookup: LookupHost; close(): void } {
  const resolver = new Resolver({ timeout: DNS_TRY_MS, tries: DNS_TRIES });
  if (server) resolver.setServers([server]);
  const via = server ? ` from ${server}` : '';
  const onAbort = () => resolver.cancel();
  budget.signal.addEventListener('abort', onAbort, { once: true });
  const cache = new Map<string, Promise<string[]>>();

  const query = async (name: string): Promise<string[]> => {
    budget.check(`resolving ${name}`);
    const [a, aaaa] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
    budget.check(`resolving ${name}`);
    const addresses = [...(a.status === 'fulfilled' ? a.value : []), ...(aaaa.status === 'fulfilled' ? aaaa.value : [])];
    if (addresses.length) return addresses;
    const code = (r: PromiseSettledResult<string[]>) => (r.status === 'rejected' ? ((r.reason as NodeJS.ErrnoException).code ?? describeError(r.reason)) : 'ENODATA');
    const [ca, caaaa] = [code(a), code(aaaa)];
    if (ca === 'ENOTFOUND' || caaaa === 'ENOTFOUND') throw new ValidationFailure('dns', `${name} does not exist (NXDOMAIN${via})`);
    if (NO_DATA.has(ca) && NO_DATA.has(caaaa)) throw new ValidationFailure('dns', `no A or AAAA records for ${name}${via}`);
    throw new ValidationFailure('dns', `resolving ${name}${via} failed: A ${ca}, AAAA ${caaaa}`);
  };

  return {
    lookup(name) {
      let p = cache.get(name);
      if (!p) cache.set(name, (p = query(name)));
      return p;
    },
    close() {
      budget.signal.removeEventListener('abort', onAbort);
      resolver.cancel();
    },
  };
}
