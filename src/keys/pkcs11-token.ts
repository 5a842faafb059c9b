/**
 * One logged-in PKCS#11 token per process, shared by every Pkcs11Keystore on it.
 *
 * PKCS#11 state is per process, not per object (PKCS#11 v2.40 §5.4, §11.6):
 * a second C_Initialize of the same module answers
 * CKR_CRYPTOKI_ALREADY_INITIALIZED and one C_Finalize ends it for everyone;
 * a login covers every session of the process on that token, C_Logout ends
 * it for all of them, and closing the last session logs out too (measured
 * on SoftHSM2 2.6.1). So modules and logins are reference-counted here: the
 * first user initializes and logs in, the last one logs out and finalizes,
 * and an "anchor" session holds the login in between.
 *
 * While a token is logged in, C_Login answers CKR_USER_ALREADY_LOGGED_IN
 * whatever PIN it is given. A second keystore's PIN is therefore compared
 * with an HMAC of the PIN that logged in (under a random per-process key),
 * so a wrong PIN is refused even when the token cannot tell.
 *
 * A login can be lost while the process runs (the HSM restarts, someone
 * calls C_Logout or C_CloseAllSessions): {@link Token.recover} logs in again
 * with the PIN kept sealed in the login (pkcs11-pin-seal.ts), at most once
 * per loss, and a PIN the token refuses then ends the login for good.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import pkcs11js from 'pkcs11js';
import { PkiError } from '../errors/pki-error.js';
import { SealedPin } from './pkcs11-pin-seal.js';

type Handle = Buffer;

/** PKCS#11 v3.0 §6.3.5 values that pkcs11js 2.1.7 does not export (SoftHSM2 2.6 implements them). */
export const CKK_EC_EDWARDS = 0x40;
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
export const CKM_EDDSA = 0x1057;
/** PKCS#11 v2.40 §5.6 session states that pkcs11js 2.1.7 does not export: a session of a logged-in user. */
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;

interface LoadedModule {
  readonly pkcs11: pkcs11js.PKCS11;
  /** False when another user in this process initialized the module first: then it is not ours to finalize. */
  readonly owned: boolean;
  users: number;
}

interface Login {
  readonly module: LoadedModule;
  readonly modulePath: string;
  readonly slot: Handle;
  readonly label: string;
  /** The session that holds the login; replaced when a lost login is restored. */
  anchor: Handle;
  readonly pinMac: Buffer;
  /** The PIN, sealed, to log in again after the login was lost. */
  readonly pin: SealedPin;
  /** Counts restorations: sessions and object handles from an older generation are found again. */
  generation: number;
  /** Set when the token refused the PIN on a new login: final for this process. */
  failed: PkiError | null;
  users: number;
}

const modules = new Map<string, LoadedModule>();
const logins = new Map<string, Login>();
const pinMacKey = randomBytes(32);
const macOf = (pin: Buffer) => createHmac('sha256', pinMacKey).update(pin).digest();

/** What {@link openToken} gives a keystore: the module, the slot, and a release that undoes the open once. */
export interface Token {
  readonly pkcs11: pkcs11js.PKCS11;
  readonly slot: Handle;
  readonly label: string;
  /** Opens a read-write session on the token (already logged in). */
  openSession(): Handle;
  /** Goes up by one each time {@link recover} ran: sessions and object handles older than that are stale. */
  readonly generation: number;
  /** The final error after the token refused the PIN on logging in again, or null. */
  readonly failure: PkiError | null;
  /**
   * Called after an operation failed in a way a lost login explains, with
   * the {@link generation} the operation started in. When another caller
   * already recovered since, returns at once. Otherwise checks the login and
   * logs in again if it is gone (synchronously: JavaScript runs one recovery
   * at a time, and callers that fail meanwhile find the new generation), then
   * starts a new generation. A PIN the token refuses is final: that
   * `serverInternal` error is thrown at once from then on, and the token is
   * never asked again. Any other failure (token absent) is thrown and the
   * next call tries again.
   */
  recover(seenGeneration: number): void;
  release(): void;
}

