/**
 * The serving parts that move the metrics' counters, as thin subclasses and
 * a repository wrapper built by the wiring (src/cmd/server.ts): each calls
 * the real part and counts what it did. Nothing here decides anything.
 */
import type { IssuedCertificate } from '../ca/authority.js';
import { PkiError, isPkiError } from '../errors/pki-error.js';
import { OcspResponder, type OcspResult } from '../ocsp/responder.js';
import type { AcmeOrderRepository } from '../ra/acme/ports.js';
import { DeviceEnrollment, type DeviceAuth, type Enrolled, type EnrollInput } from '../ra/devices/enroll.js';
import { RegistrationAuthority, type CheckedRequest } from '../ra/registration.js';
import { normaliseSerial, RevocationAuthority, type RevokeInput, type RevokeResult } from '../ra/revoke.js';
import type { ServeMetrics } from './serve-metrics.js';

/** The RA, counting every certificate it has the CA issue (API, ACME and EST all end in `issue`). */
export class CountedRegistrationAuthority extends RegistrationAuthority {
  constructor(
    deps: ConstructorParameters<typeof RegistrationAuthority>[0],
    private readonly metrics: Pick<ServeMetrics, 'certificateIssued'>,
  ) {
    super(deps);
  }

  override async issue(checked: CheckedRequest): Promise<IssuedCertificate> {
    const issued = await super.issue(checked);
    this.metrics.certificateIssued(issued);
    return issued;
  }
}

/** The revocation authority, counting revocations (and holds) by CA and profile; lifting a hold is not counted. */
export class CountedRevocationAuthority extends RevocationAuthority {
  readonly #deps: ConstructorParameters<typeof RevocationAuthority>[0];

  constructor(
    deps: ConstructorParameters<typeof RevocationAuthority>[0],
    private readonly metrics: Pick<ServeMetrics, 'certificateRevoked'>,
  ) {
    super(deps);
    this.#deps = deps;
  }

  override async revoke(input: RevokeInput): Promise<RevokeResult> {
    // The profile is read first, so a failed read fails the request before anything changes (revoke reads the same rows).
    const records = await this.#deps.certificates.findBySerialAnyIssuer(normaliseSerial(input.serialHex));
    const r = await super.revoke(input);
    if (r.status === 'revoked') {
      const record = records.find((c) => c.issuerId === r.issuerId);
      this.metrics.certificateRevoked({ issuerId: r.issuerId, profile: record?.profile ?? 'unknown' });
    }
    return r;
  }
}

/** Device enrollment over EST, counting each enrollment by result (ACME device orders are counted as ACME orders). */
export class CountedDeviceEnrollment extends DeviceEnrollment {
  constructor(
    deps: ConstructorParameters<typeof DeviceEnrollment>[0],
    private readonly metrics: Pick<ServeMetrics, 'estEnrollment'>,
  ) {
    super(deps);
  }

  override async enroll(input: EnrollInput): Promise<Enrolled> {
    try {
      const r = await super.enroll(input);
      if (input.via === 'est') this.metrics.estEnrollment('issued');
      return r;
    } catch (err) {
      // A refusal (PkiError) was counted by `refused`, which enroll calls.
      if (input.via === 'est' && !isPkiError(err)) this.metrics.estEnrollment('error');
      throw err;
    }
  }

  /** Counts the refusal by its error type, then audits it (also those the EST front end makes before `enroll`). */
  override async refused(auth: DeviceAuth, via: EnrollInput['via'], err: PkiError, claimed?: string): Promise<void> {
    if (via === 'est') this.metrics.estEnrollment(err.type);
    return super.refused(auth, via, err, claimed);
  }
}

/**
 * The OCSP responder, counting each answer by what it says. Requests the
 * HTTP layer refuses before asking the responder (a GET path that is not
 * base64, GET /ocsp without a request) are not in this count.
 */
export class CountedOcspResponder extends OcspResponder {
  constructor(
    opts: ConstructorParameters<typeof OcspResponder>[0],
    private readonly metrics: Pick<ServeMetrics, 'ocspAnswered'>,
  ) {
    super(opts);
  }

  // Not an async function: each promise and await on the way costs.
  override answer(requestDer: Buffer): Promise<OcspResult> {
    return super.answer(requestDer).then(this.counted);
  }

  override answerCached(requestDer: Buffer): OcspResult | undefined {
    const r = super.answerCached(requestDer);
    return r === undefined ? undefined : this.counted(r);
  }

  private readonly counted = (r: OcspResult): OcspResult => {
    this.metrics.ocspAnswered(r.der, r.cache?.etag);
    return r;
  };
}

/** The ACME order repository, counting each order stored as created (its first state) or moved into a state. */
export function countedAcmeOrders(orders: AcmeOrderRepository, metrics: Pick<ServeMetrics, 'acmeOrderEntered'>): AcmeOrderRepository {
  const counted: Pick<AcmeOrderRepository, 'createOrder' | 'updateOrder' | 'settleProcessing'> = {
    async createOrder(order, authorizations) {
      await orders.createOrder(order, authorizations);
      metrics.acmeOrderEntered(order.status);
    },
    async updateOrder(id, expected, next) {
      const moved = await orders.updateOrder(id, expected, next);
      if (moved) metrics.acmeOrderEntered(next.status);
      return moved;
    },
    async settleProcessing(settlements, audit) {
      const moved = await orders.settleProcessing(settlements, audit);
      for (const s of moved) metrics.acmeOrderEntered(s.next.status);
      return moved;
    },
  };
  return new Proxy(orders, {
    get(target, prop) {
      if (prop in counted) return counted[prop as keyof typeof counted];
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
