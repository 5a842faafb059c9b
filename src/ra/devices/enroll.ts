/**
 * Device enrollment policy (issue 10): who may have a certificate issued for
 * which registered device, whatever the protocol (EST today). A device proves
 * who it is with its one-time enrollment secret, with its factory identity
 * (an IDevID chaining to a registered manufacturer CA) or, to renew, with its
 * current Trellis certificate; the CSR's device id must be that device's.
 * Every enrollment and refusal is audited (never the secret).
 */
import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';
import type { AuditLog } from '../../audit/audit-log.js';
import type { IssuedCertificate } from '../../ca/authority.js';
import type { CertificateRepository } from '../../ca/ports.js';
import type { Clock } from '../../clock/clock.js';
import { isPkiError, PkiError } from '../../errors/pki-error.js';
import { parseCertificate } from '../../pki/certificate.js';
import type { PublicKeyInfo } from '../../pki/public-key.js';
import type { RegistrationAuthority } from '../registration.js';
import type { RevocationAuthority } from '../revoke.js';
import { deviceBusy, enrollmentLeaseMs, PerKeyQueue } from './enrollment-lease.js';
import type { DeviceRecord, DeviceRepository, ManufacturerCaRepository } from './ports.js';

/** How the device authenticated. Certificate chains are DER, leaf first, as presented in the TLS handshake. */
export type DeviceAuth =
  | { method: 'secret'; deviceId: string; secret: string }
  | { method: 'idevid'; chain: Buffer[] }
  | { method: 'reenroll'; chain: Buffer[] };

export interface EnrollInput {
  auth: DeviceAuth;
  /** The profile asked for (EST label); the device's registered profile when absent. */
  profile?: string;
  /** PEM or DER PKCS#10. */
  csr: Buffer | string;
  via: 'est' | 'acme';
  /** Server-side key generation: issue for this key instead of the CSR's (RFC 7030 §4.4). */
  replaceKey?: { spkiDer: Buffer; keyInfo: PublicKeyInfo };
}

export interface Enrolled {
  deviceId: string;
  issued: IssuedCertificate;
  /** Serials revoked as superseded by this enrollment. */
  superseded: string[];
}

export interface EnrollDeps {
  ra: Pick<RegistrationAuthority, 'checkRequest' | 'issue'>;
  devices: DeviceRepository;
  manufacturers: Pick<ManufacturerCaRepository, 'list'>;
  certificates: Pick<CertificateRepository, 'findBySerial' | 'validForDevice'>;
  revocation: Pick<RevocationAuthority, 'revoke'>;
  audit: Pick<AuditLog, 'record'>;
  clock: Clock;
  /** Our CAs that issue device certificates (id and DER), for re-enrollment. */
  issuingCas: () => readonly { id: string; certDer: Buffer }[];
}

/** SHA-256 (hex) of an enrollment secret, as the registry stores it. */
export const secretHashOf = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

const maxChain = 5;

const badCredentials = 'device id or enrollment secret is wrong';

/** The device id an IDevID names: subject serialNumber, else CN. */
export function idevidDeviceId(der: Buffer): string | undefined {
  const subject = parseCertificate(der).subject;
  return subject.find((e) => e.type === 'serialNumber')?.value ?? subject.find((e) => e.type === 'CN')?.value;
}

function x509(der: Buffer, what: string): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch (err) {
    throw new PkiError('unauthorized', `${what} is not a certificate`, { cause: err });
  }
}

const validAt = (c: X509Certificate, now: Date) => new Date(c.validFrom) <= now && now <= new Date(c.validTo);
const issuedBy = (child: X509Certificate, parent: X509Certificate) => child.checkIssued(parent) && child.verify(parent.publicKey);

/**
 * Follows `chain` from its leaf to one of `anchors`: each link's issuer name
 * and signature are checked and every certificate (anchor included) must be
 * valid at `now`. Returns the anchor's index, or a reason.
 */
