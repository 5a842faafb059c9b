/**
 * ACME orders, authorizations and challenges (RFC 8555 §7.1.3–§7.5.1, §7.4).
 * The stored order status is pending → processing → valid | invalid; `ready`
 * and the expiry of pending objects are derived on read from the
 * authorizations and the clock, so no background job has to flip states.
 * Every transition is a compare-and-set in the store.
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { chainHash, type AuditLog } from '../../audit/audit-log.js';
import type { IssuedCertificate } from '../../ca/authority.js';
import type { CertificateRecord, CertificateRepository } from '../../ca/ports.js';
import type { Clock } from '../../clock/clock.js';
import { isPkiError, PkiError } from '../../errors/pki-error.js';
import { problemFor } from '../../errors/problem.js';
import type { Profile } from '../../profiles/types.js';
import type { DeviceRecord, DeviceRepository, ManufacturerCaRepository } from '../devices/ports.js';
import type { CheckedRequest, RegistrationAuthority } from '../registration.js';
import { RevocationAuthority } from '../revoke.js';
import { deviceBusy, enrollmentLeaseMs, PerKeyQueue } from '../devices/enrollment-lease.js';
import { checkDeviceProfile, revokeSuperseded, supersededBy } from './device-reprovision.js';
import { verifyDeviceAttestation } from './device-attest.js';
import { AccountKeyCache } from './account-key-cache.js';
import { identifiersOfSans, orderIdentifiers, sameIdentifiers } from './identifiers.js';
import type {
  AcmeAccountRecord,
  AcmeAuthorizationRecord,
  AcmeChallenge,
  AcmeOrderRecord,
  AcmeOrderRepository,
  AuthorizationStatus,
  ChallengeType,
  ChallengeValidator,
  Identifier,
  StoredProblem,
  ValidationVerdict,
} from './ports.js';
import type { PendingNonce } from './nonces.js';
import type { RateLimiter } from './rate-limit.js';
import { parseAriCertId } from './renewal-info.js';

/** RFC 8555 §7.1.6 order states as clients see them. */
export type OrderStatus = 'pending' | 'ready' | 'processing' | 'valid' | 'invalid';

export interface OrderView {
  order: AcmeOrderRecord;
  status: OrderStatus;
}

export interface AuthorizationView {
  authorization: AcmeAuthorizationRecord;
  status: AuthorizationStatus;
}

export interface NewOrderInput {
  identifiers: unknown;
  notBefore?: string | undefined;
  notAfter?: string | undefined;
  replaces?: string | undefined;
}

export interface OrderLimits {
  newOrdersPerAccount: RateLimiter;
  newOrdersPerAddress: RateLimiter;
  failedValidationsPerAccount: RateLimiter;
  failedValidationsPerAddress: RateLimiter;
}

export interface AcmeOrdersDeps {
  orders: AcmeOrderRepository;
  certificates: CertificateRepository;
  ra: RegistrationAuthority;
  validator: ChallengeValidator;
  audit: AuditLog;
  clock: Clock;
  profiles: ReadonlyMap<string, Profile>;
  limits: OrderLimits;
  orderLifetimeSeconds: number;
  authorizationLifetimeSeconds: number;
  /** Validations that finish within this are answered with their final state; slower ones get Retry-After. */
  syncValidationMs?: number;
  /** Issuer id of a CA by its key identifier (hex), for ARI certificate ids. */
  issuerByKeyId: (keyIdHex: string) => string | undefined;
  /** Is this directory closed to accounts without an external account binding for it? */
  eabAllows: (account: AcmeAccountRecord, directory: string) => Promise<boolean>;
  /** Where a validation that outlived its request reports a failure to store its result. */
  log: (event: Record<string, unknown>) => void;
  /**
   * The device registry and manufacturer CAs, for permanent-identifier orders
   * and device-attest-01; without them such orders are refused. `revocation`
   * revokes certificates a device's new one supersedes (policies reset and
   * migrate); without it, one without listeners (the OCSP responder and CRL
   * publisher then learn of it by polling the database).
   */
  devices?: {
    devices: Pick<DeviceRepository, 'find' | 'beginEnrollment' | 'endEnrollment' | 'setEnrollment'>;
    manufacturers: Pick<ManufacturerCaRepository, 'list'>;
    revocation?: Pick<RevocationAuthority, 'revoke'>;
  };
}