/**
 * Loads `modulePath`, finds the token labelled `tokenLabel`, and logs in
 * with `pin` (or checks `pin` against the PIN this process logged in with).
 * `invalidConfig` for a module that does not load or a missing or ambiguous
 * label, `badPassphrase` for a wrong PIN, `forbidden` for a locked one. The
 * PIN never appears in an error.
 */
export function openToken(opts: { modulePath: string; tokenLabel: string; pin: Buffer }): Token {
  const modulePath = path.resolve(opts.modulePath);
  const module = loadModule(modulePath);
  let login: Login;
  try {
    const slot = findSlot(module.pkcs11, opts.tokenLabel);
    login = logins.get(loginKey(modulePath, slot)) ?? newLogin(module, modulePath, slot, opts.tokenLabel, opts.pin);
  } catch (err) {
    releaseModule(modulePath, module);
    throw err;
  }
  if (login.users > 0) {
    // An existing login holds one module count for all its users.
    releaseModule(modulePath, module);
    if (!timingSafeEqual(macOf(opts.pin), login.pinMac)) throw new PkiError('badPassphrase', `wrong PIN for PKCS#11 token "${opts.tokenLabel}"`);
    if (login.failed) throw login.failed;
  }
  login.users += 1;
  let released = false;
  return {
    pkcs11: module.pkcs11,
    slot: login.slot,
    label: opts.tokenLabel,
    openSession: () => call(`token "${opts.tokenLabel}"`, () => module.pkcs11.C_OpenSession(login.slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION)),
    get generation() {
      return login.generation;
    },
    get failure() {
      return login.failed;
    },
    recover: (seenGeneration) => recoverLogin(login, seenGeneration),
    release() {
      if (released) return;
      released = true;
      releaseLogin(login);
    },
  };
}

