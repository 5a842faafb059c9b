/**
 * A small pool of PKCS#11 sessions: each session runs one operation at a
 * time. A session has at most one active operation (PKCS#11 v2.40 §5.12;
 * SoftHSM2 answers a second C_SignInit with CKR_OPERATION_ACTIVE), and an
 * asynchronous C_Sign runs on a libuv worker thread while JavaScript goes on,
 * so concurrent signatures each need a session of their own. Sessions are
 * opened on demand up to `size`; a caller beyond that waits in FIFO order.
 */
import pkcs11js from 'pkcs11js';
import { PkiError } from '../errors/pki-error.js';
import { codeOf, safeCause, type Token } from './pkcs11-token.js';

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
      const result = await fn(session);
      this.#release(session);
      return result;
    } catch (err) {
      if (!deadSession.has(codeOf(err))) {
        this.#release(session);
        throw err;
      }
      const closeErr = this.#drop(session);
      if (closeErr) throw new PkiError('serverInternal', `PKCS#11 token "${this.#token.label}": C_CloseSession failed after an error`, { cause: new AggregateError([err, closeErr]) });
      throw err;
    } finally {
      this.#busy -= 1;
      if (this.#busy === 0) this.#drained?.();
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
      if (idle) return idle;
      if (this.#open < this.#size) {
        const s = this.#token.openSession();
        this.#open += 1;
        return s;
      }
      const s = await new Promise<Handle | null>((resolve) => this.#waiting.push(resolve));
      if (s) return s;
    }
  }

  #release(session: Handle): void {
    const next = this.#waiting.shift();
    if (next) next(session);
    else this.#idle.push(session);
  }

  /** Forgets a broken session and closes it if the token still knows it; the close error, if any, is returned. */
  #drop(session: Handle): Error | undefined {
    this.#open -= 1;
    this.#waiting.shift()?.(null);
    try {
      this.#token.pkcs11.C_CloseSession(session);
      return undefined;
    } catch (err) {
      // Already gone (often why it is dropped): nothing is left to close.
      const code = codeOf(err);
      return code === pkcs11js.CKR_SESSION_HANDLE_INVALID || code === pkcs11js.CKR_SESSION_CLOSED ? undefined : safeCause(err);
    }
  }

  #closeSession(session: Handle): void {
    this.#open -= 1;
    try {
      this.#token.pkcs11.C_CloseSession(session);
    } catch (err) {
      throw new PkiError('serverInternal', `PKCS#11 token "${this.#token.label}": C_CloseSession failed`, { cause: safeCause(err) });
    }
  }
}
