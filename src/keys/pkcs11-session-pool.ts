/**
 * A small pool of PKCS#11 sessions: each session runs one operation at a
 * time. A session has at most one active operation (PKCS#11 v2.40 §5.12;
 * SoftHSM2 answers a second C_SignInit with CKR_OPERATION_ACTIVE), and an
 * asynchronous C_Sign runs on a libuv worker thread while JavaScript goes on,
 * so concurrent signatures each need a session of their own. Sessions are
 * opened on demand up to `size`; a caller beyond that waits in FIFO order.
 * A session opened before the token's login was restored (Token.recover) is
 * closed instead of being given out again.
 */
import pkcs11js from 'pkcs11js';
import { PkiError } from '../errors/pki-error.js';
import { closeGone, codeOf, loginLost, safeCause, sessionGone, type Token } from './pkcs11-token.js';

type Handle = Buffer;

/** Codes after which a session is not given out again (it is gone, or may hold an operation). */
const deadSession = new Set<number>([
  pkcs11js.CKR_SESSION_HANDLE_INVALID,
  pkcs11js.CKR_SESSION_CLOSED,
  pkcs11js.CKR_DEVICE_REMOVED,
  pkcs11js.CKR_TOKEN_NOT_PRESENT,
  pkcs11js.CKR_OPERATION_ACTIVE,
]);

const closedError = () => new PkiError('forbidden', 'the PKCS#11 keystore is closed');

/** Sessions of one keystore on one token; {@link close} closes them (not the token). */
export class SessionPool {
  readonly #token: Token;
  readonly #size: number;
  readonly #idle: Handle[] = [];
  /** Callers waiting for a session: given one, or null to try again (a session was dropped, or the pool closed). */
  readonly #waiting: ((s: Handle | null) => void)[] = [];
  /** The token generation each open session was opened in. */
  readonly #generationOf = new WeakMap<Handle, number>();
  #open = 0;
  #busy = 0;
  #drained: (() => void) | null = null;
  #closed = false;

  constructor(token: Token, size: number) {
    if (!Number.isInteger(size) || size < 1 || size > 64) throw new PkiError('invalidConfig', 'a PKCS#11 session pool has 1 to 64 sessions');
    this.#token = token;
    this.#size = size;
  }

  /** The module the sessions belong to. */
  get pkcs11(): pkcs11js.PKCS11 {
    return this.#token.pkcs11;
  }

  /** Runs `fn` with a session of its own; the session goes back to the pool after, or is dropped after a fatal error. */
  async run<T>(fn: (session: Handle) => T | Promise<T>): Promise<T> {
    const session = await this.#acquire();
    this.#busy += 1;
    try {
      let result: T;
      try {
        result = await fn(session);
      } catch (err) {
        const closeErr = deadSession.has(codeOf(err)) ? this.#drop(session) : this.#release(session);
        if (closeErr) throw new PkiError('serverInternal', `PKCS#11 token "${this.#token.label}": C_CloseSession failed after an error`, { cause: new AggregateError([err, closeErr]) });
        throw err;
      }
      const closeErr = this.#release(session);
      if (closeErr) throw new PkiError('serverInternal', `PKCS#11 token "${this.#token.label}": C_CloseSession of a session from before the login was restored failed`, { cause: closeErr });
      return result;
    } finally {
      this.#busy -= 1;
      if (this.#busy === 0) this.#drained?.();
    }
  }

  /**
   * Runs `fn` as {@link run} does; when it fails in a way a lost login
   * explains (pkcs11-token.ts `loginLost`), has the token recover (log in
   * again if the login is gone) and runs `fn` once more, on a session of the
   * new generation. `fn` gets the generation its session belongs to, so it
   * can find object handles again when that is newer than the ones it holds.
   * A second failure for lost sessions or login is `serverInternal` naming
   * the token; any other second failure is thrown as it is.
   */
  async runRecovering<T>(fn: (session: Handle, generation: number) => T | Promise<T>): Promise<T> {
    const seen = this.#token.generation;
    try {
      return await this.run((s) => fn(s, this.#generationOf.get(s)!));
    } catch (err) {
      if (!loginLost.has(codeOf(err))) throw err;
      this.#token.recover(seen);
    }
    try {
      return await this.run((s) => fn(s, this.#generationOf.get(s)!));
    } catch (err) {
      const code = codeOf(err);
      if (sessionGone.has(code) || code === pkcs11js.CKR_USER_NOT_LOGGED_IN) {
        throw new PkiError('serverInternal', `PKCS#11 token "${this.#token.label}": the operation failed again after the login was restored`, { cause: err instanceof PkiError ? err : safeCause(err) });
      }
      throw err;
    }
  }

  /** Refuses new work, waits for operations in progress, then closes every session of the pool. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) w(null);
    if (this.#busy > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    for (const s of this.#idle.splice(0)) this.#closeSession(s);
  }

  async #acquire(): Promise<Handle> {
    for (;;) {
      if (this.#closed) throw closedError();
      const idle = this.#idle.pop();
      if (idle && this.#stale(idle)) {
        const err = this.#drop(idle);
        if (err) throw new PkiError('serverInternal', `PKCS#11 token "${this.#token.label}": C_CloseSession of a session from before the login was restored failed`, { cause: err });
        continue;
      }
      if (idle) return idle;
      if (this.#open < this.#size) {
        const generation = this.#token.generation;
        const s = this.#token.openSession();
        this.#generationOf.set(s, generation);
        this.#open += 1;
        return s;
      }
      const s = await new Promise<Handle | null>((resolve) => this.#waiting.push(resolve));
      if (s) return s;
    }
  }

  /** Gives the session to the next waiter or back to the pool; a stale one is dropped instead (its close error, if any, is returned). */
  #release(session: Handle): Error | undefined {
    if (this.#stale(session)) return this.#drop(session);
    const next = this.#waiting.shift();
    if (next) next(session);
    else this.#idle.push(session);
    return undefined;
  }

  /** True for a session opened before the token's last recovery. */
  #stale(session: Handle): boolean {
    return this.#generationOf.get(session) !== this.#token.generation;
  }

  /** Forgets a broken session and closes it if the token still knows it; the close error, if any, is returned. */
  #drop(session: Handle): Error | undefined {
    this.#open -= 1;
    this.#waiting.shift()?.(null);
    try {
      closeGone(this.#token.pkcs11, session);
      return undefined;
    } catch (err) {
      return err instanceof PkiError && err.cause instanceof Error ? err.cause : safeCause(err);
    }
  }

  #closeSession(session: Handle): void {
    this.#open -= 1;
    try {
      // A session the token already forgot (the login was lost) needs no closing.
      closeGone(this.#token.pkcs11, session);
    } catch (err) {
      throw new PkiError('serverInternal', `PKCS#11 token "${this.#token.label}": C_CloseSession failed`, { cause: err });
    }
  }
}
