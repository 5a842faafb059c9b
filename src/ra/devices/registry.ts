/**
 * The device registry (issue 10): registering devices one at a time or from
 * a factory list, their life (registered → active → disabled ⇄ …, retired is
 * final), and the manufacturer CAs whose certificates are factory
 * identities. Every change is audited; enrollment secrets never are (only
 * their SHA-256 is stored, and the secret is returned once).
 */
import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../clock/clock.js';
import { isPkiError, PkiError } from '../../errors/pki-error.js';
import { findExtension, readCertificate, sha256Hex, subjectString } from '../../pki/certificate.js';
import { decodeBasicConstraints } from '../../pki/extensions.js';
import { OID } from '../../pki/oids.js';
import type { Profile } from '../../profiles/types.js';
import type { RevocationAuthority } from '../revoke.js';
import { attributeNamePattern, parseDeviceCsv, type LineProblem } from './csv.js';
import { secretHashOf } from './enroll.js';
import type { DeviceRecord, DeviceRepository, DeviceStatus, ManufacturerCaRecord, ManufacturerCaRepository, NewDevice, ReprovisionPolicy } from './ports.js';

export const reprovisionPolicies: readonly ReprovisionPolicy[] = ['never', 'reset', 'migrate'];
export const deviceStatuses: readonly DeviceStatus[] = ['registered', 'active', 'disabled', 'retired'];
/** The profile a device enrolls under when none is named. */
export const defaultDeviceProfile = 'device';

/** A new one-time enrollment secret: 32 random bytes, base64url. */
/** revokedBy of the holds `disable` sets: `enable` lifts these and no other. */
const disabledBy = 'device.disable';

type DeviceCertificateRef = { issuerId: string; serialHex: string };

export const newEnrollmentSecret = (): string => randomBytes(32).toString('base64url');

/** What the registry needs of a device's certificates besides the device repository. */
export interface DeviceCertificates {
  /** Its valid certificates (retiring revokes them). */
  validCertificatesOf(deviceId: string): Promise<{ issuerId: string; serialHex: string }[]>;
  /** Its certificates on hold; only those held by `revokedBy` when given. */
  heldCertificatesOf(deviceId: string, revokedBy?: string): Promise<{ issuerId: string; serialHex: string }[]>;
  /** Whether it was ever issued a certificate (enable puts it back to active, else registered). */
  everIssued(deviceId: string): Promise<boolean>;
  /** Which of `ids` are registered. */
  existing(ids: readonly string[]): Promise<string[]>;
}

export interface DeviceRegistryDeps {
  devices: DeviceRepository & DeviceCertificates;
  manufacturerCas: ManufacturerCaRepository;
  profiles: ReadonlyMap<string, Profile>;
  revocation: RevocationAuthority;
  audit: AuditLog;
  clock: Clock;
}

/** Who asks, for the audit log. */
export interface Actor {
  by: string;
  via: 'cli' | 'api';
}

export interface RegisterInput {
  id: string;
  profile?: string | undefined;
  attributes?: Record<string, string> | undefined;
  reprovision?: string | undefined;
}

/** A device as shown to operators: everything but the secret hash. */
export type DeviceView = Omit<DeviceRecord, 'secretHash'> & { hasSecret: boolean };

export const viewOf = ({ secretHash, ...d }: DeviceRecord): DeviceView => ({ ...d, hasSecret: secretHash !== null });

/** Lines of a factory list that were refused; nothing was stored. */
export interface ImportRefusal {
  problems: LineProblem[];
}

/** At most this many problems are named in the error's message (all are in `extra.problems`). */
const problemsInMessage = 20;

/** Parses `k=v` (the CLI's --attr); the name as a CSV attribute column, the value any text. */
export function parseAttribute(text: string): [string, string] {
  const eq = text.indexOf('=');
  const name = eq < 0 ? '' : text.slice(0, eq).trim();
  if (eq < 0 || !attributeNamePattern.test(name) || ['id', 'profile', 'reprovision'].includes(name)) {
    throw new PkiError('malformed', `attribute "${text}" is not k=v with k of letters, digits, . _ - and space (at most 64; not id, profile or reprovision)`);
  }
  return [name, text.slice(eq + 1)];
}

