/**
 * File modes of what Trellis keeps on disk. Everything it creates in a data
 * directory is private to its user (files 0600, directories 0700) whatever
 * the umask: the database holds wrapped CA keys, the audit log and ACME
 * account data, trellis.json may hold a PostgreSQL password. A secret read
 * from a file (a passphrase file) must be private too: like ssh with a key
 * file, Trellis refuses one that group or others may read.
 *
 * POSIX only: on Windows the mode bits say nothing about access, so nothing
 * is checked or changed there.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PkiError } from '../errors/pki-error.js';

/** Mode of every file Trellis creates in a data directory. */
export const privateFileMode = 0o600;
/** Mode of every directory Trellis creates in (or as) a data directory. */
export const privateDirMode = 0o700;

const posix = process.platform !== 'win32';
const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;
/** Group or other may read, write or enter. */
const shared = (mode: number) => (mode & 0o077) !== 0;

/**
 * Throws `invalidConfig` when group or others have any permission on `file`
 * (a secret they could read or replace), naming the file and the fix. `what`
 * names the secret in the message ("passphrase file"). Symbolic links are
 * followed: the mode that counts is the target's. A missing file is left to
 * the reader, which reports it in its own words.
 */
export function assertPrivateFile(file: string, what: string): void {
  if (!posix) return;
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new PkiError('invalidConfig', `cannot check the permissions of ${what} ${file}`, { cause: err });
  }
  if (shared(st.mode)) {
    throw new PkiError('invalidConfig', `${what} ${file} is accessible by group or others (mode ${octal(st.mode)}); a secret must be private to its owner: chmod 600 ${file}`);
  }
}

/** Directories already warned about in this process (one warning each, however many times they are opened). */
const warned = new Set<string>();

/**
 * Writes one warning on stderr when group or others have any permission on
 * `dir`. The directory is the operator's: its mode is never changed. Returns
 * whether it warned.
 */
export function warnIfSharedDir(dir: string, what = 'data directory'): boolean {
  dir = path.resolve(dir);
  if (!posix || warned.has(dir)) return false;
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    // Nothing to warn about: whoever needs the directory reports its absence.
    return false;
  }
  if (!st.isDirectory() || !shared(st.mode)) return false;
  warned.add(dir);
  process.stderr.write(`warning: ${what} ${dir} is accessible by group or others (mode ${octal(st.mode)}); its files are private, but consider chmod 700 ${dir}\n`);
  return true;
}

/**
 * Makes an existing file of ours private: chmod 0600 when group or others
 * have any permission on it. A missing file is fine; a file this user may not
 * chmod (another owner) gets a warning on stderr instead. Returns whether the
 * mode changed.
 */
export function makePrivate(file: string): boolean {
  if (!posix) return false;
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  // A symbolic link's own mode means nothing; the target is not necessarily ours.
  if (!st.isFile() || !shared(st.mode)) return false;
  try {
    fs.chmodSync(file, privateFileMode);
    return true;
  } catch (err) {
    process.stderr.write(`warning: ${file} is accessible by group or others (mode ${octal(st.mode)}) and cannot be made private (${(err as NodeJS.ErrnoException).code ?? 'error'}); chmod 600 ${file}\n`);
    return false;
  }
}

/**
 * Creates `file` empty with mode 0600 if it does not exist (an existing one
 * is left as it is). SQLite creates a database's -wal, -shm and -journal
 * files with the database file's mode, so a database created this way keeps
 * all of them private whatever the umask.
 */
export function createPrivateFile(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, privateFileMode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  try {
    // The umask may have taken bits away from 0600 (never added): set it exactly.
    if (posix) fs.fchmodSync(fd, privateFileMode);
  } finally {
    fs.closeSync(fd);
  }
}

/** Creates `dir` (and missing parents) with mode 0700; existing directories keep their mode. */
export function makePrivateDir(dir: string): void {
  const first = fs.mkdirSync(dir, { recursive: true, mode: privateDirMode });
  // mkdir applies the umask; set the directories we created exactly.
  if (posix && first !== undefined) {
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      fs.chmodSync(d, privateDirMode);
      if (d === path.resolve(first) || d === path.dirname(d)) break;
    }
  }
}

/**
 * Writes `data` to a new or existing file with mode 0600 (an existing
 * file's mode is set too). `flag` as for fs.writeFileSync ('wx' refuses to
 * overwrite).
 */
export function writePrivateFile(file: string, data: string | Uint8Array, flag: 'w' | 'wx' = 'w'): void {
  const fd = fs.openSync(file, flag, privateFileMode);
  try {
    if (posix) fs.fchmodSync(fd, privateFileMode);
    fs.writeFileSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Makes a tree Trellis copied into a data directory private: directories
 * 0700, files 0600 (e.g. the profiles `init` copies from the package, which
 * keep the package's modes otherwise). Symbolic links are left alone.
 */
export function makePrivateTree(root: string): void {
  if (!posix) return;
  const st = fs.lstatSync(root);
  if (st.isDirectory()) {
    fs.chmodSync(root, privateDirMode);
    for (const entry of fs.readdirSync(root)) makePrivateTree(path.join(root, entry));
  } else if (st.isFile()) {
    fs.chmodSync(root, privateFileMode);
  }
}
