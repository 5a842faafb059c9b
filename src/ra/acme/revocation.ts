/**
 * ACME revokeCert (RFC 8555 §7.6) and renewal information (RFC 9773) for the
 * certificates this server issued. Revocation is allowed to the account that
 * ordered the certificate, to an account holding valid authorizations for all
 * of its identifiers, or to whoever signs with the certificate's own key.
 */
import type { CertificateRecord, CertificateRepository } from '../../ca/ports.js';
import type { Clock } from '../../clock/clock.js';
import { PkiError } from '../../errors/pki-error.js';
import { findExtension, parseCertificate } from '../../pki/certificate.js';
import { crlReasonName, type CrlReasonName } from '../../pki/crl-reason.js';
import { readOne } from '../../pki/der.js';
import { parseGeneralNames } from '../../pki/general-name.js';
import { OID } from '../../pki/oids.js';
import type { RevocationAuthority, RevokeResult } from '../revoke.js';
import { identifiersOfSans } from './identifiers.js';
import type { AcmeOrders } from './orders.js';
import type { AcmeAccountRecord, RenewalWindowRepository } from './ports.js';
import { parseAriCertId, suggestedWindow, type RenewalWindow } from './renewal-info.js';

/**
 * Reasons a subscriber may give over ACME: certificateHold would need an
 * operator to lift it, removeFromCRL is not a revocation, and the CA and AA
 * compromise reasons are the operator's to state.
 */
const subscriberReasons: readonly CrlReasonName[] = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'privilegeWithdrawn'];

/** Who signed the revokeCert request. */
export type Revoker = { kind: 'account'; account: AcmeAccountRecord } | { kind: 'certificateKey'; spkiDer: Buffer };

export class AcmeRevocation {
  constructor(
    private readonly deps: {
      certificates: CertificateRepository;
      revocation: RevocationAuthority;
      orders: AcmeOrders;
      windows: RenewalWindowRepository;
      clock: Clock;
      issuerByKeyId: (keyIdHex: string) => string | undefined;
    },
  ) {}

  private async record(certDer: Buffer): Promise<CertificateRecord> {
    const cert = parseCertificate(certDer);
    const found = (await this.deps.certificates.findBySerialAnyIssuer(cert.serialHex)).find((c) => c.der && c.der.equals(certDer));
    if (!found) throw new PkiError('notFound', 'this server did not issue that certificate');
    return found;
  }

  /** revokeCert: checks who asks and the reason, then revokes through the one revocation path. */
  async revoke(revoker: Revoker, certDer: Buffer, reasonCode: number | undefined): Promise<RevokeResult> {
    const reason = crlReasonName(reasonCode ?? 0);
    if (!reason || !subscriberReasons.includes(reason)) {
      throw new PkiError('badRevocationReason', `reason ${reasonCode} is not allowed over ACME (allowed: ${subscriberReasons.join(', ')})`);
    }
    const cert = await this.record(certDer);
    let by: string;
    if (revoker.kind === 'certificateKey') {
      if (!parseCertificate(certDer).spkiDer.equals(revoker.spkiDer)) throw new PkiError('unauthorized', 'the request is not signed with the certificate\'s key');
      by = 'acme:certificate-key';
    } else {
      const owner = cert.requestedVia === 'acme' && cert.requestedBy === revoker.account.id;
      if (!owner && !(await this.deps.orders.authorizedFor(revoker.account, identifiersOf(certDer)))) {
        throw new PkiError('unauthorized', 'this account neither ordered the certificate nor holds valid authorizations for all of its identifiers');
      }
      by = `acme:${revoker.account.id}`;
    }
    return this.deps.revocation.revoke({ serialHex: cert.serialHex, issuerId: cert.issuerId, reason, by, via: 'acme' });
  }

  /** RFC 9773 §4.2: the suggested renewal window of a certificate by its ARI id. */
  async renewalInfo(certId: string): Promise<RenewalWindow> {
    const { issuerKeyIdHex, serialHex } = parseAriCertId(certId);
    const issuerId = this.deps.issuerByKeyId(issuerKeyIdHex);
    const cert = issuerId ? await this.deps.certificates.findBySerial(issuerId, serialHex) : null;
    if (!cert || (cert.status !== 'valid' && cert.status !== 'revoked')) throw new PkiError('notFound', 'no certificate with that ARI identifier');
    const override = await this.deps.windows.windowOf(cert.issuerId, cert.serialHex);
    return suggestedWindow({ notBefore: cert.notBefore, notAfter: cert.notAfter, revoked: cert.status === 'revoked' }, override, this.deps.clock.now());
  }
}

/** The DNS and IP identifiers of a certificate's SAN extension. */
function identifiersOf(certDer: Buffer) {
  const ext = findExtension(parseCertificate(certDer), OID.subjectAltName);
  return ext ? identifiersOfSans(parseGeneralNames(readOne(ext.valueDer))).identifiers : [];
}
