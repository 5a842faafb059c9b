/**
 * Restores a verified backup into an empty instance directory (and an empty
 * database): profiles, every row, then the config, written last so that a
 * directory without trellis.json never opens as an instance. Afterwards no
 * CRL number of the lost instance is drawn again (see {@link crlNumberFloor}).
 */
import fs from 'node:fs';
import path from 'node:path';
import { instanceConfigSchema, writeInstanceConfig } from '../config/instance-config.js';
import { makePrivateDir, writePrivateFile } from '../config/file-permissions.js';
import { PkiError } from '../errors/pki-error.js';
import { decodeValue } from './format.js';
import { replayBackup, type VerifiedBackup } from './import.js';
import type { BackupTables, TableRow } from './ports.js';

/**
 * The lowest CRL number a restored CA draws next: the restore time in
 * milliseconds since the epoch. The lost instance drew its numbers one at a
 * time from 1 (or from an earlier restore's floor), so it stays below this
 * floor as long as it drew fewer than 1000 numbers per second on average
 * since then; each publishing pass draws one per shard plus two.
 */
export const crlNumberFloor = (now: Date): bigint => BigInt(now.getTime());

/** What a restore did. */
export interface RestoreResult {
  counts: Record<string, number>;
  /** Per CA: the last CRL number in the backup (null: none drawn) and the last one now. */
  crlNumbers: Record<string, { before: string | null; after: string }>;
}

/** Refuses a data directory that exists and holds anything. */
export function assertEmptyDir(dataDir: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(dataDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new PkiError('invalidConfig', `cannot read ${dataDir}: ${(err as Error).message}`, { cause: err });
  }
  if (entries.length) throw new PkiError('conflict', `${dataDir} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); a backup is restored only into an empty directory`);
}

async function assertEmptyDatabase(tables: BackupTables): Promise<void> {
  const full = await tables.nonEmpty();
  if (full.length) throw new PkiError('conflict', `the target database is not empty (${full.join(', ')}); a backup is restored only into an empty database`);
}

/** A profile file's path from the backup: relative, inside the profiles directory. */
function profilePath(profilesDir: string, rel: string): string {
  const file = path.resolve(profilesDir, rel);
  if (path.isAbsolute(rel) || rel.split(/[\\/]/).includes('..') || !file.startsWith(profilesDir + path.sep)) throw new PkiError('malformed', `backup names a profile file outside the profiles directory: ${rel}`);
  return file;
}

const decodeRow = (row: TableRow): TableRow => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, decodeValue(v)]));

/**
 * Writes `v` into `dataDir` (created 0700, or empty) and the database behind
 * `tables` (empty, migrated by this Trellis). `databaseUrl` goes into the
 * restored config (absent: SQLite in the data directory).
 */
export async function restoreBackup(
  v: VerifiedBackup,
  dataDir: string,
  tables: BackupTables,
  opts: { databaseUrl?: string; now: Date; onProgress?: (rows: number, total: number, table: string) => void },
): Promise<RestoreResult> {
  // A database that already has Trellis tables is checked before anything, even a migration, touches it.
  if ((await tables.migrations()).length) await assertEmptyDatabase(tables);
  await tables.migrate();
  // Rows go in as they were read, column for column: only into the schema they came from. A backup of another
  // version is restored with that version, which then upgrades as usual (migrations run when it opens).
  const applied = await tables.migrations();
  if (applied.join('\n') !== v.migrations.join('\n')) {
    const mine = new Set(applied);
    const theirs = new Set(v.migrations);
    const detail = [...v.migrations.filter((m) => !mine.has(m)).map((m) => `${m} unknown here`), ...applied.filter((m) => !theirs.has(m)).map((m) => `${m} not in the backup`)].join(', ');
    throw new PkiError('invalidConfig', `the backup was made by another Trellis version (schema differs: ${detail || 'migration order'}); restore it with that version, then upgrade`);
  }
  await assertEmptyDatabase(tables);

  makePrivateDir(dataDir);
  const profilesDir = path.resolve(dataDir, 'profiles');
  makePrivateDir(profilesDir);
  let config: Record<string, unknown> | undefined;
  const caIds: string[] = [];
  const total = Object.values(v.counts).reduce((a, n) => a + n, 0);
  let restored = 0;
  await replayBackup(v, async (r) => {
    if (r.kind === 'rows') {
      const rows = r.rows.map(decodeRow);
      if (r.table === 'CertificateAuthority') caIds.push(...rows.map((row) => String(row.id)));
      await tables.insert(r.table, rows);
      restored += rows.length;
      opts.onProgress?.(restored, total, r.table);
    } else if (r.kind === 'file') {
      const file = profilePath(profilesDir, r.path);
      makePrivateDir(path.dirname(file));
      writePrivateFile(file, Buffer.from(r.data, 'base64'), 'wx');
    } else if (r.kind === 'config') config = r.config;
  });
  await tables.dropCrlLeases();
  await tables.afterInsert();
  const crlNumbers: RestoreResult['crlNumbers'] = {};
  for (const caId of caIds) {
    const { before, after } = await tables.raiseCrlSequence(caId, crlNumberFloor(opts.now));
    crlNumbers[caId] = { before: before?.toString() ?? null, after: after.toString() };
  }

  // The backup's database URL (password removed) named the lost database; the restored instance uses its own.
  const { databaseUrl: _lost, ...rest } = config ?? {};
  const parsed = instanceConfigSchema.safeParse({ ...rest, profilesDir: 'profiles', ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}) });
  if (!parsed.success) throw new PkiError('malformed', `backup config: ${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message}`);
  writeInstanceConfig(dataDir, parsed.data);
  return { counts: v.counts, crlNumbers };
}
