/**
 * The CA's view of its keys' states (key-state.ts), read from the database
 * so that a transition made by `trellis key …` on any machine reaches every
 * serving process: the states are read again when the last read is older
 * than `maxAgeMs` (1 s by default), one read at a time.
 */
import type { Clock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import { assertPermits, type KeyState, type KeyUse } from './key-state.js';
import type { CaRepository } from './ports.js';

export class KeyStateGuard {
  #states = new Map<string, KeyState>();
  #readAt = Number.NEGATIVE_INFINITY;
  #reading: Promise<void> | undefined;

  constructor(
    private readonly cas: Pick<CaRepository, 'keyStates'>,
    private readonly clock: Clock,
    private readonly maxAgeMs = 1000,
  ) {}

  /** The current state of a CA's key (`notFound` for an unknown CA). */
  async stateOf(caId: string): Promise<KeyState> {
    // A CA made since the last read (a ceremony in this process) is looked for once more.
    if (this.clock.now().getTime() - this.#readAt >= this.maxAgeMs || !this.#states.has(caId)) await this.refresh();
    const s = this.#states.get(caId);
    if (!s) throw new PkiError('notFound', `no CA "${caId}"`);
    return s;
  }

  /** Throws `forbidden`, naming the state, unless the CA's key may be used for `use` now. */
  async assert(caId: string, use: KeyUse): Promise<void> {
    assertPermits(caId, await this.stateOf(caId), use);
  }

  /** The last states read (issuer selection uses it between reads). */
  known(caId: string): KeyState | undefined {
    return this.#states.get(caId);
  }

  /** Reads the states now (after a transition this process made itself). */
  refresh(): Promise<void> {
    this.#reading ??= (async () => {
      try {
        const at = this.clock.now().getTime();
        this.#states = new Map((await this.cas.keyStates()).map((k) => [k.id, k.keyState]));
        this.#readAt = at;
      } finally {
        this.#reading = undefined;
      }
    })();
    return this.#reading;
  }
}
