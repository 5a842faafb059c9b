/**
 * tls-alpn-01 (RFC 8737 §3; RFC 8738 §6 for IP identifiers): a TLS handshake
 * to the identifier on the configured port (443 by default) offering only
 * ALPN "acme-tls/1" and SNI naming the identifier, then a look at the
 * certificate. No application data is exchanged (RFC 8737 §4: the client
 * "MUST immediately close the connection").
 */
import { checkAcmeTlsCertificate } from './acme-tls-certificate.js';
import { connect, hostPort, type ConnectContext } from './connect.js';
import { ValidationFailure } from './failure.js';
import { reverseDnsName, type ValidationTarget } from './request.js';
import { handshake } from './tls-handshake.js';

/** The ALPN protocol id of RFC 8737 §6.2. */
export const ACME_TLS_ALPN = 'acme-tls/1';

/** Validates one tls-alpn-01 challenge; throws a ValidationFailure, else returns the address that answered. */
export async function validateTlsAlpn01(ctx: ConnectContext, target: ValidationTarget, keyAuthorization: string, port: number): Promise<string> {
  const host = target.type === 'dns' ? target.name : target.address;
  const servername = target.type === 'dns' ? target.name : reverseDnsName(target.bytes);
  const conn = await connect(ctx, host, port);
  const from = `${hostPort(conn.address, port)} (SNI ${servername})`;
  const socket = await handshake(ctx.budget, conn, port, { servername, alpnProtocols: [ACME_TLS_ALPN] });
  try {
    if (socket.alpnProtocol !== ACME_TLS_ALPN) {
      throw new ValidationFailure('tls', `${from} did not negotiate ALPN ${ACME_TLS_ALPN} (negotiated ${socket.alpnProtocol ? JSON.stringify(socket.alpnProtocol) : 'none'})`);
    }
    // RFC 8737 §3 checks the end-entity certificate only; `raw` is its DER.
    const certDer = socket.getPeerCertificate(false).raw as Buffer | undefined;
    if (!certDer?.length) throw new ValidationFailure('tls', `${from} presented no certificate`);
    checkAcmeTlsCertificate(certDer, target, keyAuthorization, from);
    return conn.address;
  } finally {
    socket.destroy();
  }
}