function loadModule(modulePath: string): LoadedModule {
  const loaded = modules.get(modulePath);
  if (loaded) {
    loaded.users += 1;
    return loaded;
  }
  const pkcs11 = new pkcs11js.PKCS11();
  try {
    pkcs11.load(modulePath);
  } catch (err) {
    throw new PkiError('invalidConfig', `cannot load the PKCS#11 module ${modulePath}`, { cause: safeCause(err) });
  }
  let owned = true;
  try {
    // OS locking: signatures run on libuv worker threads, several at once.
    pkcs11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (err) {
    if (codeOf(err) !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw new PkiError('invalidConfig', `C_Initialize of ${modulePath} failed`, { cause: safeCause(err) });
    owned = false;
  }
  const entry: LoadedModule = { pkcs11, owned, users: 1 };
  modules.set(modulePath, entry);
  return entry;
}

function releaseModule(modulePath: string, module: LoadedModule): void {
  module.users -= 1;
  if (module.users > 0) return;
  modules.delete(modulePath);
  if (module.owned) call(`module ${modulePath}`, () => module.pkcs11.C_Finalize());
}

/** The one slot whose token has this label (CK_TOKEN_INFO pads labels with spaces to 32 octets). */
function findSlot(pkcs11: pkcs11js.PKCS11, label: string): Handle {
  const slots = call('C_GetSlotList', () => pkcs11.C_GetSlotList(true)).filter((s) => call('C_GetTokenInfo', () => pkcs11.C_GetTokenInfo(s)).label.trimEnd() === label);
  if (slots.length === 0) throw new PkiError('invalidConfig', `no PKCS#11 token labelled "${label}"`);
  if (slots.length > 1) throw new PkiError('invalidConfig', `${slots.length} PKCS#11 tokens are labelled "${label}": labels must be unique`);
  return slots[0]!;
}

const loginKey = (modulePath: string, slot: Handle) => `${modulePath}\0${slot.toString('hex')}`;

/** Logs in on a new anchor session; the login starts with no users and keeps the caller's module count. */
function newLogin(module: LoadedModule, modulePath: string, slot: Handle, label: string, pin: Buffer): Login {
  const anchor = call(`token "${label}"`, () => module.pkcs11.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION));
  try {
    // pkcs11js takes the PIN as a JS string, which cannot be wiped: it lives only for this call.
    module.pkcs11.C_Login(anchor, pkcs11js.CKU_USER, pin.toString('utf8'));
  } catch (err) {
    call(`token "${label}"`, () => module.pkcs11.C_CloseSession(anchor));
    throw loginError(err, label);
  }
  const login: Login = { module, modulePath, slot, label, anchor, pinMac: macOf(pin), pin: new SealedPin(pin), generation: 0, failed: null, users: 0 };
  logins.set(loginKey(modulePath, slot), login);
  return login;
}

/** Codes after which a session is gone: its handle means nothing to the token any more. */
export const sessionGone = new Set<number>([pkcs11js.CKR_SESSION_HANDLE_INVALID, pkcs11js.CKR_SESSION_CLOSED, pkcs11js.CKR_DEVICE_REMOVED, pkcs11js.CKR_TOKEN_NOT_PRESENT]);

/**
 * Codes a lost login explains: the session or the token is gone, or the
 * session is no longer logged in. A lost login also makes the handles of
 * private objects invalid (SoftHSM2 2.6 answers CKR_OBJECT_HANDLE_INVALID
 * for them after C_Logout), so those codes count too: a key that was really
 * destroyed is told apart afterwards, when it cannot be found again.
 */
export const loginLost = new Set<number>([
  ...sessionGone,
  pkcs11js.CKR_USER_NOT_LOGGED_IN,
  pkcs11js.CKR_KEY_HANDLE_INVALID,
  pkcs11js.CKR_OBJECT_HANDLE_INVALID,
]);

function recoverLogin(login: Login, seenGeneration: number): void {
  if (login.failed) throw login.failed;
  if (login.generation !== seenGeneration) return;
  const { pkcs11 } = login.module;
  const what = `PKCS#11 token "${login.label}"`;
  if (anchorState(login) === 'gone') {
    closeGone(pkcs11, login.anchor);
    login.anchor = call(`token "${login.label}"`, () => pkcs11.C_OpenSession(login.slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION));
  }
  if (anchorState(login) !== 'user') {
    const pin = login.pin.open();
    try {
      // As at the first login: a JS string for this call only; the Buffer is wiped.
      pkcs11.C_Login(login.anchor, pkcs11js.CKU_USER, pin.toString('utf8'));
    } catch (err) {
      // Someone else of this process logged in meanwhile: the login is back all the same.
      if (codeOf(err) !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) {
        const refused = loginError(err, login.label);
        if (refused.type === 'serverInternal') throw new PkiError('serverInternal', `${what}: the login was lost, and logging in again failed`, { cause: refused });
        // The PIN no longer opens the token (changed, or locked): asking again could only lock it.
        login.failed = new PkiError('serverInternal', `${what}: the login was lost, and the token refused the PIN on logging in again (changed since start?); restart with the current PIN`, { cause: refused });
        login.pin.wipe();
        throw login.failed;
      }
    } finally {
      pin.fill(0);
    }
  }
  login.generation += 1;
}

/**
 * Throws CKR_USER_NOT_LOGGED_IN (as a `serverInternal` PkiError, a code
 * {@link loginLost} holds) when `session` is not logged in as the user. A
 * search on such a session finds no private object and fails nothing: without
 * this check, a lost login would look like a missing key.
 */
export function assertLoggedIn(pkcs11: pkcs11js.PKCS11, session: Handle, label: string): void {
  const { state } = call(`token "${label}"`, () => pkcs11.C_GetSessionInfo(session));
  if (state !== CKS_RW_USER_FUNCTIONS && state !== CKS_RO_USER_FUNCTIONS) {
    const failure = new Pkcs11Failure(pkcs11js.CKR_USER_NOT_LOGGED_IN, 'C_GetSessionInfo: the session is not logged in (CKR_USER_NOT_LOGGED_IN)');
    throw new PkiError('serverInternal', `PKCS#11 token "${label}": ${failure.message}`, { cause: failure });
  }
}

/** Whether the anchor session is logged in as the user, open but not logged in, or gone. */
function anchorState(login: Login): 'user' | 'public' | 'gone' {
  try {
    const { state } = login.module.pkcs11.C_GetSessionInfo(login.anchor);
    return state === CKS_RW_USER_FUNCTIONS || state === CKS_RO_USER_FUNCTIONS ? 'user' : 'public';
  } catch (err) {
    if (sessionGone.has(codeOf(err))) return 'gone';
    throw new PkiError('serverInternal', `PKCS#11 token "${login.label}": C_GetSessionInfo failed`, { cause: safeCause(err) });
  }
}

/**
 * Closes a session that may already be gone. A session the token no longer
 * knows needs no closing, so those codes are the goal reached; any other
 * failure is thrown.
 */
export function closeGone(pkcs11: pkcs11js.PKCS11, session: Handle): void {
  try {
    pkcs11.C_CloseSession(session);
  } catch (err) {
    if (!sessionGone.has(codeOf(err))) throw new PkiError('serverInternal', 'PKCS#11 C_CloseSession failed', { cause: safeCause(err) });
  }
}

function releaseLogin(login: Login): void {
  login.users -= 1;
  if (login.users > 0) return;
  logins.delete(loginKey(login.modulePath, login.slot));
  login.pin.wipe();
  try {
    try {
      login.module.pkcs11.C_Logout(login.anchor);
    } catch (err) {
      // Already logged out, or the anchor is gone (e.g. the token closed every session): the goal is reached.
      const code = codeOf(err);
      if (code !== pkcs11js.CKR_USER_NOT_LOGGED_IN && !sessionGone.has(code)) throw new PkiError('serverInternal', 'PKCS#11 C_Logout failed', { cause: safeCause(err) });
    }
    closeGone(login.module.pkcs11, login.anchor);
  } finally {
    releaseModule(login.modulePath, login.module);
  }
}

function loginError(err: unknown, label: string): PkiError {
  switch (codeOf(err)) {
    case pkcs11js.CKR_PIN_INCORRECT:
    case pkcs11js.CKR_PIN_INVALID:
    case pkcs11js.CKR_PIN_LEN_RANGE:
      return new PkiError('badPassphrase', `wrong PIN for PKCS#11 token "${label}"`, { cause: safeCause(err) });
    case pkcs11js.CKR_PIN_LOCKED:
      return new PkiError('forbidden', `the user PIN of PKCS#11 token "${label}" is locked`, { cause: safeCause(err) });
    case pkcs11js.CKR_USER_PIN_NOT_INITIALIZED:
      return new PkiError('invalidConfig', `PKCS#11 token "${label}" has no user PIN`, { cause: safeCause(err) });
    default:
      return new PkiError('serverInternal', `C_Login on PKCS#11 token "${label}" failed`, { cause: safeCause(err) });
  }
}

/** The cause Trellis keeps of a PKCS#11 failure: the function, the CKR_* name and code, nothing else. */
export class Pkcs11Failure extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'Pkcs11Failure';
  }
}

/** The CKR_* code of a pkcs11js error, of a {@link Pkcs11Failure}, or of a PkiError caused by one (0 for anything else). */
export function codeOf(err: unknown): number {
  if (err instanceof pkcs11js.Pkcs11Error || err instanceof Pkcs11Failure) return err.code;
  if (err instanceof PkiError) return codeOf(err.cause);
  return 0;
}

/**
 * A cause that keeps the diagnosis (the CKR_* name and code and the PKCS#11
 * function) and nothing else: pkcs11js errors carry native stacks, never
 * arguments, but the cause is rebuilt anyway so nothing passed in can travel.
 */
export function safeCause(err: unknown): Error {
  if (err instanceof pkcs11js.NativeError) return new Pkcs11Failure(codeOf(err), `${err.method || 'PKCS#11'}: ${err.message}`);
  return new Error(err instanceof Error ? `${err.name}: ${err.message}` : 'unknown error');
}

/** Runs one PKCS#11 call; a failure becomes `serverInternal` naming `what` and the CKR_* code. */
export function call<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new PkiError('serverInternal', `PKCS#11 ${what}: ${safeCause(err).message}`, { cause: safeCause(err) });
  }
}
