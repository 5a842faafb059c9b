/**
 * The backup file format (version 1), see docs/backup.md:
 *
 * ```
 * magic "TRELBKUP" | u8 version (1) | u32be header length | header (JSON, UTF-8)
 * | AES-256-GCM ciphertext of gzip(NDJSON records) | 16-octet GCM tag
 * ```
 *
 * The header is readable without the passphrase (what the file is: creation
 * time, roots, CAs whose keys live in a token) and is the GCM additional data,
 * so editing it breaks the tag. key = HKDF-SHA256(scrypt(root passphrase,
 * salt, N, r, p), "trellis-backup v1 data"); a check value (HMAC under a
 * second HKDF subkey over the KDF inputs, as in the key envelope) tells a wrong
 * passphrase from a modified file before a byte is decrypted.
 */
import { createHmac, hkdfSync, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { z } from 'zod';
import { PkiError } from '../errors/pki-error.js';

export const backupMagic = Buffer.from('TRELBKUP', 'ascii');
export const backupVersion = 1;
/** GCM tag length, octets (NIST SP 800-38D: the full 128 bits). */
export const tagLength = 16;
const maxHeaderBytes = 1 << 20;

const scrypt = promisify(scryptCb) as (password: Buffer, salt: Buffer, keylen: number, options: object) => Promise<Buffer>;

/** scrypt cost of new backups: N=2^17, r=8, p=1 (128 MiB), as the key envelopes. */
export const backupScrypt = { N: 2 ** 17, r: 8, p: 1 } as const;

const b64 = (bytes: number) => z.string().refine((s) => Buffer.from(s, 'base64').length === bytes && Buffer.from(s, 'base64').toString('base64') === s);

/** What the header says: enough for an operator to see what the file is, never a secret. */
export const headerSchema = z
  .object({
    format: z.literal('trellis-backup'),
    v: z.literal(backupVersion),
    createdAt: z.string(),
    kdf: z.object({ alg: z.literal('scrypt'), N: z.number().int(), r: z.number().int(), p: z.number().int(), salt: b64(16) }).strict(),
    check: b64(16),
    cipher: z.object({ alg: z.literal('A256GCM'), iv: b64(12) }).strict(),
    compression: z.literal('gzip'),
    instance: z
      .object({
        baseUrl: z.string(),
        roots: z.array(z.object({ id: z.string(), subject: z.string(), skiHex: z.string() }).strict()),
        cas: z.array(z.object({ id: z.string(), role: z.string(), key: z.string() }).strict()),
      })
      .strict(),
    /** CAs whose keys are in a token (PKCS#11): not in this file, backed up with the token's own means. */
    tokenKeys: z.array(z.object({ caId: z.string(), keyRef: z.string() }).strict()),
  })
  .strict();
export type BackupHeader = z.infer<typeof headerSchema>;

/** The header fields the caller chooses; salt, IV and check value are made here. */
export type HeaderInfo = Pick<BackupHeader, 'createdAt' | 'instance' | 'tokenKeys'>;

// Bounds for parameters read from a file: an edited header must not make scrypt allocate gigabytes.
const kdfOk = (k: { N: number; r: number; p: number }) => k.N >= 2 ** 14 && (k.N & (k.N - 1)) === 0 && k.r >= 1 && k.r <= 32 && k.p >= 1 && k.p <= 16 && 128 * k.N * k.r <= 2 ** 30;

/** The data key of a backup (AES-256-GCM), derived from the root passphrase. */
export interface BackupKeys {
  dataKey: Buffer;
  check: Buffer;
}

async function deriveKeys(passphrase: string | Buffer, kdf: BackupHeader['kdf']): Promise<BackupKeys> {
  const salt = Buffer.from(kdf.salt, 'base64');
  const pass = typeof passphrase === 'string' ? Buffer.from(passphrase, 'utf8') : passphrase;
  const master = await scrypt(pass, salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 128 * kdf.r * (kdf.N + kdf.p + 2) + 2 ** 20 });
  try {
    const sub = (info: string) => Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), info, 32));
    const checkKey = sub('trellis-backup v1 check');
    const check = createHmac('sha256', checkKey).update(JSON.stringify(['trellis-backup', backupVersion, kdf.N, kdf.r, kdf.p, kdf.salt])).digest().subarray(0, 16);
    checkKey.fill(0);
    return { dataKey: sub('trellis-backup v1 data'), check };
  } finally {
    master.fill(0);
  }
}

