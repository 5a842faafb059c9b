/**
 * Writes a backup (format.ts) as a stream: rows are read a page at a time in
 * one read transaction, turned into NDJSON lines, gzip'ed, encrypted and
 * written, so memory stays at a few pages whatever the number of certificates.
 * The file is created 0600 and never overwrites one; a failed backup leaves no file.
 */
import { createCipheriv, createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { PkiError } from '../errors/pki-error.js';
import { encodeValue, newHeader, type BackupHeader, type BackupRecord, type HeaderInfo } from './format.js';
import type { BackupTables, PageReader, TableRow } from './ports.js';

/** What goes into a backup besides the rows. */
export interface BackupContent {
  tables: BackupTables;
  /** The instance config, without secrets (the database URL's password removed). */
  config: Record<string, unknown>;
  /** Files of the profiles directory, paths relative to it ('/' separated). */
  files: { path: string; data: Buffer }[];
}

/** What a written backup holds. */
export interface BackupWritten {
  header: BackupHeader;
  /** SHA-256 of the whole file, hex. */
  sha256: string;
  bytes: number;
  /** Rows per table. */
  counts: Record<string, number>;
}

const line = (r: BackupRecord) => Buffer.from(JSON.stringify(r) + '\n', 'utf8');
const encodeRow = (row: TableRow) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, encodeValue(v)]));

/** Told the rows written so far (all tables) and the table being read. */
export type BackupProgress = (rows: number, table: string) => void;

async function* records(content: BackupContent, migrations: string[], read: PageReader, counts: Record<string, number>, onProgress?: BackupProgress): AsyncGenerator<Buffer> {
  let total = 0;
  yield line({ kind: 'meta', migrations, tables: [...content.tables.tables] });
  yield line({ kind: 'config', config: content.config });
  for (const f of content.files) yield line({ kind: 'file', path: f.path, data: f.data.toString('base64') });
  for (const table of content.tables.tables) {
    counts[table] = 0;
    for (let after: TableRow | null = null; ; ) {
      const rows = await read(table, after);
      if (rows.length === 0) break;
      counts[table] += rows.length;
      total += rows.length;
      onProgress?.(total, table);
      yield line({ kind: 'rows', table, rows: rows.map(encodeRow) });
      after = rows[rows.length - 1]!;
    }
  }
  yield line({ kind: 'end', counts });
}

/** Passes octets through, hashing them. */
const hashing = (hash: Hash) =>
  new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });

/** Writes a backup of `content` to `out` (a new file), encrypted under `passphrase` (the root passphrase). */
export async function writeBackup(out: string, info: HeaderInfo, passphrase: string | Buffer, content: BackupContent, onProgress?: BackupProgress): Promise<BackupWritten> {
  let fd: number;
  try {
    fd = fs.openSync(out, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new PkiError('conflict', `${out} exists; a backup never overwrites a file`, { cause: err });
    throw new PkiError('invalidConfig', `cannot create ${out}: ${(err as Error).message}`, { cause: err });
  }
  try {
    // The umask may have taken bits from 0600 (never added one): set it exactly.
    fs.fchmodSync(fd, 0o600);
    const migrations = await content.tables.migrations();
    const { header, headerBytes, keys } = await newHeader(info, passphrase);
    const cipher = createCipheriv('aes-256-gcm', keys.dataKey, Buffer.from(header.cipher.iv, 'base64'), { authTagLength: 16 });
    keys.dataKey.fill(0);
    cipher.setAAD(headerBytes);
    const hash = createHash('sha256').update(headerBytes);
    fs.writeSync(fd, headerBytes);
    const counts: Record<string, number> = {};
    await content.tables.snapshot((read) =>
      pipeline(Readable.from(records(content, migrations, read, counts, onProgress)), createGzip(), cipher, hashing(hash), fs.createWriteStream('', { fd, autoClose: false })),
    );
    const tag = cipher.getAuthTag();
    fs.writeSync(fd, tag);
    hash.update(tag);
    fs.fsyncSync(fd);
    const bytes = fs.fstatSync(fd).size;
    fs.closeSync(fd);
    return { header, sha256: hash.digest('hex'), bytes, counts };
  } catch (err) {
    // The file is ours (created above): a partial backup must not look like one.
    fs.closeSync(fd);
    fs.rmSync(out, { force: true });
    throw err;
  }
}
