/**
 * Transitions of CA keys (key-state.ts), the only way a key's state changes:
 * each is checked against the table, made compare-and-set in the store,
 * recorded as a KeyStateEvent and audited. Destroying a key also wipes it
 * from its keystore; the CA's certificate and CRLs stay in place.
 */
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import type { Keystore } from '../keys/signing-key.js';
import type { KeyStateGuard } from './key-guard.js';
import { assertTransition, type KeyState } from './key-state.js';
import type { CaRecord, CaRepository } from './ports.js';
import { holdsKey, keyIdOf } from './unlock.js';

export interface KeyLifecycleDeps {
  cas: Pick<CaRepository, 'findById' | 'transitionKey'>;
  audit: Pick<AuditLog, 'record'>;
  clock: Clock;
  /** The CA's guard in this process, read again after a transition. */
  keyStates?: Pick<KeyStateGuard, 'refresh'>;
}

export interface KeyTransition {
  ca: CaRecord;
  from: KeyState;
  to: KeyState;
  at: Date;
}

/**
 * Moves the key of CA `caId` to `to`. `destroyed` needs the keystore that
 * holds the key (it is wiped there after the state is recorded, so a failed
 * wipe can be run again: a destroyed key whose blob is still there is wiped
 * by the next call).
 */
export async function transitionKey(deps: KeyLifecycleDeps, caId: string, to: KeyState, opts: { actor: string; reason?: string; keystore?: Keystore }): Promise<KeyTransition> {
  const ca = await deps.cas.findById(caId);
  if (!ca) throw new PkiError('notFound', `no CA "${caId}"`);
  const from = ca.keyState;
  if (to === 'destroyed' && !opts.keystore && holdsKey(ca)) throw new PkiError('invalidConfig', `destroying the key of CA "${caId}" needs its keystore`);
  const at = deps.clock.now();
  if (!(to === 'destroyed' && from === 'destroyed')) {
    assertTransition(caId, from, to);
    if (!(await deps.cas.transitionKey(caId, from, to, { at, actor: opts.actor, ...(opts.reason ? { reason: opts.reason } : {}) }))) {
      throw new PkiError('conflict', `the key of CA "${caId}" changed state meanwhile; look again with \`trellis key list\``);
    }
    await deps.audit.record('key.state_changed', opts.actor, { ca: caId, from, to, ...(opts.reason ? { reason: opts.reason } : {}) });
  }
  if (to === 'destroyed' && holdsKey(ca)) {
    const keyId = keyIdOf(ca);
    await opts.keystore!.destroy(keyId);
    await deps.audit.record('key.destroyed', opts.actor, { ca: caId, keyId });
  }
  await deps.keyStates?.refresh();
  return { ca, from, to, at };
}
