/**
 * The listening socket: HTTP or HTTPS with the connection limits of
 * limits.ts, and a graceful close for shutdown.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { applyServerLimits, ConnectionsPerAddress, defaultConnectionLimits, serverOptions, type ConnectionLimits } from './limits.js';
import { wireConnections, type WireConnections, type WireHandler } from './wire.js';

export interface RunningServer {
  server: http.Server | https.Server;
  url: string;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), then closes idle sockets. */
  close(graceMs?: number): Promise<void>;
}

/** Starts HTTP or HTTPS on host:port and tracks sockets for graceful shutdown. */
export async function listen(
  handler: http.RequestListener,
  opts: {
    host: string;
    port: number;
    tls?: { certPem: string; keyPem: string } | (() => https.ServerOptions);
    /** Header size and count, slow-client timeouts, connection caps (limits.ts); absent = the timeouts Trellis always had and Node's header limits. */
    limits?: ConnectionLimits;
    /**
     * Plain HTTP only (ignored with `tls`): requests this handler answers are read and answered below node:http
     * (wire.ts); every other connection, and a connection from its first request this path does not take, is node's.
     */
    wire?: WireHandler;
  },
): Promise<RunningServer> {
  const limits = opts.limits ?? defaultConnectionLimits;
  const options = serverOptions(limits);
  const server = opts.tls
    ? https.createServer({ ...options, ...(typeof opts.tls === 'function' ? opts.tls() : { cert: opts.tls.certPem, key: opts.tls.keyPem }) }, handler)
    : http.createServer(options, handler);
  applyServerLimits(server, limits);
  const perAddress = new ConnectionsPerAddress(limits.maxConnectionsPerAddress, limits.exempt);
  // Node lists an HTTP connection as it is accepted (closeAllConnections), a TLS one only once its handshake is done:
  // TLS sockets are also kept here, so that the forced close reaches those still in a handshake.
  const tlsSockets = opts.tls ? new Set<Socket>() : undefined;
  const wire = opts.wire && !opts.tls ? rawPath(server, opts.wire, limits, perAddress) : undefined;
  if (!wire && (perAddress.capped || tlsSockets)) {
    server.on('connection', (s: Socket) => {
      // A peer over its cap is closed unanswered: nothing has been read, and with TLS nothing could be said yet.
      if (!perAddress.admit(s)) {
        s.destroy();
        return;
      }
      if (tlsSockets) {
        tlsSockets.add(s);
        s.on('close', () => tlsSockets.delete(s));
      }
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    server,
    url: `${opts.tls ? 'https' : 'http'}://${host}:${port}`,
    close: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        wire?.closeIdle();
        const t = setTimeout(() => {
          server.closeAllConnections();
          wire?.destroyAll();
          tlsSockets?.forEach((s) => s.destroy());
        }, graceMs);
        t.unref();
      }),
  };
}

/**
 * Puts the raw path in front of node's own `connection` listener: each admitted socket is read by wire.ts first,
 * which hands it to node's listener (with the bytes it read put back) at the first request it does not answer.
 */
function rawPath(server: http.Server, handler: WireHandler, limits: ConnectionLimits, perAddress: ConnectionsPerAddress): WireConnections {
  const nodeListeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  const handOver = (socket: Socket) => {
    for (const l of nodeListeners) l.call(server, socket);
  };
  const wire = wireConnections(handler, limits, handOver);
  server.on('connection', (s: Socket) => {
    if (perAddress.capped && !perAddress.admit(s)) {
      s.destroy();
      return;
    }
    wire.accept(s);
  });
  return wire;
}
