// Writes SQL migrations for BOTH database flavours from prisma/models.prisma:
//   npm run db:migration -- new <snake_case_name>
//   npm run db:migration -- check      (exit 1 when a history does not produce the schema)
//
// The Prisma 7 CLI cannot migrate offline; the schema engine compiled to wasm
// (@prisma/schema-engine-wasm) can. For each flavour the engine replays the
// committed migrations into an empty in-memory shadow database (SQLite
// `:memory:`, PostgreSQL an in-memory PGlite), diffs that against the schema
// and prints the SQL that closes the gap. The migrations stay the only
// source of truth, so a hand-edited migration is taken into account. No
// database server and no network are needed.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const root = path.resolve(import.meta.dirname, '..');
const flavours = [
  { name: 'sqlite', provider: 'sqlite' },
  { name: 'pg', provider: 'postgresql' },
];
const filters = { externalTables: [], externalEnums: [] };
/** Closes what the engine leaves open (PGlite keeps process.exitCode at 99 until closed). */
const disposers = [];

const [cmd, name] = process.argv.slice(2);
if (!((cmd === 'new' && /^[a-z0-9_]+$/.test(name ?? '')) || cmd === 'check')) {
  console.error('usage: npm run db:migration -- new <snake_case_name>\n       npm run db:migration -- check');
  process.exit(2);
}

async function loadEngine() {
  const require = createRequire(import.meta.url);
  const glueId = '@prisma/schema-engine-wasm/schema_engine_bg';
  const glue = await import(glueId);
  const wasm = path.join(path.dirname(require.resolve(glueId)), 'schema_engine_bg.wasm');
  const inst = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasm)), { './schema_engine_bg.js': glue });
  glue.__wbg_set_wasm(inst.exports);
  inst.exports.__wbindgen_start();
  return glue.SchemaEngine;
}

/**
 * The engine reads a SQLite partial index's WHERE clause from sqlite_master
 * with the index name as a double-quoted string, which better-sqlite3's
 * SQLite (built without double-quoted string literals) takes for a column:
 * that one query runs with the name bound instead.
 */
const indexSqlRead = /^SELECT sql FROM sqlite_master WHERE type = 'index' AND name = "((?:[^"]|"")*)";?$/;
function withIndexNameBound(q) {
  const name = indexSqlRead.exec(q.sql)?.[1];
  if (name === undefined) return q;
  return { sql: `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`, args: [name.replaceAll('""', '"')], argTypes: [{ scalarType: 'string', arity: 'scalar' }] };
}

/** An adapter factory whose shadow database starts empty and lives in memory. */
async function shadowFactory(flavour) {
  if (flavour === 'sqlite') {
    const { PrismaBetterSqlite3 } = await import('@prisma/adapter-better-sqlite3');
    const f = new PrismaBetterSqlite3({ url: ':memory:' });
    return {
      adapterName: f.adapterName,
      provider: f.provider,
      connect: () => f.connect(),
      // The engine replays each migration file with one argument-less executeRaw,
      // which better-sqlite3 limits to one statement: run those as scripts.
      connectToShadowDb: async () => {
        const a = await f.connectToShadowDb();
        const raw = a.executeRaw.bind(a);
        a.executeRaw = async (q) => (q.args.length ? raw(q) : (await a.executeScript(q.sql), 0));
        const query = a.queryRaw.bind(a);
        a.queryRaw = async (q) => query(withIndexNameBound(q));
        return a;
      },
    };
  }
  // PGlite rather than a PostgreSQL server: same SQL, no server, and
  // @prisma/adapter-pg cannot host a shadow database (dependencies.md §1b).
  const { PGlite } = await import('@electric-sql/pglite');
  const { PrismaPGlite } = await import('pglite-prisma-adapter');
  // One in-memory PGlite serves as both databases: PGlite takes seconds to
  // start, and a diff from migrations only ever writes to the shadow one.
  const db = new PGlite();
  disposers.push(() => db.close());
  const f = new PrismaPGlite(db);
  return { adapterName: f.adapterName, provider: f.provider, connect: () => f.connect(), connectToShadowDb: () => f.connect() };
}

const lockText = (provider) => `# Written by scripts/db-migration.mjs; do not edit.\nprovider = "${provider}"\n`;