export function chainTo(chain: readonly Buffer[], anchors: readonly Buffer[], now: Date): { anchor: number } | { reason: string } {
  if (chain.length === 0) return { reason: 'no client certificate' };
  if (chain.length > maxChain) return { reason: `client certificate chain longer than ${maxChain}` };
  const certs = chain.map((d, i) => x509(d, i === 0 ? 'the client certificate' : `client chain certificate ${i}`));
  const roots = anchors.map((d) => new X509Certificate(d));
  let cur = certs[0]!;
  for (let depth = 0; depth <= maxChain; depth++) {
    if (!validAt(cur, now)) return { reason: `certificate "${cur.subject.replace(/\n/g, ', ')}" is not valid now (${cur.validFrom} to ${cur.validTo})` };
    const anchor = roots.findIndex((r) => issuedBy(cur, r));
    if (anchor >= 0) {
      if (!validAt(roots[anchor]!, now)) return { reason: 'the CA the chain ends at is not valid now' };
      return { anchor };
    }
    const next = certs.find((c) => c !== cur && c.ca && issuedBy(cur, c));
    if (!next) return { reason: 'the client certificate does not chain to a trusted CA' };
    cur = next;
  }
  return { reason: 'client certificate chain too long' };
}

/** Enrollment under the device registry. */
export class DeviceEnrollment {
  constructor(private readonly deps: EnrollDeps) {}

  /** Authenticates, checks the policy and has the CA issue; refusals are PkiErrors (unauthorized, forbidden, badCSR…), audited. */
  async enroll(input: EnrollInput): Promise<Enrolled> {
    let claimed: string | undefined = input.auth.method === 'secret' ? input.auth.deviceId : undefined;
    try {
      const r = await this.#enroll(input, (id) => (claimed = id));
      await this.deps.audit.record('device.enrolled', `device:${r.deviceId}`, {
        device: r.deviceId,
        method: input.auth.method,
        via: input.via,
        issuer: r.issued.issuerId,
        serialHex: r.issued.serialHex,
        profile: r.issued.profile,
        ...(input.replaceKey ? { serverKeygen: true } : {}),
        ...(r.superseded.length ? { superseded: r.superseded } : {}),
      });
      return r;
    } catch (err) {
      if (isPkiError(err)) await this.refused(input.auth, input.via, err, claimed);
      throw err;
    }
  }

  /** Audits a refusal (also one the protocol front end made before {@link enroll}, e.g. a body that is no CSR); never the secret. */
  async refused(auth: DeviceAuth, via: EnrollInput['via'], err: PkiError, claimed = auth.method === 'secret' ? auth.deviceId : undefined): Promise<void> {
    await this.deps.audit.record('device.enroll_refused', claimed ? `device:${claimed}` : via, {
      ...(claimed ? { device: claimed } : {}),
      method: auth.method,
      via,
      error: err.type,
      reason: err.message,
    });
  }

  async #enroll(input: EnrollInput, claim: (id: string) => void): Promise<Enrolled> {
    const { deps } = this;
    const now = deps.clock.now();
    const auth = input.auth;
    let device: DeviceRecord | null;
    let secretHash: string | undefined;