/** The device registry. */
export class DeviceRegistry {
  constructor(private readonly deps: DeviceRegistryDeps) {}

  /** Why `profile` cannot hold devices, or null. */
  private profileProblem(name: string): string | null {
    const p = this.deps.profiles.get(name);
    if (!p) return `unknown profile "${name}"`;
    if (!p.deviceId) return `profile "${name}" has no deviceId section, so it does not issue device certificates`;
    if (!p.enrollment.some((c) => c === 'est' || c === 'acme' || c === 'api')) return `profile "${name}" lists none of est, acme, api in enrollment, so no device could enroll under it`;
    return null;
  }

  private idProblem(id: string, profile: string): string | null {
    const pattern = this.deps.profiles.get(profile)?.deviceId?.pattern;
    if (pattern === undefined) return null;
    if (!new RegExp(pattern).test(id)) return `device id "${id.length > 80 ? `${id.slice(0, 80)}…` : id}" does not match the pattern ${pattern} of profile "${profile}"`;
    return null;
  }

  /** Registers one device; returns it and its one-time enrollment secret (shown once, stored as a hash). */
  async register(input: RegisterInput, actor: Actor): Promise<{ device: DeviceView; secret: string }> {
    const profile = input.profile ?? defaultDeviceProfile;
    const profileProblem = this.profileProblem(profile);
    if (profileProblem) throw new PkiError('badProfile', profileProblem);
    const idProblem = this.idProblem(input.id, profile);
    if (idProblem) throw new PkiError('malformed', idProblem);
    const reprovision = input.reprovision ?? 'never';
    if (!isPolicy(reprovision)) throw new PkiError('malformed', `reprovision policy "${reprovision}" is not one of ${reprovisionPolicies.join(', ')}`);
    const attributes = { ...(input.attributes ?? {}) };
    for (const [k, v] of Object.entries(attributes)) parseAttribute(`${k}=${v}`);
    const secret = newEnrollmentSecret();
    const device: NewDevice = { id: input.id, status: 'registered', profile, issuerId: null, reprovision, attributes, secretHash: secretHashOf(secret), eabKeyId: null };
    const now = this.deps.clock.now();
    await this.deps.devices.insert(device, now);
    await this.deps.audit.record('device.registered', actor.by, { device: device.id, profile, reprovision, attributes, via: actor.via });
    return { device: viewOf({ ...device, createdAt: now, updatedAt: now }), secret };
  }

  /**
   * Imports a factory list (CSV text, see csv.ts), all or nothing. Any bad
   * line (form, bad id, id repeated in the file or already registered,
   * unknown profile, bad policy) refuses the whole list: a `malformed`
   * PkiError whose `extra.problems` has every line and reason. With
   * `makeSecrets` each device gets a one-time secret (returned, in file
   * order); without it, none.
   */
  async importCsv(
    text: string,
    opts: { makeSecrets: boolean; defaultProfile?: string; onProgress?: (done: number, total: number) => void } & Actor,
  ): Promise<{ count: number; secrets: { id: string; secret: string }[] }> {
    const defaultProfile = opts.defaultProfile ?? defaultDeviceProfile;
    const { devices: lines, problems } = parseDeviceCsv(text);
    const profileProblems = new Map<string, string | null>();
    const firstLine = new Map<string, number>();
    for (const l of lines) {
      const profile = l.profile ?? defaultProfile;
      if (!profileProblems.has(profile)) profileProblems.set(profile, this.profileProblem(profile));
      const reasons: string[] = [];
      const pp = profileProblems.get(profile);
      if (pp) reasons.push(pp);
      else {
        const ip = this.idProblem(l.id, profile);
        if (ip) reasons.push(ip);
      }
      if (l.id === '') reasons.splice(0, reasons.length, 'no device id');
      const seenAt = firstLine.get(l.id);
      if (seenAt !== undefined) reasons.push(`device id "${l.id}" already on line ${seenAt}`);
      else firstLine.set(l.id, l.line);
      if (l.reprovision !== undefined && !isPolicy(l.reprovision)) reasons.push(`reprovision policy "${l.reprovision}" is not one of ${reprovisionPolicies.join(', ')}`);
      if (reasons.length > 0) problems.push({ line: l.line, reason: reasons.join('; ') });
    }
    if (lines.length === 0 && problems.length === 0) problems.push({ line: 1, reason: 'the file lists no devices' });
    // Ids already registered, every one named; the insert checks again, atomically.
    const registered = new Set(await this.deps.devices.existing(lines.map((l) => l.id).filter((id) => id !== '')));
    for (const l of lines) if (registered.has(l.id)) problems.push({ line: l.line, reason: `device id "${l.id}" is already registered` });
    if (problems.length > 0) refuse(problems);

    const secrets: { id: string; secret: string }[] = [];
    const devices: NewDevice[] = lines.map((l, k) => {
      let secretHash: string | null = null;
      if (opts.makeSecrets) {
        const secret = newEnrollmentSecret();
        secrets.push({ id: l.id, secret });
        secretHash = secretHashOf(secret);
      }
      if (opts.onProgress && k % 1000 === 0) opts.onProgress(k, lines.length);
      return { id: l.id, status: 'registered', profile: l.profile ?? defaultProfile, issuerId: null, reprovision: (l.reprovision ?? 'never') as ReprovisionPolicy, attributes: l.attributes, secretHash, eabKeyId: null };
    });
    const now = this.deps.clock.now();
    await this.deps.devices.insertMany(devices, now);
    opts.onProgress?.(lines.length, lines.length);
    const byProfile: Record<string, number> = {};
    for (const d of devices) byProfile[d.profile] = (byProfile[d.profile] ?? 0) + 1;
    await this.deps.audit.record('device.imported', opts.by, {
      count: devices.length,
      profiles: byProfile,
      secrets: opts.makeSecrets,
      first: devices[0]!.id,
      last: devices.at(-1)!.id,
      via: opts.via,
    });
    return { count: devices.length, secrets };
  }

