/**
 * Reprovisioning policy on the ACME device path (issue 10), as EST applies it
 * in `ra/devices/enroll.ts`: `never` refuses a certificate while the device
 * holds a valid one; `reset` and `migrate` issue and then revoke the held
 * certificates as `superseded`; only `migrate` may order under a device
 * profile other than the device's registered one.
 */
import type { CertificateRecord } from '../../ca/ports.js';
import { isPkiError, PkiError } from '../../errors/pki-error.js';
import type { DeviceRecord } from '../devices/ports.js';
import type { RevocationAuthority } from '../revoke.js';

/**
 * Refuses an order for `device` under `profile` when that is not its
 * registered profile and its policy is not `migrate`. `forbidden` (ACME
 * `unauthorized`, 403), the type EST and policy `never` give: the identifier
 * is acceptable and the account controls it, only the policy does not allow
 * this profile.
 */
export function checkDeviceProfile(device: Pick<DeviceRecord, 'id' | 'profile' | 'reprovision'>, profile: string): void {
  if (profile !== device.profile && device.reprovision !== 'migrate') {
    throw new PkiError('forbidden', `device "${device.id}" enrolls under profile "${device.profile}"; another profile needs reprovisioning policy migrate`);
  }
}

/**
 * The certificates a new one for `device` supersedes: `held` (its valid
 * certificates) under `reset` and `migrate`; under `never` holding any is
 * `forbidden`, and none is superseded.
 */
export function supersededBy<C extends Pick<CertificateRecord, 'serialHex'>>(device: Pick<DeviceRecord, 'id' | 'reprovision'>, held: readonly C[]): readonly C[] {
  switch (device.reprovision) {
    case 'never':
      if (held.length) throw new PkiError('forbidden', `device "${device.id}" already holds a valid certificate (${held.map((c) => c.serialHex).join(', ')}) and its reprovisioning policy is never`);
      return [];
    case 'reset':
    case 'migrate':
      return held;
  }
}

/**
 * Revokes `certs` as `superseded` by the device, via ACME, once its new
 * certificate exists. One revoked meanwhile (say by an operator) is skipped;
 * returns the serials this call revoked.
 */
export async function revokeSuperseded(revocation: Pick<RevocationAuthority, 'revoke'>, deviceId: string, certs: readonly Pick<CertificateRecord, 'serialHex' | 'issuerId'>[]): Promise<string[]> {
  const revoked: string[] = [];
  for (const c of certs) {
    try {
      await revocation.revoke({ serialHex: c.serialHex, issuerId: c.issuerId, reason: 'superseded', by: `device:${deviceId}`, via: 'acme' });
      revoked.push(c.serialHex);
    } catch (err) {
      if (!isPkiError(err, 'alreadyRevoked')) throw err;
    }
  }
  return revoked;
}
