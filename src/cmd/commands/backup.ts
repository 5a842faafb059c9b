/**
 * `trellis backup create --out FILE` and `trellis backup restore --in FILE
 * --data DIR [--database-url URL]`: an encrypted, integrity-protected copy of
 * an instance (config, profiles, every table) under the root passphrase, and
 * its restore into an empty instance. Format and guarantees: docs/backup.md.
 *
 * Restore takes no `--quorum-request`: the instance it fills is empty (its
 * custodians are inside the backup), and the backup opens only with the root
 * secret, which once split (`ceremony split-root-secret`) takes M of its N
 * share holders (docs/ceremonies/quorum.md). `backup.restored` records which
 * of the two opened it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeBackup } from '../../backup/export.js';
import type { HeaderInfo } from '../../backup/format.js';
import { readBackupHeader, verifyBackup } from '../../backup/import.js';
import { assertEmptyDir, restoreBackup } from '../../backup/restore.js';
import { progress } from '../../cli/progress.js';
import { parse, required, UsageError } from '../../cli/args.js';
import { databaseUrlOf, type InstanceConfig } from '../../config/instance-config.js';
import { PkiError } from '../../errors/pki-error.js';
import { openBackupTables } from '../../store/backup-tables.js';
import { parseDatabaseUrl } from '../../store/open.js';
import { isOfflineCa, keyIdOf, keystoreFor, openInstance, type Instance } from '../instance.js';
import { actorOf, dataDirOf, out, rootPassphraseFlag, rootPassphraseFor } from './common.js';

const usage = `usage: trellis backup create --out FILE [--data DIR]
       trellis backup restore --in FILE --data DIR [--database-url URL]
(the root passphrase: TRELLIS_ROOT_PASSPHRASE, --root-passphrase-file FILE, or a prompt)`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'create') return create(rest);
  if (sub === 'restore') return restore(rest);
  throw new UsageError(usage);
}

const keyTypeOf = (keyRef: string): string => (JSON.parse(keyRef) as { type: string }).type;
/** Keys neither in the software keystore nor absent by design (an external root): in a token, backed up by its own means. */
const inToken = (type: string) => type !== 'software' && type !== 'external';

/** The config as backed up: the database URL keeps no password. */
function configWithoutSecrets(config: InstanceConfig): Record<string, unknown> {
  if (!config.databaseUrl || !/^postgres(ql)?:\/\//.test(config.databaseUrl)) return { ...config };
  const url = new URL(config.databaseUrl);
  url.password = '';
  return { ...config, databaseUrl: url.toString() };
}

/** Regular files under the profiles directory, paths relative to it. */
function profileFiles(dir: string, rel = ''): { path: string; data: Buffer }[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) return profileFiles(dir, p);
    return e.isFile() ? [{ path: p, data: fs.readFileSync(path.join(dir, p)) }] : [];
  });
}

/**
 * Checks the root passphrase against a key it protects, so a mistyped one
 * never makes a backup nobody can open. False when no such key is here.
 */
async function checkRootPassphrase(instance: Instance, passphrase: string): Promise<boolean> {
  // A root in a token opens with the token's PIN, which only the token can check.
  const ca = instance.cas.find((c) => keyTypeOf(c.keyRef) === 'software' && isOfflineCa(c));
  if (!ca) return false;
  const keystore = keystoreFor(instance, passphrase);
  try {
    await keystore.verifyPassphrase(keyIdOf(ca));
  } catch (err) {
    if (err instanceof PkiError && err.type === 'badPassphrase') throw new PkiError('badPassphrase', `wrong root passphrase (it does not open CA "${ca.id}")`, { cause: err });
    throw err;
  } finally {
    keystore.close();
  }
  return true;
}

async function create(argv: string[]): Promise<number> {
  const { values } = parse(argv, { out: { type: 'string' }, ...rootPassphraseFlag });
  const file = path.resolve(required(values.out, 'out'));
  if (fs.existsSync(file)) throw new PkiError('conflict', `${file} exists; a backup never overwrites a file`);
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const passphrase = await rootPassphraseFor(values);
    const checked = await checkRootPassphrase(instance, passphrase);
    const roots = instance.cas.filter((c) => c.role === 'root');
    const tokenKeys = instance.cas.filter((c) => inToken(keyTypeOf(c.keyRef))).map((c) => ({ caId: c.id, keyRef: c.keyRef }));
    const info: HeaderInfo = {
      createdAt: instance.clock.now().toISOString(),
      instance: { baseUrl: instance.config.baseUrl, roots: roots.map((c) => ({ id: c.id, subject: c.subject, skiHex: c.skiHex })), cas: instance.cas.map((c) => ({ id: c.id, role: c.role, key: keyTypeOf(c.keyRef) })) },
      tokenKeys,
    };
    const tables = await openBackupTables(process.env.TRELLIS_DATABASE_URL ?? databaseUrlOf(instance.dataDir, instance.config), { migrate: false });
    let written;
    try {
      const files = profileFiles(path.resolve(instance.dataDir, instance.config.profilesDir));
      const shown = progress('backup');
      try {
        written = await writeBackup(file, info, passphrase, { tables, config: configWithoutSecrets(instance.config), files }, (rows, table) => shown.update(rows, undefined, `rows (${table})`));
      } finally {
        shown.end();
      }
    } finally {
      await tables.close();
    }
    const summary = { file, sha256: written.sha256, bytes: written.bytes, createdAt: info.createdAt, rows: written.counts, tokenKeys: tokenKeys.map((k) => k.caId) };
    await instance.audit.record('backup.created', actorOf(), summary);
    const o = out(values);
    o.result(summary);
    o.say(`backup written to ${file} (${written.bytes} bytes, SHA-256 ${written.sha256}); it opens only with the root passphrase`);
    o.say(`rows: ${Object.entries(written.counts).filter(([, n]) => n > 0).map(([t, n]) => `${t} ${n}`).join(', ')}`);
    if (!checked) process.stderr.write('warning: no key here opens with the root passphrase, so it could not be checked; the backup opens only with the passphrase just given\n');
    tokenNotice(tokenKeys.map((k) => k.caId), instance.config);
    return 0;
  } finally {
    await instance.close();
  }
}

