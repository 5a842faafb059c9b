/**
 * Keeps each issuing CA's delegated OCSP responder current (RFC 6960
 * §4.2.2.2): a responder certificate is short-lived (ocsp-nocheck), so it is
 * checked on a timer and a new one issued when a third of its life is left
 * (held-keys.ts `currentResponder`); the OCSP responder is handed each new one.
 */
import type { Keystore } from '../keys/signing-key.js';
import type { Profile } from '../profiles/types.js';
import { currentResponder, type HeldKeyDeps, type ResponderMaterial } from './held-keys.js';
import type { Issuer } from './issuer.js';

export interface ResponderRotationDeps extends HeldKeyDeps {
  /** Where new responder keys are generated and old ones opened. */
  keystore: Keystore;
  profile: Profile;
  actor: string;
  /** The issuing CAs to keep a responder for (read at each check: CAs unlocked later are included). */
  issuers: () => Issuer[];
  /** Called with each responder that is new since the last check. */
  use: (m: ResponderMaterial) => void;
  log: (e: Record<string, unknown>) => void;
}

export class ResponderRotation {
  /** The notAfter of the responder last handed out, per CA. */
  readonly #current = new Map<string, number>();

  constructor(private readonly deps: ResponderRotationDeps) {}

  /** Issues what is due and hands out what changed; a CA that fails does not stop the others (the first error is thrown after). */
  async check(): Promise<void> {
    let first: unknown;
    for (const issuer of this.deps.issuers()) {
      try {
        const m = await currentResponder(this.deps, this.deps.keystore, issuer, this.deps.profile, this.deps.actor);
        if (this.#current.get(issuer.id) === m.notAfter.getTime()) continue;
        this.deps.use(m);
        this.#current.set(issuer.id, m.notAfter.getTime());
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
  }

  /** Checks every `intervalMs` (hourly by default); failures are logged. Returns a stop function. */
  start(intervalMs = 3600_000): () => void {
    const timer = setInterval(() => this.check().catch((err) => this.deps.log({ level: 'error', msg: 'OCSP responder renewal failed', error: String(err) })), intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
