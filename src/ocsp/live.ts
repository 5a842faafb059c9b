/**
 * The last layer of the responder: reads each certificate's status from the
 * store and signs a response now, through the CA's responder signer (which
 * lints the ResponseData against the expectations given here before it
 * signs). It answers every nonce or multi-certificate request (RFC 8954: a
 * nonce response is never reused) and signs what the cache misses.
 */
import type { CertificateRepository, CertificateStatusRow } from '../ca/ports.js';
import type { Clock } from '../clock/clock.js';
import type { OcspExpectations } from '../lint/ocsp.js';
import type { CertId, OcspRequest } from './request.js';
import { signedResponse, type SingleResponseInput, type SingleStatus } from './response.js';
import { presignedOf, type OcspResult, type OcspSource, type PresignedResponse, type ServedCa } from './source.js';

/** The responder cannot sign now (its certificate has expired): answered with tryLater. */
export class ResponderUnavailable extends Error {}

/** What OCSP says for a store record (RFC 6960 §2.2). */
export function toStatus(row: CertificateStatusRow | null): SingleStatus {
  if (!row) return { status: 'unknown' };
  switch (row.status) {
    case 'valid':
      return { status: 'good' };
    case 'revoked':
      // revokedAt is always set with status revoked (store invariant); epoch only if a row breaks it (the CA's lint then refuses to sign).
      return { status: 'revoked', revokedAt: row.revokedAt ?? new Date(0), reason: row.revocationReason };
    case 'pending':
    case 'failed':
      // RFC 6960 §2.2: never issued (or not yet), so unknown.
      return { status: 'unknown' };
  }
}

const floorSecond = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);

export interface LiveOptions {
  certificates: Pick<CertificateRepository, 'statusOf'>;
  clock: Clock;
  /** nextUpdate − thisUpdate of good and revoked responses. */
  validitySeconds: number;
  /** nextUpdate − thisUpdate of `unknown` responses. */
  unknownValiditySeconds: number;
}

/** Looks up status and signs; see the module comment. */
export class LiveSource implements OcspSource {
  #signed = 0;

  constructor(private readonly o: LiveOptions) {}

  /** Responses signed since start (live, on a cache miss and by the refresh). */
  get signed(): number {
    return this.#signed;
  }

  /** Reads every CertID's status and signs one response for them all, echoing the nonce. */
  async answer(req: OcspRequest, ca: ServedCa): Promise<OcspResult> {
    const nowMs = this.o.clock.now().getTime();
    const rows = await Promise.all(req.certIds.map((c) => this.o.certificates.statusOf(ca.id, c.serialHex)));
    const singles: SingleResponseInput[] = req.certIds.map((c, i) => {
      const status = toStatus(rows[i]!);
      return { certIdDer: c.der, status, ...this.times(ca, nowMs, status) };
    });
    const der = await signedResponse(ca.signer, floorSecond(nowMs), singles, req.nonce, this.expectations(ca, nowMs, req.certIds.map((c, i) => ({ serialHex: c.serialHex, record: rows[i] ?? null }))));
    this.#signed++;
    return { der, cache: null };
  }

  /** Signs the response for one certificate whose store record the caller has read (`record`), as of `nowMs`, without a nonce. */
  async single(ca: ServedCa, certId: Pick<CertId, 'der' | 'serialHex' | 'hash'>, record: CertificateStatusRow | null, nowMs: number): Promise<PresignedResponse> {
    const status = toStatus(record);
    const { thisUpdate, nextUpdate } = this.times(ca, nowMs, status);
    const der = await signedResponse(ca.signer, thisUpdate, [{ certIdDer: certId.der, status, thisUpdate, nextUpdate }], null, this.expectations(ca, nowMs, [{ serialHex: certId.serialHex, record }]));
    this.#signed++;
    return presignedOf(der, thisUpdate, nextUpdate, certId.hash);
  }

  private times(ca: ServedCa, nowMs: number, status: SingleStatus): { thisUpdate: Date; nextUpdate: Date } {
    if (nowMs >= ca.signerNotAfter.getTime() - 1000) throw new ResponderUnavailable(`the OCSP responder certificate of ${ca.id} has expired; renew it`);
    const thisUpdate = floorSecond(nowMs);
    const seconds = status.status === 'unknown' ? this.o.unknownValiditySeconds : this.o.validitySeconds;
    // A response never outlives the certificate that signs it.
    const nextUpdate = floorSecond(Math.min(thisUpdate.getTime() + seconds * 1000, ca.signerNotAfter.getTime()));
    return { thisUpdate, nextUpdate };
  }

  /** What the lint expects of a response of `ca` signed at `nowMs` about these certificates. */
  private expectations(ca: ServedCa, nowMs: number, singles: OcspExpectations['singles']): OcspExpectations {
    return { ...ca.lint, now: new Date(nowMs), singles, maxValiditySeconds: this.o.validitySeconds };
  }
}