const challengeTypes: readonly ChallengeType[] = ['http-01', 'tls-alpn-01'];
/** draft-ietf-acme-device-attest: a device id is proven by attestation only. */
const deviceChallengeTypes: readonly ChallengeType[] = ['device-attest-01'];
/** `write` with the request's nonce recorded in its transaction (PendingNonce.with), or alone without one. */
const withNonce = <T>(nonce: PendingNonce | undefined, write: () => Promise<T>): Promise<T> => (nonce ? nonce.with(write) : write());

const newId = () => randomBytes(12).toString('base64url');
/** RFC 8555 §8.3: tokens carry at least 128 bits of entropy; 256 here. */
const newToken = () => randomBytes(32).toString('base64url');
const stored = (err: PkiError): StoredProblem => {
  const p = problemFor(err, 'acme');
  return { type: p.type, detail: p.detail, status: p.status };
};

/** An authorization's status at `now`: pending and valid ones past `expires` are expired (RFC 8555 §7.1.6). */
export function authorizationStatus(a: AcmeAuthorizationRecord, now: Date): AuthorizationStatus {
  return (a.status === 'pending' || a.status === 'valid') && a.expires <= now ? 'expired' : a.status;
}

/** An order's status from its stored status, its authorizations and the clock. */
export function orderStatus(o: AcmeOrderRecord, authzs: readonly AcmeAuthorizationRecord[], now: Date): OrderStatus {
  if (o.status !== 'pending') return o.status;
  if (o.expires <= now) return 'invalid';
  const states = authzs.map((a) => authorizationStatus(a, now));
  if (states.length !== o.authorizationIds.length || states.some((s) => s !== 'pending' && s !== 'valid')) return 'invalid';
  return states.every((s) => s === 'valid') ? 'ready' : 'pending';
}

export class AcmeOrders {
  private readonly inFlight = new Map<string, Promise<AcmeAuthorizationRecord | undefined>>();
  private readonly deviceFinalizes = new PerKeyQueue();

  constructor(private readonly deps: AcmeOrdersDeps) {}

  /** The account key as SPKI DER (finalize refuses CSRs with the account key). */
  private readonly accountSpkis = new AccountKeyCache((a) => createPublicKey({ key: JSON.parse(a.jwk), format: 'jwk' }).export({ type: 'spki', format: 'der' }));

  private profile(name: string): Profile {
    const p = this.deps.profiles.get(name);
    if (!p) throw new PkiError('notFound', `no ACME directory for profile "${name}"`);
    return p;
  }

  private owned<T extends { accountId: string }>(account: AcmeAccountRecord, item: T | null, what: string): T {
    if (!item) throw new PkiError('notFound', `no such ${what}`);
    // RFC 8555 §7.5: an account acts only on its own objects (as Boulder, unauthorized for another's).
    if (item.accountId !== account.id) throw new PkiError('unauthorized', `this ${what} belongs to another account`);
    return item;
  }

  private async view(order: AcmeOrderRecord): Promise<OrderView> {
    const authzs = order.status === 'pending' ? await this.deps.orders.findAuthorizations(order.authorizationIds) : [];
    return { order, status: orderStatus(order, authzs, this.deps.clock.now()) };
  }

