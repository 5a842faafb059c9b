/**
 * CA key states (NIST SP 800-57 Part 1 Rev. 5 §7): the one table of allowed
 * transitions and of what each state lets a key sign. The CA enforces both
 * (authority.ts); nothing else decides them.
 *
 *   preActivation → active, compromised, destroyed
 *   active        → suspended, deactivated, compromised
 *   suspended     → active, deactivated, compromised
 *   deactivated   → compromised, destroyed
 *   compromised   → destroyed
 *   destroyed     (final)
 *
 * Signing: only an active key signs certificates; a deactivated key still
 * signs CRLs and OCSP responses for what it issued (until those certificates
 * expire, when nothing is left to answer for); a pre-activation, suspended,
 * compromised or destroyed key signs nothing.
 */
import { PkiError } from '../errors/pki-error.js';

export const keyStates = ['preActivation', 'active', 'suspended', 'deactivated', 'compromised', 'destroyed'] as const;
export type KeyState = (typeof keyStates)[number];

/** What a CA key is asked to sign. */
export type KeyUse = 'certificate' | 'crl' | 'ocsp';

const transitions: Readonly<Record<KeyState, readonly KeyState[]>> = {
  preActivation: ['active', 'compromised', 'destroyed'],
  active: ['suspended', 'deactivated', 'compromised'],
  suspended: ['active', 'deactivated', 'compromised'],
  deactivated: ['compromised', 'destroyed'],
  compromised: ['destroyed'],
  destroyed: [],
};

const uses: Readonly<Record<KeyState, readonly KeyUse[]>> = {
  preActivation: [],
  active: ['certificate', 'crl', 'ocsp'],
  suspended: [],
  deactivated: ['crl', 'ocsp'],
  compromised: [],
  destroyed: [],
};

export const isKeyState = (s: string): s is KeyState => (keyStates as readonly string[]).includes(s);

export const canTransition = (from: KeyState, to: KeyState): boolean => transitions[from].includes(to);

export const permits = (state: KeyState, use: KeyUse): boolean => uses[state].includes(use);

/** The states a key may move to from `from`. */
export const nextStates = (from: KeyState): readonly KeyState[] => transitions[from];

const useNames: Record<KeyUse, string> = { certificate: 'sign certificates', crl: 'sign CRLs', ocsp: 'sign OCSP responses' };

/** Throws `forbidden`, naming the state, unless a key in `state` may be used for `use`. */
export function assertPermits(caId: string, state: KeyState, use: KeyUse): void {
  if (!permits(state, use)) throw new PkiError('forbidden', `CA "${caId}" cannot ${useNames[use]}: its key is ${state}`);
}

/** Throws `conflict` unless `from` → `to` is in the table. */
export function assertTransition(caId: string, from: KeyState, to: KeyState): void {
  if (from === to) throw new PkiError('conflict', `the key of CA "${caId}" is already ${to}`);
  if (!canTransition(from, to)) {
    const allowed = transitions[from];
    throw new PkiError('conflict', `the key of CA "${caId}" cannot go from ${from} to ${to}${allowed.length ? ` (from ${from}: ${allowed.join(', ')})` : ` (${from} is final)`}`);
  }
}
