import { describe, expect, test } from 'vitest';
import type { AuditRecord } from '../audit/ports.js';
import { fixedClock } from '../clock/clock.js';
import { isPkiError } from '../errors/pki-error.js';
import type { KeyState } from './key-state.js';
import type { CaRecord } from './ports.js';
import { assertRotatable, successorIdOf, takeOver } from './rotation.js';

/** An in-memory CA table with compare-and-set transitions, and an audit that records what it is given. */
function fakeDeps(states: Record<string, KeyState>) {
  const events: { type: string; data: Record<string, unknown> }[] = [];
  const record = (id: string) => ({ id, role: 'issuing', parentId: 'root', keyState: states[id]!, keyStateAt: null, certDer: Buffer.alloc(0) }) as unknown as CaRecord;
  return {
    events,
    states,
    deps: {
      cas: {
        findById: async (id: string) => (id in states ? record(id) : null),
        transitionKey: async (id: string, from: KeyState, to: KeyState) => {
          if (states[id] !== from) return false;
          states[id] = to;
          return true;
        },
      },
      audit: {
        record: async (type: string, _actor: string, data: Record<string, unknown>) => {
          events.push({ type, data });
          return {} as AuditRecord;
        },
      },
      clock: fixedClock(new Date('2027-01-01T00:00:00Z')),
    },
  };
}

describe('rotation of an issuing CA', () => {
  test('successor ids: a trailing number counted up past the ids taken, else "-2"', () => {
    const taken = new Set(['issuing-1', 'issuing-2', 'edge-2']);
    expect(successorIdOf('issuing-1', (id) => taken.has(id))).toBe('issuing-3');
    expect(successorIdOf('edge', (id) => taken.has(id))).toBe('edge-3');
    expect(successorIdOf('ca9', () => false)).toBe('ca10');
  });

  test('takeover: the successor becomes active first, then the old key deactivated, each audited', async () => {
    const f = fakeDeps({ old: 'active', next: 'preActivation' });
    expect(await takeOver(f.deps, 'old', 'next', 'op')).toEqual({ activated: true, deactivated: true });
    expect(f.states).toEqual({ old: 'deactivated', next: 'active' });
    expect(f.events.map((e) => [e.type, e.data.ca, e.data.to])).toEqual([
      ['key.state_changed', 'next', 'active'],
      ['key.state_changed', 'old', 'deactivated'],
    ]);
  });

  test('takeover again (another process did it first) changes and audits nothing', async () => {
    const f = fakeDeps({ old: 'deactivated', next: 'active' });
    expect(await takeOver(f.deps, 'old', 'next', 'op')).toEqual({ activated: false, deactivated: false });
    expect(f.events).toEqual([]);
  });

  test('refuses: a successor that cannot become active leaves the old key signing', async () => {
    const f = fakeDeps({ old: 'active', next: 'compromised' });
    const err = await takeOver(f.deps, 'old', 'next', 'op').catch((e: unknown) => e);
    expect(isPkiError(err) && err.type === 'conflict').toBe(true);
    expect(f.states.old).toBe('active');
  });

  test('refuses to rotate a root or a key that is not active', () => {
    const ca = (role: string, keyState: KeyState) => ({ id: 'x', role, keyState, parentId: role === 'root' ? null : 'root' }) as unknown as CaRecord;
    expect(() => assertRotatable(ca('root', 'active'))).toThrow(/roll over/);
    expect(() => assertRotatable(ca('issuing', 'suspended'))).toThrow(/its key is suspended, not active/);
    expect(() => assertRotatable(ca('issuing', 'active'))).not.toThrow();
  });
});