    if (auth.method === 'secret') {
      device = await deps.devices.find(auth.deviceId);
      secretHash = secretHashOf(auth.secret);
      // Constant-time compare of the hashes; an unknown device and a wrong secret answer alike.
      const stored = Buffer.from(device?.secretHash ?? '', 'hex');
      const given = Buffer.from(secretHash, 'hex');
      if (!device || stored.length !== given.length || !timingSafeEqual(stored, given)) throw new PkiError('unauthorized', badCredentials);
    } else if (auth.method === 'idevid') {
      const cas = await deps.manufacturers.list();
      const r = chainTo(auth.chain, cas.map((c) => c.certDer), now);
      if ('reason' in r) throw new PkiError('unauthorized', `factory identity refused: ${r.reason}${cas.length ? '' : ' (no manufacturer CA is registered)'}`);
      const id = idevidDeviceId(auth.chain[0]!);
      if (!id) throw new PkiError('unauthorized', 'factory identity names no device id (subject serialNumber or CN)');
      claim(id);
      device = await deps.devices.find(id);
      if (!device) throw new PkiError('forbidden', `device "${id}" is not registered`);
    } else {
      const ours = deps.issuingCas();
      const r = chainTo(auth.chain.slice(0, 1), ours.map((c) => c.certDer), now);
      if ('reason' in r) throw new PkiError('unauthorized', `re-enrollment needs the device's current Trellis certificate: ${r.reason}`);
      const issuerId = ours[r.anchor]!.id;
      const serialHex = parseCertificate(auth.chain[0]!).serialHex;
      const rec = await deps.certificates.findBySerial(issuerId, serialHex);
      if (!rec || !rec.deviceId) throw new PkiError('forbidden', `certificate ${serialHex} was not issued to a registered device`);
      claim(rec.deviceId);
      if (rec.status !== 'valid') throw new PkiError('forbidden', `certificate ${serialHex} is ${rec.status}`);
      if (rec.notAfter <= now) throw new PkiError('forbidden', `certificate ${serialHex} has expired`);
      device = await deps.devices.find(rec.deviceId);
      if (!device) throw new PkiError('forbidden', `device "${rec.deviceId}" is not registered`);
    }
    claim(device.id);
    // Enrollments of one device in this process wait for each other (the lease would refuse the second as busy).
    const authenticated = device;
    return this.#queue.run(device.id, () => this.#issueFor(input, authenticated, secretHash));
  }

  readonly #queue = new PerKeyQueue();

  async #issueFor(input: EnrollInput, authenticated: DeviceRecord, secretHash: string | undefined): Promise<Enrolled> {
    const { deps } = this;
    const now = deps.clock.now();
    const id = authenticated.id;
    // The lease makes check-then-issue one step for this device across processes and nodes.
    const lease = { until: new Date(now.getTime() + enrollmentLeaseMs), at: now, ...(secretHash !== undefined ? { secretHash } : {}) };
    const device = await deps.devices.beginEnrollment(id, lease);
    if (device === 'busy') throw deviceBusy(id);
    if (device === 'badSecret') throw new PkiError('unauthorized', 'the enrollment secret was already used');
    if (device === 'notFound') throw new PkiError('forbidden', `device "${id}" is not registered`);
    const outcome: { issued?: IssuedCertificate } = {};
    try {
      return await this.#issueUnderLease(input, device, now, outcome);
    } finally {
      // A refused or failed enrollment gives the secret back: only an issued certificate spends it.
      await deps.devices.endEnrollment(id, lease, { issued: outcome.issued !== undefined, ...(secretHash !== undefined ? { restoreSecret: secretHash } : {}), at: deps.clock.now() });
    }
  }

  async #issueUnderLease(input: EnrollInput, device: DeviceRecord, now: Date, outcome: { issued?: IssuedCertificate }): Promise<Enrolled> {
    const { deps } = this;
    const auth = input.auth;
    if (device.status === 'disabled' || device.status === 'retired') throw new PkiError('forbidden', `device "${device.id}" is ${device.status}`);

    const profile = input.profile ?? device.profile;
    if (profile !== device.profile && device.reprovision !== 'migrate') {
      throw new PkiError('forbidden', `device "${device.id}" enrolls under profile "${device.profile}"; another profile needs reprovisioning policy migrate`);
    }
    const checked = deps.ra.checkRequest({
      profile,
      csr: input.csr,
      requestedVia: input.via,
      requestedBy: `device:${device.id}`,
      ...(device.issuerId ? { issuer: device.issuerId } : {}),
    });
    if (!checked.request.profile.deviceId) throw new PkiError('badProfile', `profile "${profile}" does not carry a device id`);
    const csrId = checked.request.subject.serialNumber;
    if (csrId !== device.id) throw new PkiError('forbidden', `the CSR names device "${csrId}" but the credential is for device "${device.id}"`);
    if (input.replaceKey) checked.request = { ...checked.request, spkiDer: input.replaceKey.spkiDer, keyInfo: input.replaceKey.keyInfo };
    checked.request = { ...checked.request, deviceId: device.id };

    // Reprovisioning: a device that already holds a valid certificate.
    const held = await deps.certificates.validForDevice(device.id, now);
    let toRevoke = held;
    if (auth.method === 'reenroll') {
      // Renewal: with `never` the old certificate stays valid until it expires; `reset`/`migrate` revoke it once the new one exists.
      toRevoke = device.reprovision === 'never' ? [] : held;
    } else if (held.length && device.reprovision === 'never') {
      throw new PkiError('forbidden', `device "${device.id}" already holds a valid certificate (${held.map((c) => c.serialHex).join(', ')}) and its reprovisioning policy is never`);
    }

    const issued = await deps.ra.issue(checked);
    outcome.issued = issued;
    if (profile !== device.profile) await deps.devices.setEnrollment(device.id, profile, device.issuerId, now);
    const superseded: string[] = [];
    for (const c of toRevoke) {
      try {
        await deps.revocation.revoke({ serialHex: c.serialHex, issuerId: c.issuerId, reason: 'superseded', by: `device:${device.id}`, via: input.via });
        superseded.push(c.serialHex);
      } catch (err) {
        if (!isPkiError(err, 'alreadyRevoked')) throw err;
      }
    }
    return { deviceId: device.id, issued, superseded };
  }
}