/** Says which keys the backup does not hold: CA keys in a token, and the token's secret-sealing key. */
function tokenNotice(caIds: string[], config: InstanceConfig): void {
  if (caIds.length) {
    process.stderr.write(
      `notice: the keys of CA ${caIds.join(', ')} live in a hardware token (PKCS#11) and are NOT in this backup; back them up with the token's own means. ` +
        'A restored CA keeps pointing at its token.\n',
    );
  }
  // Read loosely: a config may come from a Trellis without the keystore setting (PKCS#11).
  const keystore = (config as { keystore?: { type: string; token?: string } }).keystore;
  if (keystore?.type === 'pkcs11') {
    process.stderr.write(`notice: the secret-sealing key (it seals the stored EAB keys and instance secrets) is in token "${keystore.token}", not in this backup: back it up with the token's own means.\n`);
  }
}

async function restore(argv: string[]): Promise<number> {
  const { values } = parse(argv, { in: { type: 'string' }, 'database-url': { type: 'string' }, ...rootPassphraseFlag });
  const file = path.resolve(required(values.in, 'in'));
  if (!values.data) throw new UsageError('--data is required: the new, empty instance directory');
  const dataDir = dataDirOf(values.data);
  const databaseUrl = values['database-url'];
  if (databaseUrl) parseDatabaseUrl(databaseUrl);
  assertEmptyDir(dataDir);
  const { header } = readBackupHeader(file);
  process.stderr.write(`the header (not yet authenticated) says: backup of ${header.instance.roots.map((r) => `${r.subject} (SKI ${r.skiHex})`).join(', ') || 'an instance without a root'}, made ${header.createdAt}\n`);
  const passphrase = await rootPassphraseFor(values);
  // Everything is decrypted and authenticated before anything is written.
  const verified = await verifyBackup(file, passphrase);
  const url = databaseUrl ?? `file:${path.join(dataDir, 'trellis.db')}`;
  const existed = fs.existsSync(dataDir);
  let result;
  try {
    const tables = await openBackupTables(url, { migrate: parseDatabaseUrl(url).kind === 'sqlite' });
    try {
      const shown = progress('restore');
      try {
        result = await restoreBackup(verified, dataDir, tables, { ...(databaseUrl ? { databaseUrl } : {}), now: new Date(), onProgress: (rows, total, table) => shown.update(rows, total, `rows (${table})`) });
      } finally {
        shown.end();
      }
    } finally {
      await tables.close();
    }
  } catch (err) {
    // The directory was empty: what is in it now is ours, and a partial restore must not look like an instance.
    if (fs.existsSync(dataDir)) for (const e of fs.readdirSync(dataDir)) fs.rmSync(path.join(dataDir, e), { recursive: true, force: true });
    if (!existed) fs.rmSync(dataDir, { recursive: true, force: true });
    if (databaseUrl && !(err instanceof PkiError && err.type === 'conflict')) process.stderr.write(`the database ${new URL(databaseUrl).pathname.slice(1)} may hold a partial restore: drop and recreate it before trying again\n`);
    throw err;
  } finally {
    verified.dataKey.fill(0);
  }
  const instance = await openInstance(dataDir, { databaseUrl: url });
  try {
    const rootSecret = values.share?.length ? `${values.share.length} shares` : 'passphrase';
    const summary = { file, sha256: verified.sha256, backupCreatedAt: header.createdAt, rootSecret, rows: result.counts, crlNumbers: result.crlNumbers, tokenKeys: header.tokenKeys.map((k) => k.caId) };
    await instance.audit.record('backup.restored', actorOf(), summary);
    const o = out(values);
    o.result({ dataDir, ...summary });
    o.say(`restored into ${dataDir} (${databaseUrl ? 'PostgreSQL' : 'SQLite'}): ${instance.cas.length} CAs, ${result.counts.Certificate ?? 0} certificates`);
    for (const [ca, n] of Object.entries(result.crlNumbers)) o.say(`CA ${ca}: next CRL number above ${n.after} (last in the backup: ${n.before ?? 'none'})`);
    tokenNotice(header.tokenKeys.map((k) => k.caId), instance.config);
    return 0;
  } finally {
    await instance.close();
  }
}
