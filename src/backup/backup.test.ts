/** Backup format, export and restore against an in-memory table port: values round-trip, refusals, CRL floor. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { isPkiError } from '../errors/pki-error.js';
import { writeBackup } from './export.js';
import { decodeValue, encodeValue, parseHeader, type HeaderInfo } from './format.js';
import { verifyBackup } from './import.js';
import type { BackupTables, TableRow } from './ports.js';
import { crlNumberFloor, restoreBackup } from './restore.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-backup-unit-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const pass = 'a root passphrase for tests';
const info: HeaderInfo = { createdAt: '2026-12-06T00:00:00.000Z', instance: { baseUrl: 'http://pki.test', roots: [{ id: 'root', subject: 'CN=R', skiHex: 'ab' }], cas: [{ id: 'root', role: 'root', key: 'software' }] }, tokenKeys: [] };
const config = { version: 1, baseUrl: 'http://pki.test', databaseUrl: 'postgresql://u@db/x' };

/** Tables in memory; `pageSize` rows per page, keyed by `id`. */
function memoryTables(data: Record<string, TableRow[]>, migrations = ['m1', 'm2'], pageSize = 2): BackupTables & { data: Record<string, TableRow[]>; sequences: Map<string, bigint> } {
  const sequences = new Map<string, bigint>();
  return {
    data,
    sequences,
    tables: ['CertificateAuthority', 'Certificate', 'CrlSequence'],
    migrations: async () => migrations,
    migrate: async () => {},
    snapshot: (fn) => fn(async (table, after) => {
      const rows = data[table] ?? [];
      const from = after ? rows.findIndex((r) => r.id === after.id) + 1 : 0;
      return rows.slice(from, from + pageSize);
    }),
    nonEmpty: async () => Object.keys(data).filter((t) => data[t]!.length > 0),
    insert: async (table, rows) => {
      (data[table] ??= []).push(...rows);
    },
    afterInsert: async () => {},
    raiseCrlSequence: async (caId, next) => {
      const before = sequences.get(caId) ?? null;
      const after = before !== null && before >= next - 1n ? before : next - 1n;
      sequences.set(caId, after);
      return { before, after };
    },
    dropCrlLeases: async () => {},
    close: async () => {},
  };
}

const source = () =>
  memoryTables({
    CertificateAuthority: [{ id: 'root', certDer: Buffer.from([0x30, 0x00, 0xff]), notAfter: new Date('2046-01-01T00:00:00.123Z'), parentId: null }],
    Certificate: Array.from({ length: 5 }, (_, i) => ({ id: i + 1, serialHex: `4${i}`, der: Buffer.alloc(100, i), revokedAt: i === 2 ? new Date(1) : null, termsAgreed: i % 2 === 0 })),
    CrlSequence: [{ id: 'root', caId: 'root', last: 12345678901234567890n }],
  });

let n = 0;
async function backupOf(tables: BackupTables, files = [{ path: 'server.yaml', data: Buffer.from('description: x\n') }]) {
  const file = path.join(dir, `b${++n}.bak`);
  const written = await writeBackup(file, info, pass, { tables, config, files });
  return { file, written };
}

describe('values', () => {
  test.each([
    ['octets', Buffer.from([0, 1, 255])],
    ['a date', new Date('2026-01-02T03:04:05.678Z')],
    ['a big integer beyond 2^64', 2n ** 70n + 1n],
    ['text', 'x'],
    ['a number', 42],
    ['a boolean', true],
    ['null', null],
  ])('%s round-trips', (_n, v) => {
    expect(decodeValue(JSON.parse(JSON.stringify(encodeValue(v))))).toEqual(v);
  });
});

describe('header', () => {
  test.each([
    ['no magic', Buffer.from('NOTABACKUP-and-more-octets')],
    ['another version', Buffer.concat([Buffer.from('TRELBKUP'), Buffer.from([2, 0, 0, 0, 2]), Buffer.from('{}')])],
    ['a length past the end', Buffer.concat([Buffer.from('TRELBKUP'), Buffer.from([1, 0, 0, 0, 99]), Buffer.from('{}')])],
  ])('rejects: %s', (_n, bytes) => {
    expect(() => parseHeader(bytes)).toThrow(expect.objectContaining({ type: 'malformed' }) as Error);
  });

  test('rejects: scrypt parameters that would allocate gigabytes', async () => {
    const { file } = await backupOf(source());
    const [from, to] = ['"N":131072', '"N":8388608'];
    const start = Buffer.from(fs.readFileSync(file).toString('latin1').replace(from, to), 'latin1');
    start.writeUInt32BE(start.readUInt32BE(9) + to.length - from.length, 9);
    expect(() => parseHeader(start)).toThrow(/scrypt parameters out of bounds/);
  });
});