  /** newOrder (RFC 8555 §7.4): reuses the account's valid (or pending) authorizations per identifier. */
  async newOrder(account: AcmeAccountRecord, directory: string, input: NewOrderInput, address: string, nonce?: PendingNonce): Promise<OrderView> {
    const profile = this.profile(directory);
    const eabFits = await this.deps.eabAllows(account, directory);
    const eabRequired = () => new PkiError('externalAccountRequired', `directory "${directory}" needs an account created with an external account binding for it`);
    if (!eabFits && !account.eabKeyId) throw eabRequired();
    const { newOrdersPerAccount, newOrdersPerAddress } = this.deps.limits;
    newOrdersPerAccount.check(account.id);
    newOrdersPerAddress.check(address);
    const identifiers = orderIdentifiers(input.identifiers, profile);
    // A device's EAB key is made for its registered profile's directory; checkDevice binds the account to the device,
    // which is what opens a device directory, so the key also serves the profile a migrate moves the device to (and back).
    if (!eabFits && !identifiers.every((i) => i.type === 'permanent-identifier')) throw eabRequired();
    for (const id of identifiers) if (id.type === 'permanent-identifier') await this.checkDevice(account, id.value, profile.name);
    const now = this.deps.clock.now();
    // The CA backdates notBefore itself (profile backdate); a client-chosen start is not supported.
    if (input.notBefore !== undefined) throw new PkiError('malformed', '"notBefore" is not supported; certificates start now (backdated by the profile)');
    let notAfter: Date | null = null;
    if (input.notAfter !== undefined) {
      notAfter = new Date(input.notAfter);
      if (Number.isNaN(notAfter.getTime()) || notAfter <= now) throw new PkiError('malformed', '"notAfter" must be an RFC 3339 time in the future');
      if (notAfter.getTime() - now.getTime() > profile.validity.maxSeconds * 1000) throw new PkiError('malformed', `"notAfter" is beyond the profile's ${profile.validity.maxSeconds} s maximum validity`);
    }
    if (input.replaces !== undefined) await this.checkReplaces(account, input.replaces);

    const orderExpires = new Date(now.getTime() + this.deps.orderLifetimeSeconds * 1000);
    const fresh: AcmeAuthorizationRecord[] = [];
    const authzs: AcmeAuthorizationRecord[] = [];
    let expires = orderExpires;
    for (const identifier of identifiers) {
      // Reuse only what outlives the new order's first hour, so an order is never born about to expire.
      // A device proves its key afresh in every order (the attested key is the certificate's).
      const reusable = identifier.type === 'permanent-identifier' ? null : await this.deps.orders.findReusableAuthorization(account.id, identifier, false, new Date(now.getTime() + 3600_000), true);
      const authz = reusable ?? this.newAuthorization(account, identifier, orderExpires, now);
      if (!reusable) fresh.push(authz);
      authzs.push(authz);
      if (authz.expires < expires) expires = authz.expires;
    }
    const order: AcmeOrderRecord = {
      id: newId(),
      accountId: account.id,
      profile: profile.name,
      status: 'pending',
      expires,
      identifiers,
      authorizationIds: authzs.map((a) => a.id),
      notBefore: null,
      notAfter,
      error: null,
      issuerId: null,
      certificateSerial: null,
      replaces: input.replaces ?? null,
      createdAt: now,
    };
    await withNonce(nonce, () => this.deps.orders.createOrder(order, fresh));
    newOrdersPerAccount.hit(account.id);
    newOrdersPerAddress.hit(address);
    return { order, status: orderStatus(order, authzs, now) };
  }

  /**
   * A permanent-identifier names a registered device that is neither disabled
   * nor retired, and the account was created with that device's EAB key (so
   * one device's key orders only that device). A profile other than the
   * device's registered one needs policy migrate.
   */
  private async checkDevice(account: AcmeAccountRecord, deviceId: string, profile: string): Promise<DeviceRecord> {
    if (!this.deps.devices) throw new PkiError('unsupportedIdentifier', 'this server has no device registry for permanent-identifier orders');
    const device = await this.deps.devices.devices.find(deviceId);
    if (!device) throw new PkiError('rejectedIdentifier', `device "${deviceId}" is not registered`);
    // The binding before the status: another account learns nothing of the device's status.
    if (!account.eabKeyId || device.eabKeyId !== account.eabKeyId) throw new PkiError('unauthorized', `this account was not created with the EAB key of device "${deviceId}"`);
    if (device.status === 'disabled' || device.status === 'retired') throw new PkiError('rejectedIdentifier', `device "${deviceId}" is ${device.status}`);
    checkDeviceProfile(device, profile);
    return device;
  }

