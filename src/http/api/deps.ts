/** What the /api/v1 handlers read and call; cmd/server.ts wires the real parts. */
import type { AuditVerifyResult } from '../../audit/verify.js';
import type { CaRepository } from '../../ca/ports.js';
import type { Clock } from '../../clock/clock.js';
import type { Profile } from '../../profiles/types.js';
import type { DeviceRegistry } from '../../ra/devices/registry.js';
import type { RegistrationAuthority } from '../../ra/registration.js';
import type { RevocationAuthority } from '../../ra/revoke.js';
import type { AdminQueries } from '../../store/admin-queries.js';
import type { TokenRepository } from '../../tokens/ports.js';

/** Dependencies of the admin API routes. */
export interface ApiDeps {
  ra: RegistrationAuthority;
  revocation: RevocationAuthority;
  /** Promised delays, reported to the caller of a revocation. */
  revocationSeconds: { ocsp: number; crl: number };
  /** Token rows (list, create, revoke); verification goes through the authenticator. */
  tokenStore: TokenRepository;
  queries: AdminQueries;
  cas: Pick<CaRepository, 'list' | 'findById' | 'keyHistory'>;
  /** Loaded profiles (a token's --profile must name one enrollable over the API). */
  profiles: ReadonlyMap<string, Profile>;
  /** The device registry; absent: the device routes answer 404. */
  devices?: DeviceRegistry | undefined;
  audit: { record(type: string, actor: string, data: Record<string, unknown>): Promise<unknown> };
  /** The chain and checkpoint verification of `trellis audit verify`. */
  verifyAudit: () => Promise<AuditVerifyResult>;
  clock: Clock;
}
