/**
 * SoftHSM2 tokens for tests (Debian softhsm2 2.6.1; pkcs11-tool from opensc).
 *
 * SoftHSM2 reads SOFTHSM2_CONF once, at C_Initialize, and sees the tokens of
 * its token directory as they are then: so a test file makes all its tokens
 * first (`softHsmToken`, in beforeAll), then opens keystores. Every token of
 * a process lives in one temporary directory, which `removeSoftHsm` deletes.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pkcs11js from 'pkcs11js';
import { interopAvailable } from './interop.js';

/** The SoftHSM2 module (Debian path), or TRELLIS_PKCS11_MODULE. */
export const softHsmModule = process.env.TRELLIS_PKCS11_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';

const onPath = (tool: string) => (process.env.PATH ?? '').split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, tool)));

/** True when SoftHSM2 and pkcs11-tool are installed; otherwise skips loudly, or fails under TRELLIS_REQUIRE_INTEROP=1. */
export function haveSoftHsm(): boolean {
  return interopAvailable(fs.existsSync(softHsmModule) && onPath('softhsm2-util') && onPath('pkcs11-tool'), 'SoftHSM2 and pkcs11-tool', 'apt-get install softhsm2 opensc');
}

/** A token made for a test: its label and PINs (the user PIN as a Buffer too, as keystores take it). */
export interface SoftHsmToken {
  readonly label: string;
  readonly pin: string;
  readonly soPin: string;
  readonly modulePath: string;
  pinBuffer(): Buffer;
}

let dir: string | null = null;

/** The process's SoftHSM2 directory and config; sets SOFTHSM2_CONF for this process and its children. */
function softHsmDir(): string {
  if (dir) return dir;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-softhsm-'));
  fs.mkdirSync(path.join(dir, 'tokens'));
  fs.writeFileSync(path.join(dir, 'softhsm2.conf'), `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = path.join(dir, 'softhsm2.conf');
  return dir;
}

/** Initializes a new token labelled `label` with its own PINs (`softhsm2-util --init-token --free`). */
export function softHsmToken(label: string, pin = `${label}-pin-4711`): SoftHsmToken {
  softHsmDir();
  const soPin = `${label}-so-8642`;
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], { stdio: 'pipe' });
  return { label, pin, soPin, modulePath: softHsmModule, pinBuffer: () => Buffer.from(pin, 'utf8') };
}

/** Runs `pkcs11-tool --module M --token-label L --login --pin P <args>` and resolves with its stdout. */
export function pkcs11Tool(token: SoftHsmToken, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('pkcs11-tool', ['--module', token.modulePath, '--token-label', token.label, '--login', '--pin', token.pin, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`pkcs11-tool ${args.join(' ')} failed: ${stderr}${stdout}`));
      else resolve(stdout);
    });
  });
}

/** One object of `pkcs11-tool --list-objects`: its heading line (e.g. "Private Key Object; EC") and its fields. */
export interface ListedObject {
  kind: string;
  fields: Record<string, string>;
}

/** Parses `pkcs11-tool --list-objects` output (opensc 0.23: a heading line, then indented "name: value" lines). */
export function parseObjectList(out: string): ListedObject[] {
  const objects: ListedObject[] = [];
  for (const line of out.split('\n')) {
    if (/^\S/.test(line)) objects.push({ kind: line.trim(), fields: {} });
    else {
      const m = /^\s+([^:]+):\s*(.*)$/.exec(line);
      if (m && objects.length > 0) objects.at(-1)!.fields[m[1]!.trim()] = m[2]!.trim();
    }
  }
  return objects;
}

/** Deletes the process's SoftHSM2 directory (call after every keystore is closed). */
export function removeSoftHsm(): void {
  if (!dir) return;
  fs.rmSync(dir, { recursive: true, force: true });
  dir = null;
}

/**
 * A second pkcs11js handle on the module, in this process, for a test to
 * take the login away from the keystores as another user of the module
 * would: the module is one per process (a second C_Initialize answers
 * CKR_CRYPTOKI_ALREADY_INITIALIZED), so C_Logout and C_CloseAllSessions here
 * end the login and sessions of every keystore on the token. It never calls
 * C_Finalize, which would end the module for the keystores too.
 */
export function otherModuleUser(token: SoftHsmToken) {
  const p11 = new pkcs11js.PKCS11();
  p11.load(token.modulePath);
  try {
    p11.C_Initialize();
  } catch (err) {
    if (!(err instanceof pkcs11js.Pkcs11Error) || err.code !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw err;
  }
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trimEnd() === token.label);
  if (!slot) throw new Error(`no token ${token.label}`);
  const withSession = <T>(fn: (session: Buffer) => T): T => {
    const session = p11.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
    try {
      return fn(session);
    } finally {
      p11.C_CloseSession(session);
    }
  };
  return {
    /** C_Logout: the token is no longer logged in for anyone in this process. */
    logout: () => withSession((s) => p11.C_Logout(s)),
    /** C_CloseAllSessions on the token's slot: every session of the process on it is gone, and the login with them. */
    closeAllSessions: () => p11.C_CloseAllSessions(slot),
    /** C_Login as the user (the login then covers every session of the process). */
    login: (pin: string) => withSession((s) => p11.C_Login(s, pkcs11js.CKU_USER, pin)),
    /** C_SetPIN on a session of the logged-in user. */
    setPin: (oldPin: string, newPin: string) => withSession((s) => p11.C_SetPIN(s, oldPin, newPin)),
  };
}

/**
 * A CA token and a root token, with a PIN file each (0600) in `dir`. SoftHSM2
 * reads its token directory at C_Initialize: both tokens exist before
 * anything opens one.
 */
export function caAndRootTokens(dir: { file(name: string): string }, prefix: string): { caToken: SoftHsmToken; rootToken: SoftHsmToken; pinFile: string; rootPinFile: string } {
  const caToken = softHsmToken(`${prefix}-ca`);
  const rootToken = softHsmToken(`${prefix}-root`);
  const pinFile = dir.file('ca.pin');
  const rootPinFile = dir.file('root.pin');
  fs.writeFileSync(pinFile, `${caToken.pin}\n`, { mode: 0o600 });
  fs.writeFileSync(rootPinFile, `${rootToken.pin}\n`, { mode: 0o600 });
  return { caToken, rootToken, pinFile, rootPinFile };
}