  private newAuthorization(account: AcmeAccountRecord, identifier: Identifier, expires: Date, now: Date): AcmeAuthorizationRecord {
    return {
      id: newId(),
      accountId: account.id,
      identifier,
      wildcard: false,
      status: 'pending',
      expires,
      challenges: (identifier.type === 'permanent-identifier' ? deviceChallengeTypes : challengeTypes).map((type) => ({ type, token: newToken(), status: 'pending', validated: null, error: null })),
      createdAt: now,
    };
  }

  /** RFC 9773 §5: `replaces` names a certificate of this account that no other order replaces yet. */
  private async checkReplaces(account: AcmeAccountRecord, certId: string): Promise<void> {
    const { issuerKeyIdHex, serialHex } = parseAriCertId(certId);
    const issuerId = this.deps.issuerByKeyId(issuerKeyIdHex);
    const cert = issuerId ? await this.deps.certificates.findBySerial(issuerId, serialHex) : null;
    if (!cert || cert.status === 'pending' || cert.status === 'failed') throw new PkiError('malformed', '"replaces" names no certificate this server issued');
    if (cert.requestedVia !== 'acme' || cert.requestedBy !== account.id) throw new PkiError('unauthorized', '"replaces" names a certificate of another account');
    // An abandoned renewal order that expired no longer blocks the next one.
    if (await this.deps.orders.isReplaced(certId, undefined, this.deps.clock.now())) throw new PkiError('alreadyReplaced', 'another order already replaces that certificate');
  }

  async order(account: AcmeAccountRecord, id: string): Promise<OrderView> {
    return this.view(this.owned(account, await this.deps.orders.findOrder(id), 'order'));
  }

  /** RFC 8555 §7.1.2.1: the account's orders (newest first). */
  async orderIds(account: AcmeAccountRecord): Promise<string[]> {
    return (await this.deps.orders.listOrders(account.id, 1000)).map((o) => o.id);
  }

  async authorization(account: AcmeAccountRecord, id: string): Promise<AuthorizationView> {
    const a = this.owned(account, await this.deps.orders.findAuthorization(id), 'authorization');
    return { authorization: a, status: authorizationStatus(a, this.deps.clock.now()) };
  }

  /** RFC 8555 §7.5.2: a client may deactivate a pending or valid authorization. */
  async deactivateAuthorization(account: AcmeAccountRecord, id: string): Promise<AuthorizationView> {
    const { authorization: a, status } = await this.authorization(account, id);
    if (status !== 'pending' && status !== 'valid') throw new PkiError('malformed', `an authorization that is ${status} cannot be deactivated`);
    if (!(await this.deps.orders.updateAuthorization(a.id, a.status, { status: 'deactivated', challenges: a.challenges }))) {
      throw new PkiError('conflict', 'the authorization changed meanwhile; fetch it again');
    }
    return this.authorization(account, id);
  }

