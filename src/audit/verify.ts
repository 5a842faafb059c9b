/**
 * `trellis audit verify`: one pass over the log that checks the stored hash
 * chain, every stored checkpoint's signature (and its certificate against the
 * root), that the stored checkpoints leave no gap, and that the log still
 * extends every checkpoint, stored or given as a file. A log that no longer
 * extends a checkpoint is localised with the checkpoint's per-event digests,
 * so the first event that was changed, removed, inserted or reordered is
 * named even when the whole chain was recomputed after the edit.
 */
import { parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { chainHash, genesisHash } from './audit-log.js';
import { checkpointSignatureValid, eventDigest, parseCheckpoint, signerCertificateProblem, type CheckpointFile, type CheckpointStatement } from './checkpoint.js';
import { classifyChainBreak, compareWindow, type EventChange } from './localize.js';
import type { AuditCheckpointRepository } from './checkpoint-ports.js';
import type { AuditRecord, AuditRepository } from './ports.js';

/** What the verifier reads. */
export interface AuditVerifyDeps {
  events: AuditRepository;
  checkpoints: AuditCheckpointRepository;
  /** DER certificates of the roots trusted to certify audit signers. */
  anchorsDer: readonly Buffer[];
  /** The stored audit signing certificate (profile audit-signer) with this serial, or null. */
  signerCertificate(serialHex: string): Promise<Buffer | null>;
  pageSize?: number;
}

/** A checkpoint handed to the verifier from outside (a file an outside monitor kept). */
export interface GivenCheckpoint {
  /** How findings name it (the file name). */
  label: string;
  file: CheckpointFile;
}

/** One thing found wrong. */
export interface AuditFinding {
  /** The first event concerned, in the log's original numbering; null when not about one event. */
  seq: number | null;
  /** What happened to the event, or a checkpoint that cannot be trusted or is missing. */
  change: EventChange | 'badCheckpoint' | 'missingCheckpoint';
  /** What found it: "chain", "checkpoint #12" or the file's label. */
  by: string;
  detail: string;
}

/** The outcome of {@link verifyAudit}; `ok` when `findings` is empty. */
export interface AuditVerifyResult {
  ok: boolean;
  /** Events in the log now. */
  events: number;
  /** Stored hash of the last event (null for an empty log). */
  head: string | null;
  checkpoints: {
    stored: number;
    /** Stored checkpoints whose signature and certificate check out. */
    valid: number;
    given: number;
    /** Valid checkpoints (stored or given) that the log still extends. */
    extended: number;
    /** The valid checkpoint covering the most events. */
    latest: { by: string; events: number; time: Date } | null;
  };
  /** The first event found changed, removed, inserted or reordered (lowest seq), or null. */
  first: AuditFinding | null;
  findings: AuditFinding[];
}

/** A checkpoint whose window (events base+1..events) the pass checks. */
interface Window {
  by: string;
  stmt: CheckpointStatement;
  /** Stored checkpoints keep no digests in memory; they are read again if needed. */
  storedId?: number;
  found: string[];
  baseBroken: boolean;
  closed: boolean;
}

/** Checks the log; never throws for what it finds (only for a database it cannot read). */
export async function verifyAudit(deps: AuditVerifyDeps, given: readonly GivenCheckpoint[] = []): Promise<AuditVerifyResult> {
  const pageSize = deps.pageSize ?? 1000;
  const anchors = deps.anchorsDer.map((d) => parseCertificate(d));
  const findings: AuditFinding[] = [];
  const windows: Window[] = [];
  const counts = { stored: 0, valid: 0, given: given.length, extended: 0, latest: null as AuditVerifyResult['checkpoints']['latest'] };
  const noteLatest = (by: string, s: CheckpointStatement) => {
    if (!counts.latest || s.events >= counts.latest.events) counts.latest = { by, events: s.events, time: s.time };
  };

  // Step 1: the stored checkpoints: signatures, certificates, and windows that tile the log.
  const certs = new Map<string, Buffer | null>();
  let coveredTo = 0;
  for (let after: { eventCount: number; id: number } | null = null; ; ) {
    const page = await deps.checkpoints.page(after, 100);
    for (const row of page) {
      counts.stored++;
      const by = `checkpoint #${row.id}`;
      if (!certs.has(row.signerSerialHex)) certs.set(row.signerSerialHex, await deps.signerCertificate(row.signerSerialHex));
      const checked = checkSigned(by, row.body, row.signature, certs.get(row.signerSerialHex) ?? null, anchors);
      if ('finding' in checked) {
        findings.push(checked.finding);
        continue;
      }
      const s = checked.stmt;
      counts.valid++;
      noteLatest(by, s);
      if (s.events !== row.eventCount || s.head !== row.headHash) {
        findings.push({ seq: null, change: 'badCheckpoint', by, detail: `${by}: its stored event count or head differs from the text it signed (events ${s.events})` });
      }
      if (s.base > coveredTo) {
        findings.push({ seq: null, change: 'missingCheckpoint', by, detail: `no stored checkpoint covers events ${coveredTo + 1}..${s.base} (${by} starts after them): a checkpoint was deleted` });
      }
      coveredTo = Math.max(coveredTo, s.events);
      windows.push({ by, stmt: { ...s, digests: [] }, storedId: row.id, found: [], baseBroken: false, closed: false });
    }
    if (page.length < 100) break;
    after = { eventCount: page.at(-1)!.eventCount, id: page.at(-1)!.id };
  }

  // Step 2: checkpoints given as files.
  for (const g of given) {
    const checked = checkSigned(g.label, g.file.body, g.file.signature, g.file.certDer, anchors);
    if ('finding' in checked) findings.push(checked.finding);
    else {
      noteLatest(g.label, checked.stmt);
      windows.push({ by: g.label, stmt: checked.stmt, found: [], baseBroken: false, closed: false });
    }
  }

  const opensAt = groupBy(windows, (w) => w.stmt.base);
  const closesAt = groupBy(windows, (w) => w.stmt.events);
  const open = new Set<Window>();
  const digestsOf = async (w: Window): Promise<string[]> => {
    if (w.storedId === undefined) return w.stmt.digests;
    const row = await deps.checkpoints.findById(w.storedId);
    return row ? parseCheckpoint(row.body).digests : [];
  };
  const openAt = (p: number, h: string) => {
    for (const w of opensAt.get(p) ?? []) {
      w.baseBroken = h !== w.stmt.baseHash;
      open.add(w);
    }
  };
  const close = async (w: Window, h: string | null) => {
    open.delete(w);
    w.closed = true;
    if (h === w.stmt.head && !w.baseBroken) {
      counts.extended++;
      return;
    }
    if (w.baseBroken) {
      findings.push({ seq: null, change: 'changed', by: w.by, detail: `the log no longer matches ${w.by} at or before event ${w.stmt.base} (before the events it lists; an earlier checkpoint names the event)` });
      return;
    }
    const f = compareWindow(await digestsOf(w), w.found, w.stmt.base);
    findings.push(
      f
        ? { ...f, by: w.by, detail: `${f.detail} since ${w.by} (signed ${w.stmt.time.toISOString()} over ${w.stmt.events} events)` }
        : { seq: w.stmt.base + 1, change: 'changed', by: w.by, detail: `the events ${w.stmt.base + 1}..${w.stmt.events} keep their content but not their seq numbers since ${w.by}` },
    );
  };

  // Step 3: one pass over the events. `h` is the chain recomputed from the
  // content (what a checkpoint's head must equal); `stored` is the chain as stored.
  let p = 0;
  let h = genesisHash;
  let stored = { seq: 0, hash: genesisHash };
  let chainBroken = false;
  let lastHash: string | null = null;
  openAt(0, h);
  for await (const [r, next] of withNext(pages(deps.events, pageSize))) {
    p++;
    const computed = chainHash(h, r.seq, r, r.data);
    if (!chainBroken) {
      const linked = r.seq === stored.seq + 1 && r.prevHash === stored.hash;
      const ownHash = r.prevHash === h ? computed : chainHash(r.prevHash, r.seq, r, r.data);
      if (!linked || ownHash !== r.hash) {
        findings.push({ ...classifyChainBreak(r, stored.seq, next), by: 'chain' });
        chainBroken = true;
      }
      stored = { seq: r.seq, hash: r.hash };
    }
    h = computed;
    lastHash = r.hash;
    if (open.size) {
      const d = eventDigest(r);
      for (const w of open) w.found.push(d);
    }
    openAt(p, h);
    for (const w of closesAt.get(p) ?? []) await close(w, h);
  }

  // Step 4: checkpoints over more events than the log now holds: its tail was cut.
  for (const w of windows) {
    if (w.closed) continue;
    if (open.has(w)) await close(w, null);
    else findings.push({ seq: p + 1, change: 'cut', by: w.by, detail: `events ${p + 1}..${w.stmt.events} removed: the log now ends at event ${p}, ${w.by} covers ${w.stmt.events}` });
  }

  const events = findings.filter((f) => f.seq !== null).sort((a, b) => a.seq! - b.seq! || Number(a.by === 'chain') - Number(b.by === 'chain'));
  return {
    ok: findings.length === 0,
    events: p,
    head: lastHash,
    checkpoints: counts,
    first: events[0] ?? null,
    findings: [...events, ...findings.filter((f) => f.seq === null)],
  };
}

/** The statement a signed body makes, or why it cannot be trusted. */
function checkSigned(by: string, body: string, signature: Buffer, certDer: Buffer | null, anchors: readonly ParsedCertificate[]): { stmt: CheckpointStatement } | { finding: AuditFinding } {
  const bad = (why: string) => ({ finding: { seq: null, change: 'badCheckpoint' as const, by, detail: `${by}: ${why}` } });
  let stmt: CheckpointStatement;
  try {
    stmt = parseCheckpoint(body);
  } catch (err) {
    return bad((err as Error).message);
  }
  if (!certDer) return bad('signed by an unknown audit certificate');
  const { cert, problem } = signerCertificateProblem(certDer, anchors, stmt.time);
  if (problem || !cert) return bad(problem ?? 'no audit certificate');
  if (!checkpointSignatureValid(body, signature, cert)) return bad(`the signature does not verify with the audit certificate (serial ${cert.serialHex})`);
  return { stmt };
}

function groupBy<T>(items: T[], key: (t: T) => number): Map<number, T[]> {
  const m = new Map<number, T[]>();
  for (const t of items) m.set(key(t), [...(m.get(key(t)) ?? []), t]);
  return m;
}

/** Every event in seq order, a page at a time. */
async function* pages(events: AuditRepository, pageSize: number): AsyncGenerator<AuditRecord> {
  for (let from = 1; ; ) {
    const page = await events.range(from, pageSize);
    yield* page;
    if (page.length < pageSize) return;
    from = page.at(-1)!.seq + 1;
  }
}

/** Pairs each item with the one after it (undefined for the last). */
async function* withNext<T>(items: AsyncIterable<T>): AsyncGenerator<[T, T | undefined]> {
  let prev: { v: T } | undefined;
  for await (const v of items) {
    if (prev) yield [prev.v, v];
    prev = { v };
  }
  if (prev) yield [prev.v, undefined];
}
