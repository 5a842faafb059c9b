/**
 * Naming what happened to the audit log: which event was changed, removed,
 * inserted or reordered. Two sources say it: a checkpoint's per-event digests
 * (exact even when the chain was recomputed after the edit), and the stored
 * chain itself (each hash covers the event's original seq, so an event that
 * moved can be recognised by trying nearby seqs).
 */
import { chainHash } from './audit-log.js';
import type { AuditRecord } from './ports.js';

/** What happened to an event of the log. */
export type EventChange = 'changed' | 'removed' | 'inserted' | 'reordered' | 'cut';

/** One localised change: the first event concerned, in the log's original numbering. */
export interface EventFinding {
  seq: number;
  change: EventChange;
  detail: string;
}

const range = (from: number, to: number) => (from === to ? `event ${from}` : `events ${from}..${to}`);

/**
 * Compares the digests a checkpoint signed for events base+1.. (`signed`)
 * with those of the events now in the same positions (`found`, shorter when
 * the log now ends inside the window). Returns the first difference, or null
 * when every event present matches and none is missing.
 */
export function compareWindow(signed: readonly string[], found: readonly string[], base: number): EventFinding | null {
  const n = Math.min(signed.length, found.length);
  let j = 0;
  while (j < n && signed[j] === found[j]) j++;
  const seq = base + j + 1;
  if (j === n) {
    if (found.length >= signed.length) return null;
    return { seq, change: 'cut', detail: `${range(seq, base + signed.length)} removed: the log now ends at event ${base + found.length}` };
  }
  if (found[j] === signed[j + 1] && found[j + 1] === signed[j]) {
    return { seq, change: 'reordered', detail: `events ${seq} and ${seq + 1} swapped places` };
  }
  const later = signed.indexOf(found[j]!, j + 1);
  const movedOn = found.indexOf(signed[j]!, j + 1);
  if (later > j && movedOn > j) return { seq, change: 'reordered', detail: `event ${seq} moved to position ${base + movedOn + 1}` };
  if (later > j) return { seq, change: 'removed', detail: `${range(seq, base + later)} removed (the events after ${later - j === 1 ? 'it' : 'them'} moved up)` };
  if (movedOn > j) return { seq, change: 'inserted', detail: `${movedOn - j} event${movedOn - j === 1 ? '' : 's'} inserted before event ${seq}` };
  return { seq, change: 'changed', detail: `event ${seq} changed` };
}

/** How far from its place an event is looked for when the chain breaks. */
const searchSpan = 64;

/** The seq an intact event was chained under (its hash covers it), searched near `around`; null when none fits. */
export function originalSeq(r: AuditRecord, around: number): number | null {
  const fits = (s: number) => s >= 1 && chainHash(r.prevHash, s, r, r.data) === r.hash;
  if (fits(r.seq)) return r.seq;
  if (around !== r.seq && fits(around)) return around;
  for (let d = 1; d <= searchSpan; d++) {
    for (const s of [around + d, around - d]) if (s !== r.seq && fits(s)) return s;
  }
  return null;
}

/**
 * Names the break in the stored chain at `r`, the first event that does not
 * link to the one stored before it (seq `prevSeq`; 0 at the start). `next` is
 * the event after `r`, when there is one: it tells a swap from a removal.
 */
export function classifyChainBreak(r: AuditRecord, prevSeq: number, next: AuditRecord | undefined): EventFinding {
  const expected = prevSeq + 1;
  if (r.seq > expected) return { seq: expected, change: 'removed', detail: `${range(expected, r.seq - 1)} missing from the log` };
  const orig = originalSeq(r, r.seq);
  if (orig === null) return { seq: r.seq, change: 'changed', detail: `event ${r.seq} was modified (its hash no longer matches its content)` };
  if (orig === r.seq) {
    // Intact itself, but it does not follow the event stored before it: that one was replaced and re-hashed.
    return { seq: prevSeq, change: 'changed', detail: `event ${prevSeq} was replaced and its hash recomputed (event ${r.seq} no longer links to it)` };
  }
  if (orig > r.seq) {
    const nextOrig = next ? originalSeq(next, r.seq) : null;
    if (nextOrig !== null && nextOrig < orig && nextOrig >= r.seq) return { seq: r.seq, change: 'reordered', detail: `event ${orig} was moved to position ${r.seq} (ahead of event ${nextOrig})` };
    return { seq: r.seq, change: 'removed', detail: `${range(r.seq, orig - 1)} removed and the events after renumbered (event ${orig} now has seq ${r.seq})` };
  }
  return { seq: orig, change: 'inserted', detail: `${r.seq - orig} event${r.seq - orig === 1 ? '' : 's'} inserted before event ${orig} (it now has seq ${r.seq})` };
}