  async find(id: string): Promise<DeviceView> {
    const d = await this.deps.devices.find(id);
    if (!d) throw new PkiError('notFound', `no device "${id}"`);
    return viewOf(d);
  }

  async list(opts: { after?: string | undefined; limit: number; status?: string | undefined }): Promise<DeviceView[]> {
    if (opts.status !== undefined && !isStatus(opts.status)) throw new PkiError('malformed', `status "${opts.status}" is not one of ${deviceStatuses.join(', ')}`);
    return (await this.deps.devices.list({ limit: opts.limit, ...(opts.after !== undefined ? { after: opts.after } : {}), ...(opts.status ? { status: opts.status } : {}) })).map(viewOf);
  }

  /**
   * registered|active → disabled: the device can neither enroll nor renew,
   * and its valid certificates go on hold (certificateHold), so gateways that
   * check OCSP or CRLs refuse it too. Returns the device and the serials held.
   */
  async disable(id: string, actor: Actor): Promise<DeviceView & { held: DeviceCertificateRef[] }> {
    const device = await this.transition(id, ['registered', 'active'], 'disabled', 'disable', actor);
    const held: DeviceCertificateRef[] = [];
    for (const c of await this.deps.devices.validCertificatesOf(id)) {
      if (await this.revokeQuietly(c, 'certificateHold', disabledBy, actor)) held.push(c);
    }
    return { ...device, held };
  }

  /**
   * disabled → active when it was ever issued a certificate, else registered;
   * lifts the holds that disabling made (not holds an operator set by hand).
   */
  async enable(id: string, actor: Actor): Promise<DeviceView & { released: DeviceCertificateRef[] }> {
    const enrolled = await this.deps.devices.everIssued(id);
    const device = await this.transition(id, ['disabled'], enrolled ? 'active' : 'registered', 'enable', actor);
    const released: DeviceCertificateRef[] = [];
    for (const c of await this.deps.devices.heldCertificatesOf(id, disabledBy)) {
      await this.deps.revocation.revoke({ serialHex: c.serialHex, issuerId: c.issuerId, reason: 'removeFromCRL', by: actor.by, via: actor.via });
      released.push(c);
    }
    return { ...device, released };
  }

