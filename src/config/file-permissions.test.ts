import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { assertPrivateFile, createPrivateFile, makePrivate, makePrivateDir, makePrivateTree, warnIfSharedDir, writePrivateFile } from './file-permissions.js';
import { readPassphrase } from './passphrase.js';

const mode = (p: string) => fs.statSync(p).mode & 0o777;
let dir: string;
let umask: number;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-perm-'));
  // The loosest umask: whatever Trellis creates must still come out private.
  umask = process.umask(0);
});
afterAll(() => {
  process.umask(umask);
  fs.rmSync(dir, { recursive: true, force: true });
});
afterEach(() => vi.restoreAllMocks());

function secretFile(name: string, fileMode: number): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, 'a passphrase of some length\n');
  fs.chmodSync(file, fileMode);
  return file;
}

describe('assertPrivateFile', () => {
  test.each(['644', '640', '604', '620', '602', '610', '601', '660'])('rejects: mode 0%s (group or others have a bit)', (octal) => {
    const m = parseInt(octal, 8);
    const file = secretFile(`pass-${m.toString(8)}`, m);
    let err: unknown;
    try {
      assertPrivateFile(file, 'passphrase file');
    } catch (e) {
      err = e;
    }
    expect(isPkiError(err, 'invalidConfig')).toBe(true);
    expect((err as Error).message).toBe(`passphrase file ${file} is accessible by group or others (mode 0${m.toString(8)}); a secret must be private to its owner: chmod 600 ${file}`);
  });

  test.each(['600', '400', '700'])('accepts: mode 0%s', (octal) => {
    expect(() => assertPrivateFile(secretFile(`ok-${octal}`, parseInt(octal, 8)), 'passphrase file')).not.toThrow();
  });

  test('follows a symbolic link to the file it names', () => {
    const target = secretFile('target', 0o644);
    const link = path.join(dir, 'link');
    fs.symlinkSync(target, link);
    expect(() => assertPrivateFile(link, 'passphrase file')).toThrow(/chmod 600/);
  });

  test('readPassphrase refuses a group-readable --passphrase-file and a world-readable root passphrase file, and reads a private one', async () => {
    await expect(readPassphrase({ file: secretFile('online', 0o640) })).rejects.toThrow(/^CA key passphrase file .*online is accessible by group or others \(mode 0640\).*chmod 600/);
    await expect(readPassphrase({ file: secretFile('root', 0o604), label: 'root key' })).rejects.toThrow(/^root key passphrase file .*root is accessible by group or others \(mode 0604\)/);
    await expect(readPassphrase({ file: secretFile('fine', 0o600) })).resolves.toBe('a passphrase of some length');
  });
});

describe('files and directories Trellis creates', () => {
  test('createPrivateFile makes a missing file 0600 under umask 000 and leaves an existing one alone', () => {
    const file = path.join(dir, 'db');
    createPrivateFile(file);
    expect(mode(file)).toBe(0o600);
    fs.writeFileSync(file, 'content');
    createPrivateFile(file);
    expect(fs.readFileSync(file, 'utf8')).toBe('content');
  });

  test('writePrivateFile writes 0600, also over an existing 0644 file', () => {
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, 'old', { mode: 0o644 });
    writePrivateFile(file, 'new');
    expect([fs.readFileSync(file, 'utf8'), mode(file)]).toEqual(['new', 0o600]);
    expect(() => writePrivateFile(file, 'again', 'wx')).toThrow(/EEXIST/);
  });

  test('makePrivateDir creates every missing level 0700 and keeps the mode of an existing parent', () => {
    const parent = path.join(dir, 'operator');
    fs.mkdirSync(parent, { mode: 0o755 });
    makePrivateDir(path.join(parent, 'a', 'b'));
    expect([mode(parent), mode(path.join(parent, 'a')), mode(path.join(parent, 'a', 'b'))]).toEqual([0o755, 0o700, 0o700]);
  });

  test('makePrivateTree makes copied files 0600 and directories 0700', () => {
    const root = path.join(dir, 'profiles');
    fs.mkdirSync(path.join(root, 'sub'), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(root, 'server.yaml'), 'x', { mode: 0o644 });
    fs.writeFileSync(path.join(root, 'sub', 'client.yaml'), 'x', { mode: 0o664 });
    makePrivateTree(root);
    expect([mode(root), mode(path.join(root, 'sub')), mode(path.join(root, 'server.yaml')), mode(path.join(root, 'sub', 'client.yaml'))]).toEqual([0o700, 0o700, 0o600, 0o600]);
  });

  test('makePrivate sets a shared file of ours to 0600 and says whether it changed anything', () => {
    const file = secretFile('trellis.db', 0o644);
    expect(makePrivate(file)).toBe(true);
    expect(mode(file)).toBe(0o600);
    expect(makePrivate(file)).toBe(false);
    expect(makePrivate(path.join(dir, 'missing'))).toBe(false);
  });

  test('warnIfSharedDir warns once on stderr for a 0755 directory, never changes it, and is silent for 0700', () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const open = path.join(dir, 'open');
    fs.mkdirSync(open, { mode: 0o755 });
    const closed = path.join(dir, 'closed');
    fs.mkdirSync(closed, { mode: 0o700 });
    expect(warnIfSharedDir(open)).toBe(true);
    expect(warnIfSharedDir(`${open}/`)).toBe(false);
    expect(warnIfSharedDir(closed)).toBe(false);
    expect(write).toHaveBeenCalledTimes(1);
    expect(String(write.mock.calls[0]![0])).toBe(`warning: data directory ${open} is accessible by group or others (mode 0755); its files are private, but consider chmod 700 ${open}\n`);
    expect(mode(open)).toBe(0o755);
  });
});