/** A new header (fresh salt and IV) and its keys; `headerBytes` is the file's first part and the GCM AAD. */
export async function newHeader(info: HeaderInfo, passphrase: string | Buffer): Promise<{ header: BackupHeader; headerBytes: Buffer; keys: BackupKeys }> {
  const kdf = { alg: 'scrypt' as const, ...backupScrypt, salt: randomBytes(16).toString('base64') };
  const keys = await deriveKeys(passphrase, kdf);
  const header: BackupHeader = { format: 'trellis-backup', v: backupVersion, createdAt: info.createdAt, kdf, check: keys.check.toString('base64'), cipher: { alg: 'A256GCM', iv: randomBytes(12).toString('base64') }, compression: 'gzip', instance: info.instance, tokenKeys: info.tokenKeys };
  return { header, headerBytes: encodeHeader(header), keys };
}

function encodeHeader(header: BackupHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const fixed = Buffer.alloc(backupMagic.length + 5);
  backupMagic.copy(fixed);
  fixed.writeUInt8(backupVersion, backupMagic.length);
  fixed.writeUInt32BE(json.length, backupMagic.length + 1);
  return Buffer.concat([fixed, json]);
}

/**
 * Parses the header at the start of `prefix` (the file's first octets, at
 * least {@link headerReadSize} or the whole file): `malformed` for anything
 * that is not a version 1 Trellis backup.
 */
export function parseHeader(prefix: Buffer): { header: BackupHeader; headerBytes: Buffer } {
  const fixedLength = backupMagic.length + 5;
  if (prefix.length < fixedLength || !prefix.subarray(0, backupMagic.length).equals(backupMagic)) throw new PkiError('malformed', 'not a Trellis backup (no TRELBKUP magic)');
  const version = prefix.readUInt8(backupMagic.length);
  if (version !== backupVersion) throw new PkiError('malformed', `backup format version ${version} is not supported (this Trellis reads version ${backupVersion})`);
  const length = prefix.readUInt32BE(backupMagic.length + 1);
  if (length > maxHeaderBytes || prefix.length < fixedLength + length) throw new PkiError('malformed', 'backup header is truncated or too large');
  const headerBytes = prefix.subarray(0, fixedLength + length);
  let json: unknown;
  try {
    json = JSON.parse(headerBytes.subarray(fixedLength).toString('utf8'));
  } catch (err) {
    throw new PkiError('malformed', 'backup header is not JSON', { cause: err });
  }
  const parsed = headerSchema.safeParse(json);
  if (!parsed.success) throw new PkiError('malformed', `backup header: ${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message}`);
  if (!kdfOk(parsed.data.kdf)) throw new PkiError('malformed', 'backup header: scrypt parameters out of bounds');
  return { header: parsed.data, headerBytes: Buffer.from(headerBytes) };
}

/** How many octets to read to be sure the header is inside. */
export const headerReadSize = backupMagic.length + 5 + maxHeaderBytes;

/** The header's keys for `passphrase`: `badPassphrase` when the check value says it is not the one the backup was made with. */
export async function openHeader(header: BackupHeader, passphrase: string | Buffer): Promise<BackupKeys> {
  const keys = await deriveKeys(passphrase, header.kdf);
  if (!timingSafeEqual(keys.check, Buffer.from(header.check, 'base64'))) {
    keys.dataKey.fill(0);
    throw new PkiError('badPassphrase', 'wrong root passphrase for this backup');
  }
  return keys;
}

// Rows carry Prisma's values; JSON has no octets, dates or big integers, so those are tagged objects.
/** A row value as written in the NDJSON stream. */
export function encodeValue(v: unknown): unknown {
  if (v instanceof Uint8Array) return { $b: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (v instanceof Date) return { $d: v.toISOString() };
  if (typeof v === 'bigint') return { $n: v.toString() };
  return v;
}

/** The inverse of {@link encodeValue}. */
export function decodeValue(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if (typeof o.$b === 'string') return Buffer.from(o.$b, 'base64');
    if (typeof o.$d === 'string') return new Date(o.$d);
    if (typeof o.$n === 'string') return BigInt(o.$n);
    throw new PkiError('malformed', 'backup row holds an unknown value');
  }
  return v;
}

/** One line of the encrypted stream. */
export type BackupRecord =
  | { kind: 'meta'; migrations: string[]; tables: string[] }
  | { kind: 'config'; config: Record<string, unknown> }
  | { kind: 'file'; path: string; data: string }
  | { kind: 'rows'; table: string; rows: Record<string, unknown>[] }
  | { kind: 'end'; counts: Record<string, number> };
