/** Wiring shared by `ca rotate`, `ca renew` and `ceremony root-rollover`: profiles of CA certificates, and a CA that may certify one CA key again. */
import type { IssuedCertificate } from '../../../ca/authority.js';
import type { Issuer } from '../../../ca/issuer.js';
import type { CaRecord } from '../../../ca/ports.js';
import { parseCertificate } from '../../../pki/certificate.js';
import type { Profile } from '../../../profiles/types.js';
import { profile, type Instance } from '../../instance.js';

/** The profile a CA's certificate was issued under (its row under the parent), else `fallback`. */
export async function profileOfCa(instance: Instance, ca: CaRecord, fallback: string): Promise<Profile> {
  const row = ca.parentId ? await instance.store.certificates.findBySerial(ca.parentId, parseCertificate(ca.certDer).serialHex) : null;
  return profile(instance, row?.profile ?? fallback);
}

/** Has `signer` certify the key of CA certificate `certDer` again (same subject and key) under `caProfile`. */
export function certifyCaKeyAgain(instance: Instance, signer: Issuer, certDer: Buffer, caProfile: Profile, opts: { validitySeconds?: number | undefined; actor: string }): Promise<IssuedCertificate> {
  return instance.authority.recertify(signer.id, certDer, caProfile, opts);
}