function migrationsList(migDir, provider) {
  const lock = path.join(migDir, 'migration_lock.toml');
  const dirs = fs.existsSync(migDir)
    ? fs.readdirSync(migDir, { withFileTypes: true }).filter((d) => d.isDirectory() && fs.existsSync(path.join(migDir, d.name, 'migration.sql'))).map((d) => d.name).sort()
    : [];
  return {
    baseDir: migDir,
    shadowDbInitScript: '',
    // A first migration has no lock file yet: the engine still needs the provider.
    lockfile: { path: 'migration_lock.toml', content: fs.existsSync(lock) ? fs.readFileSync(lock, 'utf8') : lockText(provider) },
    migrationDirectories: dirs.map((d) => ({
      path: d,
      migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: fs.readFileSync(path.join(migDir, d, 'migration.sql'), 'utf8') } },
    })),
  };
}

/** The SQL that takes a database from the committed migrations to the schema ('' when none). */
async function pendingSql(SchemaEngine, bind, { name: flavour, provider }) {
  const dir = path.join(root, 'prisma', flavour);
  const files = ['schema.prisma', 'models.prisma'].map((f) => ({ path: path.join(dir, f), content: fs.readFileSync(path.join(dir, f), 'utf8') }));
  const factory = await shadowFactory(flavour);
  // engine.free() does not close the connections it opened: track them.
  const track = (connect) => async () => {
    const a = await connect();
    disposers.push(() => a.dispose());
    return a;
  };
  const bound = bind({ ...factory, connect: track(() => factory.connect()), connectToShadowDb: track(() => factory.connectToShadowDb()) });
  const engine = await SchemaEngine.new({ datamodels: files.map((f) => [f.path, f.content]) }, () => {}, bound);
  try {
    const r = await engine.diff({
      from: { tag: 'migrations', ...migrationsList(path.join(dir, 'migrations'), provider) },
      to: { tag: 'schemaDatamodel', files },
      script: true,
      exitCode: true,
      filters,
    });
    return r.exitCode === 2 ? r.stdout : '';
  } catch (err) {
    const detail = bound.errorRegistry.registeredErrors.map((e) => String(e.error)).join('; ');
    throw new Error(`${flavour}: ${err.message}${detail ? ` (${detail})` : ''}`, { cause: err });
  } finally {
    engine.free();
  }
}

globalThis.PRISMA_WASM_PANIC_REGISTRY ??= { set_message: (m) => console.error('schema engine panic:', m) };
const SchemaEngine = await loadEngine();
const { bindMigrationAwareSqlAdapterFactory } = await import('@prisma/driver-adapter-utils');

// Both histories must stay in step: same migration names, in the same order.
const names = flavours.map((f) => migrationsList(path.join(root, 'prisma', f.name, 'migrations'), f.provider).migrationDirectories.map((d) => d.path).join('\n'));
if (names[0] !== names[1]) {
  console.error('prisma/sqlite/migrations and prisma/pg/migrations hold different migrations; each migration must exist for both flavours');
  process.exit(1);
}

const pending = [];
for (const f of flavours) pending.push({ ...f, sql: await pendingSql(SchemaEngine, bindMigrationAwareSqlAdapterFactory, f) });

if (cmd === 'check') {
  const drift = pending.filter((p) => p.sql);
  for (const p of drift) console.error(`${p.name}: the migrations do not produce prisma/models.prisma; missing:\n${p.sql}`);
  if (drift.length) {
    console.error('run: npm run db:migration -- new <name>');
    process.exit(1);
  }
  console.log('migrations match the schema (sqlite, pg)');
} else if (pending.every((p) => !p.sql)) {
  console.log('no schema changes');
} else {
  // One timestamp for both flavours, so the two histories pair up by name.
  const dirName = `${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}_${name}`;
  for (const p of pending) {
    // A change can be invisible to one flavour (e.g. a native type); keep the pair anyway.
    const migDir = path.join(root, 'prisma', p.name, 'migrations');
    const out = path.join(migDir, dirName);
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'migration.sql'), p.sql || '-- This migration changes nothing for this database flavour.\n');
    const lock = path.join(migDir, 'migration_lock.toml');
    if (!fs.existsSync(lock)) fs.writeFileSync(lock, lockText(p.provider));
    console.log(`created ${path.relative(root, out)}/migration.sql`);
  }
}
// Dispose adapters before the PGlite they run on.
for (const dispose of disposers.reverse()) await dispose();
