/**
 * Which issuing CA signs a request: the one named by the caller, else the
 * one trellis.json maps the profile to (`profileIssuers`), else its
 * `defaultIssuer`, else the newest issuing CA whose key is active. Only CAs
 * the authority holds unlocked can be chosen; a named CA whose key is in a
 * state that forbids certificates is refused naming that state.
 */
import { PkiError } from '../errors/pki-error.js';
import type { Profile } from '../profiles/types.js';
import type { CertificateAuthority } from './authority.js';
import type { Issuer } from './issuer.js';
import { assertPermits } from './key-state.js';
import type { CaRecord } from './ports.js';

/** The parts of trellis.json that choose issuers (read anew at each choice: a rotation rewrites them). */
export interface IssuerChoiceConfig {
  defaultIssuer?: string | undefined;
  profileIssuers: Readonly<Record<string, string>>;
}

export interface IssuerSelectionDeps {
  authority: Pick<CertificateAuthority, 'issuers' | 'keyStates'>;
  config: () => IssuerChoiceConfig;
  /** The CA records as last read (for the state of a CA that is not unlocked here). */
  cas: () => readonly CaRecord[];
  /** SPKIs of every CA: a request using one is refused. */
  caSpkis: () => readonly Buffer[];
}

export class IssuerSelection {
  constructor(private readonly deps: IssuerSelectionDeps) {}

  /** The issuer named `id`, or the one configured for the profile, or the default issuing CA. */
  issuerFor(profile: Profile, id?: string): Issuer {
    const config = this.deps.config();
    const wanted = id ?? config.profileIssuers[profile.name] ?? config.defaultIssuer ?? this.newest();
    const issuer = wanted ? this.all().find((i) => i.id === wanted) : undefined;
    if (issuer) return issuer;
    const locked = wanted ? this.deps.cas().find((c) => c.id === wanted && c.role === 'issuing') : undefined;
    if (locked) assertPermits(locked.id, this.deps.authority.keyStates.known(locked.id) ?? locked.keyState, 'certificate');
    throw new PkiError(id ? 'notFound' : 'invalidConfig', wanted ? `no active issuing CA "${wanted}"` : 'no active issuing CA');
  }

  caSpkis(): readonly Buffer[] {
    return this.deps.caSpkis();
  }

  /** The issuing CAs unlocked here. */
  all(): Issuer[] {
    return this.deps.authority.issuers().filter((i) => i.role === 'issuing');
  }

  /** The newest issuing CA whose key is active (as last read); a named CA in another state is refused by the CA, naming it. */
  private newest(): string | undefined {
    const guard = this.deps.authority.keyStates;
    const stateOf = (id: string) => guard.known(id) ?? this.deps.cas().find((c) => c.id === id)?.keyState;
    return this.all()
      .filter((i) => stateOf(i.id) === 'active')
      .sort((a, b) => b.cert.notBefore.getTime() - a.cert.notBefore.getTime())[0]?.id;
  }
}