  /**
   * Responding to a challenge (RFC 8555 §7.5.1): validation starts at once;
   * when it ends within `syncValidationMs` the answer carries the final state,
   * otherwise `retryAfter` tells the client when to poll.
   */
  async respondChallenge(account: AcmeAccountRecord, authzId: string, type: string, address: string, payload?: unknown): Promise<{ view: AuthorizationView; challenge: AcmeChallenge; retryAfterSeconds?: number }> {
    let view = await this.authorization(account, authzId);
    const pick = (v: AuthorizationView) => {
      const c = v.authorization.challenges.find((ch) => ch.type === type);
      if (!c) throw new PkiError('notFound', `no ${type} challenge in this authorization`);
      return c;
    };
    const challenge = pick(view);
    if (view.status !== 'pending' || challenge.status !== 'pending') return { view, challenge };
    const attObj = (payload as { attObj?: unknown } | undefined)?.attObj;
    // draft-ietf-acme-device-attest §5: the response carries attObj; without it nothing can be validated.
    if (challenge.type === 'device-attest-01' && typeof attObj !== 'string') throw new PkiError('malformed', 'a device-attest-01 response carries "attObj": the base64url CBOR attestation object');
    const { failedValidationsPerAccount, failedValidationsPerAddress } = this.deps.limits;
    failedValidationsPerAccount.check(account.id);
    failedValidationsPerAddress.check(address);
    let run = this.inFlight.get(authzId);
    if (!run) {
      run = this.validate(account, view.authorization, challenge, address, attObj).finally(() => this.inFlight.delete(authzId));
      this.inFlight.set(authzId, run);
      // The request may have answered already (Retry-After); a failure to store the result must still be seen.
      run.catch((err: unknown) => this.deps.log({ level: 'error', msg: 'storing an ACME validation result failed', authorization: authzId, error: String(err) }));
    }
    const waitMs = this.deps.syncValidationMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    // `settled` never rejects: a failure after the answer went out is logged above, one before it is thrown here.
    const settled = run.then(
      (stored) => ({ stored }),
      (err: unknown) => ({ err }),
    );
    const outcome = await Promise.race([settled, new Promise<false>((r) => (timer = setTimeout(() => r(false), waitMs)))]);
    clearTimeout(timer);
    if (outcome !== false && 'err' in outcome) throw outcome.err;
    // The validation's own write says what is stored; a read only when another writer moved the authorization first, or it still runs.
    const stored = outcome === false ? undefined : outcome.stored;
    view = stored ? { authorization: stored, status: authorizationStatus(stored, this.deps.clock.now()) } : await this.authorization(account, authzId);
    return outcome !== false ? { view, challenge: pick(view) } : { view, challenge: { ...pick(view), status: 'processing' }, retryAfterSeconds: 1 };
  }

  /** device-attest-01 is checked here, against the registry's manufacturer CAs; no connection is made. */
  private async attest(authz: AcmeAuthorizationRecord, keyAuthorization: string, attObj: unknown): Promise<ValidationVerdict & { attestedSpki?: string }> {
    try {
      if (!this.deps.devices) throw new PkiError('unsupportedIdentifier', 'this server has no device registry');
      const manufacturerCas = await this.deps.devices.manufacturers.list();
      const r = verifyDeviceAttestation({ attObj, keyAuthorization, deviceId: authz.identifier.value, manufacturerCas, now: this.deps.clock.now() });
      return { status: 'valid', attestedSpki: r.attestedSpkiDer.toString('base64') };
    } catch (err) {
      if (!isPkiError(err)) throw err;
      return { status: 'invalid', error: { type: err.type, detail: err.message } };
    }
  }

