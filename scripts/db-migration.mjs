// Writes a new SQL migration for BOTH database flavours from prisma/models.prisma:
//   npm run db:migration -- new <name>
// The Prisma CLI cannot migrate offline; the schema engine compiled to wasm can.
// Each migration directory also keeps the datamodel it was made from
// (schema.snapshot), so the next diff is datamodel → datamodel and needs
// no database or shadow database at all.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const root = path.resolve(import.meta.dirname, '..');
const [cmd, name] = process.argv.slice(2);
if (cmd !== 'new' || !/^[a-z0-9_]+$/.test(name ?? '')) {
  console.error('usage: npm run db:migration -- new <snake_case_name>');
  process.exit(2);
}

async function loadEngine() {
  const require = createRequire(import.meta.url);
  const glue = await import('@prisma/schema-engine-wasm/schema_engine_bg');
  const wasm = path.join(path.dirname(require.resolve('@prisma/schema-engine-wasm/schema_engine_bg')), 'schema_engine_bg.wasm');
  const inst = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasm)), { './schema_engine_bg.js': glue });
  glue.__wbg_set_wasm(inst.exports);
  inst.exports.__wbindgen_start();
  return glue.SchemaEngine;
}

// The engine wants a driver adapter even for datamodel-only diffs: an in-memory
// SQLite, and for PostgreSQL the local server (DATABASE_URL, default the
// local trust-auth cluster); nothing is written to either.
async function adapterFor(flavour) {
  const { bindMigrationAwareSqlAdapterFactory } = await import('@prisma/driver-adapter-utils');
  if (flavour === 'sqlite') {
    const { PrismaBetterSqlite3 } = await import('@prisma/adapter-better-sqlite3');
    return bindMigrationAwareSqlAdapterFactory(new PrismaBetterSqlite3({ url: 'file::memory:' }));
  }
  const { PrismaPg } = await import('@prisma/adapter-pg');
  return bindMigrationAwareSqlAdapterFactory(new PrismaPg({ connectionString: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres' }));
}

globalThis.PRISMA_WASM_PANIC_REGISTRY ??= { set_message: (m) => console.error('schema engine panic:', m) };
const SchemaEngine = await loadEngine();
const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
const models = fs.readFileSync(path.join(root, 'prisma/models.prisma'), 'utf8');
for (const flavour of ['sqlite', 'pg']) {
  const dir = path.join(root, 'prisma', flavour);
  const migDir = path.join(dir, 'migrations');
  fs.mkdirSync(migDir, { recursive: true });
  const header = fs.readFileSync(path.join(dir, 'schema.prisma'), 'utf8');
  const files = (modelsText) => [[path.join(dir, 'schema.prisma'), header], [path.join(dir, 'models.prisma'), modelsText]];
  const previous = fs.readdirSync(migDir).filter((d) => fs.existsSync(path.join(migDir, d, 'schema.snapshot'))).sort().pop();
  const engine = await SchemaEngine.new({ datamodels: files(models) }, () => {}, await adapterFor(flavour));
  try {
    const to = { tag: 'schemaDatamodel', files: files(models).map(([p, content]) => ({ path: p, content })) };
    const from = previous
      ? { tag: 'schemaDatamodel', files: files(fs.readFileSync(path.join(migDir, previous, 'schema.snapshot'), 'utf8')).map(([p, content]) => ({ path: p, content })) }
      : { tag: 'empty' };
    const r = await engine.diff({ from, to, script: true, exitCode: true, filters: { externalTables: [], externalEnums: [] } });
    if (r.exitCode !== 2) {
      console.log(`${flavour}: no schema changes`);
      continue;
    }
    const out = path.join(migDir, `${stamp}_${name}`);
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'migration.sql'), r.stdout);
    fs.writeFileSync(path.join(out, 'schema.snapshot'), models);
    const lock = path.join(migDir, 'migration_lock.toml');
    if (!fs.existsSync(lock)) fs.writeFileSync(lock, `provider = "${flavour === 'sqlite' ? 'sqlite' : 'postgresql'}"\n`);
    console.log(`${flavour}: created ${path.relative(root, out)}`);
  } finally {
    engine.free();
  }
}
