import { describe, expect, test } from 'vitest';
import { Invalidations } from './invalidations.js';

describe('Invalidations', () => {
  test('a change after a mark is seen for its certificate only; clearing is seen for all', () => {
    const changes = new Invalidations();
    const m0 = changes.mark();
    changes.note('issuing-1:01', 1000);
    expect(changes.changedSince('issuing-1:01', m0)).toBe(true);
    expect(changes.changedSince('issuing-1:02', m0)).toBe(false);
    const m1 = changes.mark();
    expect(changes.changedSince('issuing-1:01', m1)).toBe(false);
    changes.noteAll();
    expect(changes.changedSince('issuing-1:02', m1)).toBe(true);
    expect(changes.count).toBe(1);
  });

  test('changes older than forgetBefore are forgotten, newer ones kept', () => {
    const changes = new Invalidations();
    const m0 = changes.mark();
    changes.note('issuing-1:01', 1000);
    changes.note('issuing-1:02', 3000);
    changes.forgetBefore(2000);
    expect(changes.changedSince('issuing-1:01', m0)).toBe(false);
    expect(changes.changedSince('issuing-1:02', m0)).toBe(true);
  });
});