  /** Validates and stores the verdict; returns the authorization as stored, or undefined when another writer moved it first. */
  private async validate(account: AcmeAccountRecord, authz: AcmeAuthorizationRecord, challenge: AcmeChallenge, address: string, attObj?: unknown): Promise<AcmeAuthorizationRecord | undefined> {
    let unexpected: string | undefined;
    const keyAuthorization = `${challenge.token}.${account.thumbprint}`;
    const verdict: ValidationVerdict & { attestedSpki?: string } = await (challenge.type === 'device-attest-01'
      ? this.attest(authz, keyAuthorization, attObj)
      : this.deps.validator.validate({ type: challenge.type, identifier: authz.identifier, token: challenge.token, keyAuthorization }))
      .catch((err: unknown) => {
        // The validator reports remote failures as verdicts; a throw is our bug: keep it in the audit log, not in the answer.
        unexpected = String((err as Error)?.message ?? err).slice(0, 500);
        return { status: 'invalid', error: { type: 'serverInternal', detail: 'validation failed unexpectedly' } };
      });
    const now = this.deps.clock.now();
    const ok = verdict.status === 'valid';
    const challenges = authz.challenges.map((c) =>
      c.type !== challenge.type
        ? c
        : { ...c, status: ok ? ('valid' as const) : ('invalid' as const), validated: ok ? now : null, error: ok ? null : stored(new PkiError(verdict.error.type, verdict.error.detail)), ...(ok && verdict.attestedSpki ? { attestedSpki: verdict.attestedSpki } : {}) },
    );
    // A valid authorization lives on for reuse; RFC 8555 §7.1.4 lets the server choose how long.
    const next: { status: 'valid' | 'invalid'; challenges: AcmeChallenge[]; expires?: Date } = ok
      ? { status: 'valid', challenges, expires: new Date(now.getTime() + this.deps.authorizationLifetimeSeconds * 1000) }
      : { status: 'invalid', challenges };
    // The move and its audit event commit together (one transaction, and on SQLite one fsync shared with the answer).
    const event = {
      at: now,
      type: ok ? 'acme.authorization_valid' : 'acme.authorization_invalid',
      actor: `acme:${account.id}`,
      data: {
        authorization: authz.id,
        identifier: `${authz.identifier.type}:${authz.identifier.value}`,
        challenge: challenge.type,
        ...(ok ? {} : { error: verdict.error.type, detail: verdict.error.detail }),
        ...(unexpected ? { unexpected } : {}),
      },
    };
    const won = await this.deps.orders.updateAuthorization(authz.id, 'pending', next, { drafts: [event], chain: chainHash });
    if (!won) return undefined;
    if (!ok) {
      this.deps.limits.failedValidationsPerAccount.hit(account.id);
      this.deps.limits.failedValidationsPerAddress.hit(address);
    }
    return { ...authz, status: next.status, challenges, expires: next.expires ?? authz.expires };
  }

  /**
   * finalize (RFC 8555 §7.4): the CSR goes through the same RA checks as the
   * REST API and must name exactly the order's identifiers; only then does
   * the order move to processing, and the CA issues. Device orders wait for
   * each other per device in this process, hold the device's enrollment lease
   * (shared with EST, across processes) and apply its reprovisioning policy.
   */
  async finalize(account: AcmeAccountRecord, orderId: string, csrDer: Buffer, nonce?: PendingNonce): Promise<OrderView> {
    const { order, status } = await this.order(account, orderId);
    if (status !== 'ready') throw new PkiError('orderNotReady', `order is ${status}, not ready`);
    if (order.identifiers.some((i) => i.type === 'permanent-identifier')) {
      // A device order takes the device's lease before its own write: the nonce first.
      await nonce?.record();
      return this.deviceFinalizes.run(order.identifiers[0]!.value, () => this.finalizeDevice(account, order, csrDer));
    }
    const checked = this.checkCsr(account, order, csrDer);
    this.checkSans(order, checked.request.sans);
    return this.complete(account, order, await this.issueOrder(order, checked, nonce));
  }

  /** The RA's checks of the CSR under the order's profile (and `issuer`, a device's registered CA), and a key that is not the account's. */
  private checkCsr(account: AcmeAccountRecord, order: AcmeOrderRecord, csrDer: Buffer, issuer?: string | null): CheckedRequest {
    const validitySeconds = order.notAfter ? Math.floor((order.notAfter.getTime() - this.deps.clock.now().getTime()) / 1000) : undefined;
    const checked = this.deps.ra.checkRequest({ profile: order.profile, csr: csrDer, requestedVia: 'acme', requestedBy: account.id, ...(validitySeconds ? { validitySeconds } : {}), ...(issuer ? { issuer } : {}) });
    // As Boulder does: a certificate key that is also the account key would let whoever holds one act as the other.
    if (checked.request.spkiDer.equals(this.accountSpkis.get(account))) {
      throw new PkiError('badCSR', 'the CSR uses the account key; certificates need a key of their own');
    }
    return checked;
  }

