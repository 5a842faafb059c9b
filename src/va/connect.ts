/**
 * Opens the TCP connection for one fetch or handshake. The host (a DNS name
 * or an address literal) is resolved once, every address goes through the
 * address policy, and the socket is opened to the checked address itself, so
 * a DNS server that changes its answer between the check and the connection
 * (DNS rebinding) changes nothing. The Host header and SNI still carry the
 * name: the callers set them. Each connection made is recorded.
 */
import net from 'node:net';
import type { AddressPolicy } from './address-policy.js';
import type { Budget } from './budget.js';
import { describeError, ValidationFailure } from './failure.js';
import type { LookupHost } from './resolve.js';
import type { ValidationRecord } from './types.js';

/** What a connection needs from the validation it belongs to. */
export interface ConnectContext {
  budget: Budget;
  policy: AddressPolicy;
  lookup: LookupHost;
  connectTimeoutMs: number;
  /** Every connection made is appended here, in order. */
  records: ValidationRecord[];
}

/** An open TCP connection and how it was reached. */
export interface Connection {
  socket: net.Socket;
  /** The address connected to. */
  address: string;
  /** Every address the host resolved to, IPv4 first. */
  addressesResolved: string[];
}

/** `host:port` with IPv6 literals in brackets (RFC 3986 §3.2.2). */
export const hostPort = (host: string, port: number): string => (net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`);

/**
 * Connects to `host:port`. Addresses on the deny list are skipped; of the
 * rest, the first IPv4 address is tried, then, if the connection could not be
 * made, the first IPv6 address (one attempt per family, as Boulder does, so a
 * name with many records cannot spend the budget). When nothing is left to
 * try the failure is `connection`, naming the denied addresses. `url` is
 * only for the record.
 */
export async function connect(ctx: ConnectContext, host: string, port: number, url?: string): Promise<Connection> {
  const addressesResolved = net.isIP(host) ? [host] : await ctx.lookup(host);
  const decisions = addressesResolved.map((a) => ctx.policy.check(a));
  const permitted = decisions.filter((d) => d.allowed).map((d) => d.address);
  const candidates = [permitted.find((a) => net.isIPv4(a)), permitted.find((a) => net.isIPv6(a))].filter((a): a is string => a !== undefined);
  if (candidates.length === 0) {
    const denied = decisions.map((d) => (d.allowed ? d.address : `${d.address} (${d.reason})`)).join(', ');
    const forName = net.isIP(host) ? '' : ` (the addresses of ${host})`;
    throw new ValidationFailure('connection', `refusing to connect to ${denied}${forName}: on the deny list of addresses the validator must not reach`);
  }
  const failures: string[] = [];
  for (const address of candidates) {
    try {
      const socket = await openTcp(ctx, address, port);
      ctx.records.push({ ...(url === undefined ? {} : { url }), hostname: host, port, addressesResolved, addressUsed: address });
      return { socket, address, addressesResolved };
    } catch (err) {
      // Only a failed TCP connection moves on to the other family; a spent budget ends the validation.
      if (!(err instanceof ValidationFailure) || ctx.budget.signal.aborted) throw err;
      failures.push(err.message);
    }
  }
  throw new ValidationFailure('connection', failures.join('; '));
}

/** One TCP connection to an address literal, bounded by the connect timeout and the budget. */
function openTcp(ctx: ConnectContext, address: string, port: number): Promise<net.Socket> {
  const target = hostPort(address, port);
  const timeoutMs = Math.max(1, Math.min(ctx.connectTimeoutMs, ctx.budget.remainingMs()));
  return ctx.budget.step<net.Socket>(`connecting to ${target}`, (resolve, reject) => {
    // An address literal as host: net.connect does no lookup.
    const socket = ctx.budget.track(net.connect({ host: address, port }));
    // This listener stays for the socket's life: after `connect` it turns a
    // late error into a destroyed socket instead of an uncaught exception
    // (the step that uses the socket sees the error through its own listener).
    socket.on('error', (err) => {
      socket.destroy();
      reject(new ValidationFailure('connection', `connecting to ${target} failed: ${describeError(err)}`, { cause: err }));
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ValidationFailure('connection', `connecting to ${target} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => resolve(socket));
    return () => clearTimeout(timer);
  });
}
