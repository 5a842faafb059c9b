import { describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { KeyStateGuard } from './key-guard.js';
import { assertPermits, assertTransition, canTransition, keyStates, nextStates, permits, type KeyState } from './key-state.js';

describe('the key state table (NIST SP 800-57 Part 1 §7)', () => {
  test('transitions: exactly the ones listed', () => {
    const allowed = keyStates.flatMap((from) => keyStates.filter((to) => canTransition(from, to)).map((to) => `${from}->${to}`));
    expect(allowed.sort()).toEqual(
      [
        'preActivation->active', 'preActivation->compromised', 'preActivation->destroyed',
        'active->suspended', 'active->deactivated', 'active->compromised',
        'suspended->active', 'suspended->deactivated', 'suspended->compromised',
        'deactivated->compromised', 'deactivated->destroyed',
        'compromised->destroyed',
      ].sort(),
    );
    expect(nextStates('destroyed')).toEqual([]);
    // Nothing ever goes back to pre-activation, and an active key is never destroyed without being retired first.
    expect(keyStates.some((s) => canTransition(s, 'preActivation'))).toBe(false);
    expect(canTransition('active', 'destroyed')).toBe(false);
  });

  test('what each state may sign', () => {
    const table = Object.fromEntries(keyStates.map((s) => [s, (['certificate', 'crl', 'ocsp'] as const).filter((u) => permits(s, u))]));
    expect(table).toEqual({ preActivation: [], active: ['certificate', 'crl', 'ocsp'], suspended: [], deactivated: ['crl', 'ocsp'], compromised: [], destroyed: [] });
  });

  test('refusals name the CA, the use and the state', () => {
    const err = (() => {
      try {
        assertPermits('issuing-1', 'deactivated', 'certificate');
      } catch (e) {
        return e;
      }
    })();
    expect(isPkiError(err, 'forbidden')).toBe(true);
    expect((err as Error).message).toBe('CA "issuing-1" cannot sign certificates: its key is deactivated');
    expect(() => assertTransition('r', 'destroyed', 'active')).toThrow('the key of CA "r" cannot go from destroyed to active (destroyed is final)');
    expect(() => assertTransition('r', 'active', 'active')).toThrow('the key of CA "r" is already active');
    expect(() => assertTransition('r', 'active', 'destroyed')).toThrow('(from active: suspended, deactivated, compromised)');
  });
});

describe('KeyStateGuard', () => {
  function fixture(states: Record<string, KeyState>) {
    let reads = 0;
    let now = 0;
    const guard = new KeyStateGuard({ keyStates: async () => (reads++, Object.entries(states).map(([id, keyState]) => ({ id, keyState }))) }, { now: () => new Date(now) }, 1000);
    return { guard, states, reads: () => reads, advance: (ms: number) => (now += ms) };
  }

  test('reads the states at most once per second, and again for a CA it does not know yet', async () => {
    const f = fixture({ a: 'active' });
    await f.guard.assert('a', 'certificate');
    await f.guard.assert('a', 'crl');
    expect(f.reads()).toBe(1);
    f.states.b = 'active';
    await f.guard.assert('b', 'certificate');
    expect(f.reads()).toBe(2);
    f.states.a = 'suspended';
    await f.guard.assert('a', 'certificate');
    f.advance(1000);
    await expect(f.guard.assert('a', 'certificate')).rejects.toThrow('CA "a" cannot sign certificates: its key is suspended');
    await expect(f.guard.assert('nope', 'ocsp')).rejects.toThrow('no CA "nope"');
  });

  test('concurrent callers share one read', async () => {
    const f = fixture({ a: 'active' });
    await Promise.all(Array.from({ length: 10 }, () => f.guard.assert('a', 'ocsp')));
    expect(f.reads()).toBe(1);
  });
});