  /** Moves the order to processing and has the CA issue; a failure makes the order invalid. */
  private async issueOrder(order: AcmeOrderRecord, checked: CheckedRequest, nonce?: PendingNonce): Promise<IssuedCertificate> {
    if (!(await withNonce(nonce, () => this.deps.orders.updateOrder(order.id, 'pending', { status: 'processing' })))) {
      throw new PkiError('orderNotReady', 'the order is already being finalized');
    }
    try {
      // The ACME router holds the answer until the store's writes are on disk, so the CA need not wait for its completion's.
      return await this.deps.ra.issue({ ...checked, request: { ...checked.request, completionSettles: 'committed' } });
    } catch (err) {
      await this.deps.orders.updateOrder(order.id, 'processing', { status: 'invalid', error: stored(isPkiError(err) ? err : new PkiError('serverInternal', 'issuance failed')) });
      throw err;
    }
  }

  /** Records the certificate on the order, which becomes valid. */
  private async complete(account: AcmeAccountRecord, order: AcmeOrderRecord, issued: IssuedCertificate): Promise<OrderView> {
    const next = { status: 'valid' as const, issuerId: issued.issuerId, certificateSerial: issued.serialHex };
    // This request moved the order to processing, so the write normally wins; only then is the stored state known without a read.
    if (await this.deps.orders.updateOrder(order.id, 'processing', next)) return { order: { ...order, ...next }, status: 'valid' };
    return this.order(account, order.id);
  }

  /**
   * A device order, as EST enrolls (ra/devices/enroll.ts): under the
   * device's enrollment lease (one enrollment of a device at a time, EST or
   * ACME, across processes; `conflict` with Retry-After while another holds
   * it) the device is read as it now is (it may have been disabled, moved or
   * given a certificate since the order), the CSR names it and carries the
   * attested key, and its reprovisioning policy decides: `never` refuses
   * while it holds a valid certificate; `reset` and `migrate` revoke those as
   * `superseded` once the new one is issued; `migrate` may order under
   * another device profile, which then becomes the device's.
   */
  private async finalizeDevice(account: AcmeAccountRecord, order: AcmeOrderRecord, csrDer: Buffer): Promise<OrderView> {
    const devices = this.deps.devices;
    if (!devices) throw new PkiError('unsupportedIdentifier', 'this server has no device registry for permanent-identifier orders');
    const deviceId = order.identifiers[0]!.value;
    const now = this.deps.clock.now();
    const lease = { until: new Date(now.getTime() + enrollmentLeaseMs), at: now };
    const device = await devices.devices.beginEnrollment(deviceId, lease);
    if (device === 'busy') throw deviceBusy(deviceId);
    if (device === 'notFound') throw new PkiError('rejectedIdentifier', `device "${deviceId}" is not registered`);
    // Only a lease that uses a one-time secret can answer badSecret; this one carries none.
    if (device === 'badSecret') throw new Error(`device "${deviceId}": the enrollment lease refused a secret it was not given`);
    let issued: IssuedCertificate | undefined;
    try {
      if (device.status === 'disabled' || device.status === 'retired') throw new PkiError('rejectedIdentifier', `device "${deviceId}" is ${device.status}`);
      checkDeviceProfile(device, order.profile);
      const checked = this.checkCsr(account, order, csrDer, device.issuerId);
      await this.checkDeviceCsr(order, checked.request.subject.serialNumber, checked.request.spkiDer);
      checked.request = { ...checked.request, deviceId };
      const superseded = supersededBy(device, await this.deps.certificates.validForDevice(deviceId, now));
      const movedFrom = order.profile !== device.profile ? device.profile : undefined;

      issued = await this.issueOrder(order, checked);
      const view = await this.complete(account, order, issued);
      if (movedFrom) await devices.devices.setEnrollment(deviceId, order.profile, device.issuerId, now);
      const { certificates, audit, clock } = this.deps;
      const revocation = devices.revocation ?? new RevocationAuthority({ certificates, audit, clock });
      const revoked = await revokeSuperseded(revocation, deviceId, superseded);
      await this.deps.audit.record('device.enrolled', `device:${deviceId}`, {
        device: deviceId,
        method: 'device-attest-01',
        via: 'acme',
        account: account.id,
        issuer: issued.issuerId,
        serialHex: issued.serialHex,
        profile: issued.profile,
        ...(movedFrom ? { migratedFrom: movedFrom } : {}),
        ...(revoked.length ? { superseded: revoked } : {}),
      });
      return view;
    } finally {
      // Releases the lease; a device that got its first certificate becomes active, as after EST enrollment.
      await devices.devices.endEnrollment(deviceId, lease, { issued: issued !== undefined, at: this.deps.clock.now() });
    }
  }

