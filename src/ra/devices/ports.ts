/**
 * The device registry (issue 10): what the RA needs from storage. Implemented
 * in `store/device-repository.ts` for SQLite and PostgreSQL.
 */

/** Where a device is in its life. `registered`: never enrolled; `active`: holds or held a certificate. */
export type DeviceStatus = 'registered' | 'active' | 'disabled' | 'retired';

/**
 * What a second enrollment does while the device holds a valid certificate
 * (as Azure DPS's reprovisioning policies): `never` refuses it; `reset`
 * issues a new certificate and revokes the old one as `superseded`; `migrate`
 * may also move the device to another profile or issuing CA, keeping its
 * registry entry (and revokes the old certificate as `superseded`).
 */
export type ReprovisionPolicy = 'never' | 'reset' | 'migrate';

export interface DeviceRecord {
  id: string;
  status: DeviceStatus;
  profile: string;
  /** Issuing CA id; null = the profile's (or the instance's) default. */
  issuerId: string | null;
  reprovision: ReprovisionPolicy;
  attributes: Record<string, string>;
  /** SHA-256 (hex) of the one-time enrollment secret; null = none, or already used. */
  secretHash: string | null;
  /** EAB key id for the device ACME directory, if one was made. */
  eabKeyId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export type NewDevice = Omit<DeviceRecord, 'createdAt' | 'updatedAt'>;

/** A manufacturer CA: certificates chaining to it are factory identities (IDevIDs). */
export interface ManufacturerCaRecord {
  name: string;
  certDer: Buffer;
  subject: string;
  /** SHA-256 of the DER, hex. */
  sha256: string;
  notAfter: Date;
  createdAt: Date;
}

export interface DeviceRepository {
  /** Inserts one device; an existing id is `conflict`. */
  insert(device: NewDevice, at: Date): Promise<void>;
  /**
   * Inserts many devices in one transaction (a factory list): all or none;
   * an id that exists is `conflict` naming it.
   */
  insertMany(devices: NewDevice[], at: Date): Promise<void>;
  find(id: string): Promise<DeviceRecord | null>;
  /** Devices in id order after `after` (cursor), at most `limit`. */
  list(opts: { after?: string; limit: number; status?: DeviceStatus }): Promise<DeviceRecord[]>;
  /** Compare-and-set of the status: false when the device was not in one of `from`. */
  setStatus(id: string, from: readonly DeviceStatus[], to: DeviceStatus, at: Date): Promise<boolean>;
  /**
   * Takes the device for one enrollment until `lease.until`: one enrollment of
   * a device at a time, across processes and nodes (a lease left by a crashed
   * process is taken over once it has passed). With `lease.secretHash` the
   * one-time secret is used in the same compare-and-set, so two enrollments
   * cannot both use it. Returns the device as it now is, or why not:
   * `busy` (another enrollment holds it), `badSecret` (not its secret, or
   * already used), `notFound`.
   */
  beginEnrollment(id: string, lease: EnrollmentLease): Promise<DeviceRecord | 'busy' | 'badSecret' | 'notFound'>;
  /**
   * Ends the enrollment that took `lease`: releases it (when it still holds
   * it); `issued`: a `registered` device becomes `active`; otherwise
   * `restoreSecret` puts the one-time secret back, so a refused or failed
   * enrollment does not spend it.
   */
  endEnrollment(id: string, lease: Pick<EnrollmentLease, 'until'>, end: { issued: boolean; restoreSecret?: string; at: Date }): Promise<void>;
  /** Moves a device to another profile / issuing CA (reprovisioning policy `migrate`). */
  setEnrollment(id: string, profile: string, issuerId: string | null, at: Date): Promise<void>;
  setEabKey(id: string, eabKeyId: string, at: Date): Promise<void>;
  count(status?: DeviceStatus): Promise<number>;
}

/** An enrollment's hold on a device (DeviceRepository.beginEnrollment). */
export interface EnrollmentLease {
  /** The lease ends then; it also names the lease when it is released. */
  until: Date;
  at: Date;
  /** Use the one-time secret with this hash (SHA-256, hex). */
  secretHash?: string;
}

export interface ManufacturerCaRepository {
  /** An existing name or certificate is `conflict`. */
  insert(ca: Omit<ManufacturerCaRecord, 'createdAt'>, at: Date): Promise<void>;
  list(): Promise<ManufacturerCaRecord[]>;
}
