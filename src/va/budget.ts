/**
 * One validation's time budget and the sockets it opened. RFC 8555 §8.2 lets
 * the server retry, but one attempt must end: every step races the same
 * deadline, and `close` destroys whatever is still open, whatever happened.
 */
import type { Socket } from 'node:net';
import { ValidationFailure } from './failure.js';

/** A deadline shared by every step of one validation, plus the sockets to destroy at the end. */
export class Budget {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly sockets = new Set<Socket>();
  private readonly startedAt = performance.now();

  /** Starts the clock; `totalMs` must be positive. */
  constructor(readonly totalMs: number) {
    this.timer = setTimeout(() => {
      this.controller.abort();
      this.destroyAll();
    }, totalMs);
  }

  /** Aborted when the budget runs out. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Milliseconds left, never negative. */
  remainingMs(): number {
    return Math.max(0, this.totalMs - (performance.now() - this.startedAt));
  }

  /** The failure every step reports when the budget runs out during `activity`. */
  timeout(activity: string): ValidationFailure {
    return new ValidationFailure('connection', `timed out after ${this.totalMs} ms (the budget for the whole validation) while ${activity}`);
  }

  /** Throws `timeout(activity)` if the budget has already run out. */
  check(activity: string): void {
    if (this.signal.aborted) throw this.timeout(activity);
  }

  /**
   * Runs one step: `start` gets settle functions and returns its teardown,
   * which runs exactly once, when the step settles or the budget runs out
   * (then the step rejects with `timeout(activity)`).
   */
  step<T>(activity: string, start: (resolve: (v: T) => void, reject: (err: unknown) => void) => () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.signal.aborted) return reject(this.timeout(activity));
      let settled = false;
      // Filled in once `start` returns; `finish` may run before that.
      const pending: { teardown?: () => void } = {};
      const finish = (): boolean => {
        if (settled) return false;
        settled = true;
        this.signal.removeEventListener('abort', onAbort);
        pending.teardown?.();
        return true;
      };
      const onAbort = () => {
        if (finish()) reject(this.timeout(activity));
      };
      this.signal.addEventListener('abort', onAbort);
      pending.teardown = start(
        (v) => {
          if (finish()) resolve(v);
        },
        (err) => {
          if (finish()) reject(err);
        },
      );
      // `start` may have settled synchronously, before its teardown was known.
      if (settled) pending.teardown();
    });
  }

  /** Registers a socket so that expiry and `close` destroy it. */
  track<S extends Socket>(socket: S): S {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    return socket;
  }

  /** Stops the clock and destroys every socket still open. Idempotent. */
  close(): void {
    clearTimeout(this.timer);
    this.destroyAll();
  }

  private destroyAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}
