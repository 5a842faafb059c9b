/**
 * Makes signed audit checkpoints (docs/audit.md): on demand, and from `serve`
 * every `everyEvents` events and every `everySeconds` when the log grew.
 * Each checkpoint covers the events since the previous one (at most
 * `everyEvents`), so a long stretch gets several; every process of an
 * instance may run one, and the store keeps exactly one checkpoint per window.
 */
import type { Clock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import { chainHash, genesisHash } from './audit-log.js';
import { eventDigest, formatCheckpoint, parseCheckpoint } from './checkpoint.js';
import type { AuditCheckpointRecord, AuditCheckpointRepository } from './checkpoint-ports.js';
import type { AuditRepository } from './ports.js';

/** The audit signing key as the checkpointer sees it. Never key material. */
export interface CheckpointSigner {
  /** Serial of the audit certificate (issued by the root, profile audit-signer). */
  serialHex: string;
  certDer: Buffer;
  /** ECDSA over `data` with SHA-256 (P-256), DER-encoded. */
  sign(data: Uint8Array): Promise<Buffer>;
}

export interface CheckpointerOptions {
  events: AuditRepository;
  checkpoints: AuditCheckpointRepository;
  signer: CheckpointSigner;
  clock: Clock;
  /** Most events one checkpoint covers; `tick` makes one as soon as this many are uncovered (default 1000). */
  everyEvents?: number;
  /** `tick` also makes one when the log grew and the newest checkpoint is this old (default 300). */
  everySeconds?: number;
  /** How often the schedule of `start` ticks (default 10). */
  pollSeconds?: number;
  log?: (e: Record<string, unknown>) => void;
}

/** Signs checkpoints over the audit log held by `events`. */
export class AuditCheckpointer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private readonly everyEvents: number;
  private readonly everySeconds: number;

  constructor(private readonly o: CheckpointerOptions) {
    this.everyEvents = o.everyEvents ?? 1000;
    this.everySeconds = o.everySeconds ?? 300;
    if (!Number.isInteger(this.everyEvents) || this.everyEvents < 1) throw new PkiError('invalidConfig', 'a checkpoint must cover at least one event');
  }

  /**
   * Brings the checkpoints up to the newest event and returns the newest one
   * (the existing one when the log did not grow; null for an empty log).
   * Refuses (`conflict`) to sign when the events since the last checkpoint do
   * not chain from it: a log that was tampered with is never signed over.
   */
  async checkpoint(): Promise<AuditCheckpointRecord | null> {
    for (;;) {
      const latest = await this.o.checkpoints.latest();
      const prev = latest ? parseCheckpoint(latest.body) : null;
      const base = prev?.events ?? 0;
      const baseHash = prev?.head ?? genesisHash;
      const last = await this.o.events.last();
      if (!last || last.seq <= base) {
        if (last && last.seq < base) throw new PkiError('conflict', `the audit log ends at event ${last.seq}, but the newest checkpoint covers ${base} events: events were removed (run trellis audit verify)`);
        return latest;
      }
      const target = Math.min(last.seq, base + this.everyEvents);
      const rows = await this.o.events.range(base + 1, target - base);
      let h = baseHash;
      rows.forEach((r, i) => {
        if (r.seq !== base + i + 1 || r.prevHash !== h || chainHash(h, r.seq, r, r.data) !== r.hash) {
          throw new PkiError('conflict', `the audit log does not extend the newest checkpoint at event ${base + i + 1}; not signing (run trellis audit verify)`);
        }
        h = r.hash;
      });
      if (rows.length !== target - base) throw new PkiError('conflict', `the audit log lacks events between ${base + rows.length + 1} and ${target}; not signing`);
      const time = this.o.clock.now();
      const body = formatCheckpoint({ events: target, head: h, time, base, baseHash, digests: rows.map(eventDigest) });
      const signature = await this.o.signer.sign(Buffer.from(body, 'utf8'));
      const stored = await this.o.checkpoints.addAfter(base, { eventCount: target, headHash: h, at: time, body, signature, signerSerialHex: this.o.signer.serialHex });
      // null: another process stored the checkpoint after `base` first; go on from its one.
      if (stored && target === last.seq) return stored;
    }
  }

  /** Makes checkpoints when they are due (see the options); returns the newest made, or null. */
  async tick(): Promise<AuditCheckpointRecord | null> {
    const [latest, last] = await Promise.all([this.o.checkpoints.latest(), this.o.events.last()]);
    const uncovered = (last?.seq ?? 0) - (latest?.eventCount ?? 0);
    if (uncovered === 0) return null;
    const old = !latest || this.o.clock.now().getTime() - latest.at.getTime() >= this.everySeconds * 1000;
    // uncovered < 0 (events removed) goes to checkpoint(), which reports it.
    if (uncovered > 0 && uncovered < this.everyEvents && !old) return null;
    return this.checkpoint();
  }

  /** Ticks every `pollSeconds` until `stop`; failures are logged, never thrown. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.tick()
        .then((cp) => cp && this.o.log?.({ msg: 'audit checkpoint signed', events: cp.eventCount }))
        .catch((err) => this.o.log?.({ level: 'error', msg: 'audit checkpoint failed', error: err instanceof Error ? err.message : String(err) }))
        .finally(() => (this.running = undefined));
    }, (this.o.pollSeconds ?? 10) * 1000);
    this.timer.unref();
  }

  /** Stops the schedule and waits for a checkpoint being made. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
