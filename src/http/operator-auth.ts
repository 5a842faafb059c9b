/**
 * Mutual TLS for operators (issue 12): a client certificate of the
 * `operator` profile, presented on a `serve --tls` connection, is a
 * credential for the admin API. It is accepted only when
 *
 * 1. the leaf is byte for byte a certificate one of our issuing CAs stored
 *    (so we issued exactly this one: its serial, subject and key),
 * 2. its signature verifies under that CA's key (the stored row alone is
 *    not trusted to be the certificate the CA signed),
 * 3. its stored row says profile `operator` and status valid, and now is
 *    inside its validity (a revocation refuses it from the next request),
 * 4. its subject OU names a role.
 *
 * The TLS handshake already proved possession of the leaf's private key
 * (RFC 8446 §4.4.3). The server asks for a certificate without requiring one
 * (`requestCert`, no `rejectUnauthorized`), so this check is the only one.
 */
import { createPublicKey } from 'node:crypto';
import type { Request } from 'express';
import type { TLSSocket } from 'node:tls';
import type { CaRecord } from '../ca/ports.js';
import type { Clock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import { parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { verifySignature } from '../pki/signature.js';
import type { AdminQueries } from '../store/admin-queries.js';
import { canonicalRole, isRoleName } from '../tokens/roles.js';
import type { CertificateAuthenticator, Principal } from './auth.js';

/** The profile whose certificates are operator credentials. */
export const operatorProfile = 'operator';

/** What {@link operatorAuthenticator} reads. */
export interface OperatorAuthDeps {
  queries: Pick<AdminQueries, 'certificatesBySerial'>;
  /** The CAs as last loaded (issuing ones sign operator certificates). */
  cas: () => readonly CaRecord[];
  clock: Clock;
}

/** The DER of the client certificate of a TLS request, or null. */
function clientCertificateDer(req: Request): Buffer | null {
  const sock = req.socket as Partial<TLSSocket>;
  if (!sock.encrypted || typeof sock.getPeerCertificate !== 'function') return null;
  const peer = sock.getPeerCertificate(false);
  return peer && peer.raw ? peer.raw : null;
}

const refuse = (why: string) => new PkiError('unauthorized', `client certificate refused: ${why}`);

/** Builds the authenticator; null when the request carries no client certificate. */
export function operatorAuthenticator(deps: OperatorAuthDeps): CertificateAuthenticator {
  return async (req): Promise<Principal | null> => {
    const der = clientCertificateDer(req);
    if (!der) return null;
    let leaf: ParsedCertificate;
    try {
      leaf = parseCertificate(der);
    } catch (err) {
      throw new PkiError('unauthorized', 'client certificate refused: not a certificate Trellis can read', { cause: err });
    }
    // Step 1: a certificate one of our issuing CAs stored, exactly this one.
    const issuing = deps.cas().filter((c) => c.role === 'issuing');
    let row: Awaited<ReturnType<AdminQueries['certificatesBySerial']>>[number] | undefined;
    let ca: CaRecord | undefined;
    for (const c of issuing) {
      const [r] = await deps.queries.certificatesBySerial(leaf.serialHex, c.id);
      if (r?.der && r.der.equals(der)) {
        row = r;
        ca = c;
        break;
      }
    }
    if (!row || !ca) throw refuse(`serial ${leaf.serialHex} is not a certificate this instance issued`);
    // Step 2: the CA's signature over it.
    const caKey = createPublicKey({ key: parseCertificate(ca.certDer).spkiDer, format: 'der', type: 'spki' });
    if (!verifySignature(leaf.signatureAlgorithm.oid, caKey, leaf.tbsDer, leaf.signature, 'client certificate')) throw refuse(`serial ${leaf.serialHex} does not verify under CA ${ca.id}`);
    // Step 3: an operator certificate, valid now.
    if (row.profile !== operatorProfile) throw refuse(`serial ${leaf.serialHex} is a ${row.profile} certificate, not an ${operatorProfile} one`);
    if (row.status !== 'valid') throw refuse(`certificate ${leaf.serialHex} is ${row.status}`);
    const now = deps.clock.now().getTime();
    if (now < row.notBefore.getTime() || now >= row.notAfter.getTime()) throw refuse(`certificate ${leaf.serialHex} is outside its validity`);
    // Step 4: the role its OU names.
    const ou = leaf.subject.filter((e) => e.type === 'OU').map((e) => e.value);
    if (ou.length !== 1 || !isRoleName(ou[0]!)) throw refuse(`its subject OU must be exactly one role (got ${ou.length === 0 ? 'none' : ou.join(', ')})`);
    return { id: `cert:${leaf.serialHex}`, role: canonicalRole(ou[0]!), via: 'certificate', profiles: null };
  };
}