  /**
   * Any status but retired → retired (final), then revokes the device's
   * valid and held certificates as cessationOfOperation (each audited by the
   * revocation authority). Returns the device and the serials revoked.
   */
  async retire(id: string, actor: Actor): Promise<DeviceView & { revoked: DeviceCertificateRef[] }> {
    const device = await this.transition(id, ['registered', 'active', 'disabled'], 'retired', 'retire', actor);
    const revoked: DeviceCertificateRef[] = [];
    const certificates = [...(await this.deps.devices.validCertificatesOf(id)), ...(await this.deps.devices.heldCertificatesOf(id))];
    for (const c of certificates) {
      if (await this.revokeQuietly(c, 'cessationOfOperation', actor.by, actor)) revoked.push(c);
    }
    return { ...device, revoked };
  }

  /** Revokes one certificate; false when someone revoked it meanwhile (it is revoked, which is what the caller wants). */
  private async revokeQuietly(c: DeviceCertificateRef, reason: 'certificateHold' | 'cessationOfOperation', by: string, actor: Actor): Promise<boolean> {
    try {
      await this.deps.revocation.revoke({ serialHex: c.serialHex, issuerId: c.issuerId, reason, by, via: actor.via });
      return true;
    } catch (err) {
      if (!isPkiError(err, 'alreadyRevoked')) throw err;
      return false;
    }
  }

  /** Compare-and-set of the status, audited as device.<to>; any other current status is `conflict`. */
  private async transition(id: string, from: readonly DeviceStatus[], next: DeviceStatus, verb: string, actor: Actor): Promise<DeviceView> {
    const d = await this.deps.devices.find(id);
    if (!d) throw new PkiError('notFound', `no device "${id}"`);
    const now = this.deps.clock.now();
    if (!from.includes(d.status) || !(await this.deps.devices.setStatus(id, from, next, now))) {
      const current = (await this.deps.devices.find(id))?.status ?? d.status;
      throw new PkiError('conflict', `device "${id}" is ${current}: ${verb} applies only to a device that is ${from.join(' or ')}`);
    }
    await this.deps.audit.record(`device.${verb === 'enable' ? 'enabled' : next}`, actor.by, { device: id, from: d.status, to: next, via: actor.via });
    return viewOf({ ...d, status: next, updatedAt: now });
  }

  /**
   * Trusts a manufacturer CA (PEM or DER): it must be a CA certificate
   * (basicConstraints cA true) and valid now. Audited.
   */
  async trustManufacturer(name: string, certificate: Buffer | string, actor: Actor): Promise<Omit<ManufacturerCaRecord, 'certDer'>> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw new PkiError('malformed', `manufacturer name "${name}" must be letters, digits, . _ - (at most 64)`);
    const cert = readCertificate(certificate);
    const bc = findExtension(cert, OID.basicConstraints);
    if (!bc || !decodeBasicConstraints(bc.valueDer).ca) throw new PkiError('malformed', 'not a CA certificate: basicConstraints cA is not true');
    const now = this.deps.clock.now();
    if (now < cert.notBefore) throw new PkiError('malformed', `the CA certificate is not valid before ${cert.notBefore.toISOString()}`);
    if (now > cert.notAfter) throw new PkiError('malformed', `the CA certificate expired at ${cert.notAfter.toISOString()}`);
    const record = { name, certDer: cert.der, subject: subjectString(cert), sha256: sha256Hex(cert.der), notAfter: cert.notAfter };
    await this.deps.manufacturerCas.insert(record, now);
    await this.deps.audit.record('device.manufacturer_trusted', actor.by, { name, subject: record.subject, sha256: record.sha256, notAfter: record.notAfter.toISOString(), via: actor.via });
    return { name, subject: record.subject, sha256: record.sha256, notAfter: record.notAfter, createdAt: now };
  }
}

const isPolicy = (p: string): p is ReprovisionPolicy => (reprovisionPolicies as readonly string[]).includes(p);
const isStatus = (s: string): s is DeviceStatus => (deviceStatuses as readonly string[]).includes(s);

function refuse(problems: LineProblem[]): never {
  problems.sort((a, b) => a.line - b.line);
  const shown = problems.slice(0, problemsInMessage).map((p) => `line ${p.line}: ${p.reason}`);
  const more = problems.length > problemsInMessage ? `; and ${problems.length - problemsInMessage} more` : '';
  throw new PkiError('malformed', `nothing imported: ${problems.length} bad line${problems.length === 1 ? '' : 's'}: ${shown.join('; ')}${more}`, { extra: { problems } });
}
