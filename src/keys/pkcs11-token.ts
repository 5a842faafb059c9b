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
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import pkcs11js from 'pkcs11js';
import { PkiError } from '../errors/pki-error.js';

type Handle = Buffer;

/** PKCS#11 v3.0 §6.3.5 values that pkcs11js 2.1.7 does not export (SoftHSM2 2.6 implements them). */
export const CKK_EC_EDWARDS = 0x40;
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
export const CKM_EDDSA = 0x1057;

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
  readonly anchor: Handle;
  readonly pinMac: Buffer;
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
  }
  login.users += 1;
  let released = false;
  return {
    pkcs11: module.pkcs11,
    slot: login.slot,
    label: opts.tokenLabel,
    openSession: () => call(`token "${opts.tokenLabel}"`, () => module.pkcs11.C_OpenSession(login.slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION)),
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
  const login: Login = { module, modulePath, slot, anchor, pinMac: macOf(pin), users: 0 };
  logins.set(loginKey(modulePath, slot), login);
  return login;
}

function releaseLogin(login: Login): void {
  login.users -= 1;
  if (login.users > 0) return;
  logins.delete(loginKey(login.modulePath, login.slot));
  try {
    try {
      login.module.pkcs11.C_Logout(login.anchor);
    } catch (err) {
      // Already logged out (e.g. the token closed every session): the goal is reached.
      if (codeOf(err) !== pkcs11js.CKR_USER_NOT_LOGGED_IN) throw new PkiError('serverInternal', 'PKCS#11 C_Logout failed', { cause: safeCause(err) });
    }
    call('C_CloseSession', () => login.module.pkcs11.C_CloseSession(login.anchor));
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
