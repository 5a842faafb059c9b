import { describe, expect, test } from 'vitest';
import { chainHash, genesisHash } from './audit-log.js';
import { classifyChainBreak, compareWindow } from './localize.js';
import type { AuditRecord } from './ports.js';

describe('compareWindow names the first difference from what a checkpoint signed', () => {
  // A checkpoint over events 11..16 (base 10).
  const signed = ['a', 'b', 'c', 'd', 'e', 'f'];
  test.each([
    ['nothing when every event is there', ['a', 'b', 'c', 'd', 'e', 'f'], null],
    ['a changed event', ['a', 'b', 'X', 'd', 'e', 'f'], { seq: 13, change: 'changed' }],
    ['a removed event (the rest moved up)', ['a', 'b', 'd', 'e', 'f'], { seq: 13, change: 'removed', detail: expect.stringMatching(/^event 13 removed/) }],
    ['two removed events', ['a', 'b', 'e', 'f'], { seq: 13, change: 'removed', detail: expect.stringMatching(/^events 13\.\.14 removed/) }],
    ['an inserted event', ['a', 'b', 'X', 'c', 'd', 'e', 'f'], { seq: 13, change: 'inserted', detail: expect.stringMatching(/^1 event inserted before event 13/) }],
    ['two swapped events', ['a', 'b', 'd', 'c', 'e', 'f'], { seq: 13, change: 'reordered', detail: expect.stringMatching(/events 13 and 14 swapped/) }],
    ['an event moved further down', ['a', 'b', 'd', 'e', 'c', 'f'], { seq: 13, change: 'reordered', detail: expect.stringMatching(/event 13 moved to position 15/) }],
    ['a cut tail', ['a', 'b', 'c', 'd'], { seq: 15, change: 'cut', detail: expect.stringMatching(/^events 15\.\.16 removed: the log now ends at event 14/) }],
    ['an empty rest', [], { seq: 11, change: 'cut' }],
  ])('%s', (_name, found, expected) => {
    const r = compareWindow(signed, found, 10);
    if (expected === null) expect(r).toBeNull();
    else expect(r).toMatchObject(expected);
  });
});

/** A correct chain of `n` events. */
function chain(n: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  let prev = genesisHash;
  for (let seq = 1; seq <= n; seq++) {
    const r = { seq, at: new Date(Date.UTC(2030, 0, 1, 0, 0, seq)), type: 't', actor: 'a', data: JSON.stringify({ n: seq }), prevHash: prev, hash: '' };
    r.hash = chainHash(prev, seq, r, r.data);
    prev = r.hash;
    out.push(r);
  }
  return out;
}

describe('classifyChainBreak names the event where the stored chain breaks', () => {
  test('an edited event', () => {
    const c = chain(6);
    const edited = { ...c[2]!, data: '{"forged":true}' };
    expect(classifyChainBreak(edited, 2, c[3])).toMatchObject({ seq: 3, change: 'changed' });
  });

  test('a deleted event (seq gap)', () => {
    const c = chain(6);
    expect(classifyChainBreak(c[3]!, 2, c[4])).toMatchObject({ seq: 3, change: 'removed', detail: 'event 3 missing from the log' });
  });

  test('a deleted event with the rest renumbered', () => {
    const c = chain(6);
    const moved = { ...c[3]!, seq: 3 };
    expect(classifyChainBreak(moved, 2, { ...c[4]!, seq: 4 })).toMatchObject({ seq: 3, change: 'removed', detail: expect.stringMatching(/^event 3 removed and the events after renumbered \(event 4 now has seq 3\)/) });
  });

  test('two events that swapped seq', () => {
    const c = chain(6);
    expect(classifyChainBreak({ ...c[3]!, seq: 3 }, 2, { ...c[2]!, seq: 4 })).toMatchObject({ seq: 3, change: 'reordered', detail: expect.stringMatching(/event 4 was moved to position 3/) });
  });

  test('an inserted event with the rest renumbered', () => {
    const c = chain(6);
    // A forged event 3 that links properly, then the original event 3 as seq 4.
    expect(classifyChainBreak({ ...c[2]!, seq: 4 }, 3, { ...c[3]!, seq: 5 })).toMatchObject({ seq: 3, change: 'inserted', detail: expect.stringMatching(/^1 event inserted before event 3/) });
  });

  test('an event replaced and re-hashed (the next one no longer links to it)', () => {
    const c = chain(6);
    expect(classifyChainBreak(c[3]!, 3, c[4])).toMatchObject({ seq: 3, change: 'changed', detail: expect.stringMatching(/event 3 was replaced and its hash recomputed/) });
  });
});
