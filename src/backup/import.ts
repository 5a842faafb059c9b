/**
 * Reads a backup (format.ts). GCM authenticates the whole stream only at its
 * end, so a restore reads the file twice: {@link verifyBackup} decrypts and
 * parses everything and checks the tag, writing nothing; only then does
 * {@link replayBackup} hand the records over, and checks the tag again (and
 * that the file is still the one verified).
 */
import { createDecipheriv, createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { PkiError } from '../errors/pki-error.js';
import { headerReadSize, openHeader, parseHeader, tagLength, type BackupHeader, type BackupRecord } from './format.js';

/** A backup whose passphrase and integrity were checked. */
export interface VerifiedBackup {
  file: string;
  header: BackupHeader;
  headerBytes: Buffer;
  dataKey: Buffer;
  /** SHA-256 of the whole file, hex. */
  sha256: string;
  migrations: string[];
  /** Rows per table, as the end record gives them (and as counted). */
  counts: Record<string, number>;
}

/** Reads only the header: what an operator may see without the passphrase. */
export function readBackupHeader(file: string): { header: BackupHeader; headerBytes: Buffer; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new PkiError('invalidConfig', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const size = fs.fstatSync(fd).size;
    const prefix = Buffer.alloc(Math.min(size, headerReadSize));
    fs.readSync(fd, prefix, 0, prefix.length, 0);
    const { header, headerBytes } = parseHeader(prefix);
    if (size < headerBytes.length + tagLength) throw new PkiError('malformed', 'backup is truncated');
    return { header, headerBytes, size };
  } finally {
    fs.closeSync(fd);
  }
}

const hashing = (hash: Hash) =>
  new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });

/** Splits the plaintext into NDJSON lines, without rescanning a long line for every chunk. */
async function eachLine(source: AsyncIterable<Buffer>, onLine: (text: string) => Promise<void>): Promise<void> {
  let pending: Buffer[] = [];
  for await (const chunk of source) {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      pending.push(chunk.subarray(start, nl));
      const text = Buffer.concat(pending).toString('utf8');
      pending = [];
      start = nl + 1;
      await onLine(text);
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  if (pending.length) throw new PkiError('malformed', 'backup stream ends inside a line');
}

/**
 * Decrypts the file once, handing each record to `onRecord`, and throws
 * unless the GCM tag verifies at the end; returns the file's SHA-256. Every
 * record before the end is unauthenticated until then.
 */
async function decrypt(file: string, headerBytes: Buffer, header: BackupHeader, dataKey: Buffer, onRecord: (r: BackupRecord) => Promise<void>): Promise<string> {
  const size = fs.statSync(file).size;
  const tag = Buffer.alloc(tagLength);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, tag, 0, tagLength, size - tagLength);
  } finally {
    fs.closeSync(fd);
  }
  const decipher = createDecipheriv('aes-256-gcm', dataKey, Buffer.from(header.cipher.iv, 'base64'), { authTagLength: tagLength });
  decipher.setAAD(headerBytes);
  decipher.setAuthTag(tag);
  const hash = createHash('sha256').update(headerBytes);
  const body = fs.createReadStream(file, { start: headerBytes.length, end: size - tagLength - 1 });
  await pipeline(body, hashing(hash), decipher, createGunzip(), (source: AsyncIterable<Buffer>) =>
    eachLine(source, async (text) => {
      let record: BackupRecord;
      try {
        record = JSON.parse(text) as BackupRecord;
      } catch (err) {
        throw new PkiError('malformed', 'backup record is not JSON', { cause: err });
      }
      await onRecord(record);
    }),
  );
  return hash.update(tag).digest('hex');
}

const notAuthentic = (cause: unknown) => new PkiError('keyIntegrity', 'backup does not authenticate: it was modified, truncated or is corrupt; nothing was restored', { cause });

/**
 * Checks the passphrase (`badPassphrase`), then decrypts and parses the
 * whole file and checks the GCM tag and the record sequence (`keyIntegrity`
 * for any failure: until the tag verifies, nothing read can be trusted).
 */
export async function verifyBackup(file: string, passphrase: string | Buffer): Promise<VerifiedBackup> {
  const { header, headerBytes } = readBackupHeader(file);
  const { dataKey } = await openHeader(header, passphrase);
  let migrations: string[] | undefined;
  let end: Record<string, number> | undefined;
  const counted: Record<string, number> = {};
  let sha256: string;
  try {
    sha256 = await decrypt(file, headerBytes, header, dataKey, async (r) => {
      if (end) throw new Error('record after the end record');
      if (r.kind === 'meta') {
        if (migrations) throw new Error('second meta record');
        migrations = r.migrations;
      } else if (!migrations) throw new Error('first record is not meta');
      else if (r.kind === 'rows') counted[r.table] = (counted[r.table] ?? 0) + r.rows.length;
      else if (r.kind === 'end') end = r.counts;
      else if (r.kind !== 'config' && r.kind !== 'file') throw new Error(`unknown record kind`);
    });
  } catch (err) {
    dataKey.fill(0);
    throw notAuthentic(err);
  }
  if (!migrations || !end) throw notAuthentic(new Error('no meta or end record'));
  for (const t of new Set([...Object.keys(end), ...Object.keys(counted)])) {
    if ((end[t] ?? 0) !== (counted[t] ?? 0)) throw notAuthentic(new Error(`table ${t}: ${counted[t] ?? 0} rows, the end record says ${end[t] ?? 0}`));
  }
  return { file, header, headerBytes, dataKey, sha256, migrations, counts: end };
}

/**
 * Hands every record of a verified backup to `onRecord`, in file order. Throws
 * `keyIntegrity` if the file no longer authenticates or is not the file
 * verified (it changed in between): what `onRecord` did is then to be undone.
 */
export async function replayBackup(v: VerifiedBackup, onRecord: (r: BackupRecord) => Promise<void>): Promise<void> {
  let sha256: string;
  try {
    sha256 = await decrypt(v.file, v.headerBytes, v.header, v.dataKey, onRecord);
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('keyIntegrity', 'backup stopped authenticating while it was restored (changed since it was verified)', { cause: err });
  }
  if (sha256 !== v.sha256) throw new PkiError('keyIntegrity', 'backup changed between verification and restore');
}