  /** DNS and IP orders: the CSR names exactly the order's identifiers. */
  private checkSans(order: AcmeOrderRecord, sans: Parameters<typeof identifiersOfSans>[0]): void {
    const { identifiers, other } = identifiersOfSans(sans);
    if (other.length) throw new PkiError('badCSR', `the CSR names ${other.map((s) => `${s.type}:${s.value}`).join(', ')}, which ACME orders cannot authorize`);
    if (!sameIdentifiers(identifiers, order.identifiers)) {
      throw new PkiError('badCSR', `the CSR names ${identifiers.map((i) => i.value).join(', ') || 'nothing'}; the order is for ${order.identifiers.map((i) => i.value).join(', ')}`);
    }
  }

  /**
   * Device orders: the CSR's device id (the profile's rules took it from the
   * subject) is the ordered one, and its key is the key the device-attest-01
   * attestation vouched for.
   */
  private async checkDeviceCsr(order: AcmeOrderRecord, csrDeviceId: string | undefined, spkiDer: Buffer): Promise<void> {
    const deviceId = order.identifiers[0]!.value;
    if (csrDeviceId !== deviceId) throw new PkiError('badCSR', `the CSR names device "${(csrDeviceId ?? 'none').slice(0, 64)}"; the order is for "${deviceId}"`);
    const [authz] = await this.deps.orders.findAuthorizations(order.authorizationIds);
    const attested = authz?.challenges.find((c) => c.type === 'device-attest-01' && c.status === 'valid')?.attestedSpki;
    if (!attested) throw new PkiError('orderNotReady', 'the order has no valid device attestation');
    if (!spkiDer.equals(Buffer.from(attested, 'base64'))) throw new PkiError('badCSR', 'the CSR key is not the key the device attestation vouched for');
  }

  /** The certificate of one of the account's orders (RFC 8555 §7.4.2). */
  async certificate(account: AcmeAccountRecord, issuerId: string, serialHex: string): Promise<CertificateRecord> {
    const cert = await this.deps.certificates.findBySerial(issuerId, serialHex);
    if (!cert || !cert.der || cert.requestedVia !== 'acme') throw new PkiError('notFound', 'no such certificate');
    if (cert.requestedBy !== account.id) throw new PkiError('unauthorized', 'this certificate belongs to another account');
    return cert;
  }

  /** True when the account holds a valid authorization for every identifier (RFC 8555 §7.6, revocation by a third account). */
  async authorizedFor(account: AcmeAccountRecord, identifiers: readonly Identifier[]): Promise<boolean> {
    const now = this.deps.clock.now();
    for (const id of identifiers) {
      const a = await this.deps.orders.findReusableAuthorization(account.id, id, false, now, false);
      if (!a) return false;
    }
    return identifiers.length > 0;
  }
}
