/**
 * A TLS client handshake over an already checked TCP connection. The peer is
 * never authenticated: tls-alpn-01 certificates are self-signed by design
 * (RFC 8737 §4: the protocol "does not use the authentication method described
 * in [RFC5280]"), and http-01 redirects to https are followed without checking
 * the certificate, as Let's Encrypt does, because http-01 proves control by
 * the response body, not by the channel.
 */
import tls from 'node:tls';
import type { Budget } from './budget.js';
import { hostPort, type Connection } from './connect.js';
import { describeError, ValidationFailure } from './failure.js';

/** What to offer in the ClientHello. */
export interface HandshakeOptions {
  /** SNI host name (RFC 6066 §3); omitted when undefined. Never an address literal. */
  servername: string | undefined;
  /** ALPN protocol names to offer (RFC 7301). */
  alpnProtocols: string[];
}

/**
 * Runs the handshake on `conn.socket` and resolves with the TLS socket.
 * Failures of the TLS protocol are `tls`; a peer that drops the TCP
 * connection is `connection`.
 */
export function handshake(budget: Budget, conn: Connection, port: number, opts: HandshakeOptions): Promise<tls.TLSSocket> {
  const target = hostPort(conn.address, port);
  const sni = opts.servername ? ` (SNI ${opts.servername})` : '';
  return budget.step<tls.TLSSocket>(`in the TLS handshake with ${target}${sni}`, (resolve, reject) => {
    const socket = budget.track(
      tls.connect({
        socket: conn.socket,
        servername: opts.servername,
        ALPNProtocols: opts.alpnProtocols,
        // RFC 8737 §4: "MUST only negotiate TLS 1.2 [RFC5246] or higher".
        minVersion: 'TLSv1.2',
        rejectUnauthorized: false,
      }),
    );
    // Stays for the socket's life, like the TCP one in connect.ts.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      socket.destroy();
      const type = err.code?.startsWith('ERR_SSL_') || (err as { library?: string }).library !== undefined ? 'tls' : 'connection';
      reject(new ValidationFailure(type, `TLS handshake with ${target}${sni} failed: ${describeError(err)}`, { cause: err }));
    });
    socket.once('secureConnect', () => resolve(socket));
    return () => undefined;
  });
}