describe('backup and restore', () => {
  test('every row comes back with its types; the database password stays out; CRL numbers start at the floor', async () => {
    const from = source();
    const { file, written } = await backupOf(from);
    expect(written.counts).toEqual({ CertificateAuthority: 1, Certificate: 5, CrlSequence: 1 });
    expect(fs.readFileSync(file).includes(Buffer.from('postgresql://'))).toBe(false);
    const v = await verifyBackup(file, pass);
    const to = memoryTables({});
    const now = new Date('2027-01-01T00:00:00Z');
    const target = path.join(dir, 'restored-1');
    const result = await restoreBackup(v, target, to, { now });
    expect(to.data).toEqual(from.data);
    const restoredConfig = JSON.parse(fs.readFileSync(path.join(target, 'trellis.json'), 'utf8')) as Record<string, unknown>;
    expect(restoredConfig.databaseUrl).toBeUndefined();
    expect(restoredConfig.profilesDir).toBe('profiles');
    expect(fs.readFileSync(path.join(target, 'profiles', 'server.yaml'), 'utf8')).toBe('description: x\n');
    expect(result.crlNumbers.root!.after).toBe((crlNumberFloor(now) - 1n).toString());
    expect(crlNumberFloor(now)).toBe(1798761600000n);
  });

  test('a stored CRL number above the floor is kept (numbers never go back)', async () => {
    const to = memoryTables({});
    to.sequences.set('root', 10n ** 15n);
    const { file } = await backupOf(source());
    const result = await restoreBackup(await verifyBackup(file, pass), path.join(dir, 'restored-2'), to, { now: new Date() });
    expect(result.crlNumbers.root).toEqual({ before: (10n ** 15n).toString(), after: (10n ** 15n).toString() });
  });

  test('refuses a database of another schema version, naming the difference', async () => {
    const { file } = await backupOf(source());
    const err = await restoreBackup(await verifyBackup(file, pass), path.join(dir, 'restored-3'), memoryTables({}, ['m1', 'm2', 'm3']), { now: new Date() }).catch((e: unknown) => e);
    expect(isPkiError(err, 'invalidConfig')).toBe(true);
    expect((err as Error).message).toMatch(/m3 not in the backup/);
  });

  test('refuses a database that holds rows', async () => {
    const { file } = await backupOf(source());
    const err = await restoreBackup(await verifyBackup(file, pass), path.join(dir, 'restored-4'), memoryTables({ Certificate: [{ id: 1 }] }), { now: new Date() }).catch((e: unknown) => e);
    expect(isPkiError(err, 'conflict')).toBe(true);
    expect(fs.existsSync(path.join(dir, 'restored-4'))).toBe(false);
  });

  test('refuses a profile file outside the profiles directory', async () => {
    const { file } = await backupOf(source(), [{ path: '../trellis.json', data: Buffer.from('{}') }]);
    const err = await restoreBackup(await verifyBackup(file, pass), path.join(dir, 'restored-5'), memoryTables({}), { now: new Date() }).catch((e: unknown) => e);
    expect(isPkiError(err, 'malformed')).toBe(true);
    expect(fs.existsSync(path.join(dir, 'restored-5', 'trellis.json'))).toBe(false);
  });

  test('a failed backup leaves no file, and an existing file is never overwritten', async () => {
    const broken = { ...source(), snapshot: () => Promise.reject(new Error('database gone')) };
    const file = path.join(dir, 'failed.bak');
    await expect(writeBackup(file, info, pass, { tables: broken, config, files: [] })).rejects.toThrow('database gone');
    expect(fs.existsSync(file)).toBe(false);
    const { file: existing } = await backupOf(source());
    const before = fs.readFileSync(existing);
    await expect(writeBackup(existing, info, pass, { tables: source(), config, files: [] })).rejects.toThrow(/never overwrites/);
    expect(fs.readFileSync(existing)).toEqual(before);
  });
});
