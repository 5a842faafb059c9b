/**
 * Applies the SQL migrations in prisma/<flavour>/migrations in-process with
 * the wasm schema engine (the Prisma CLI cannot migrate offline). It writes
 * the standard _prisma_migrations table, so applying twice changes nothing and
 * an older database is upgraded in place.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { bindMigrationAwareSqlAdapterFactory, type SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { PkiError } from '../errors/pki-error.js';

export type Flavour = 'sqlite' | 'pg';

/** The package's migrations directory for a flavour (works from src/ and dist/). */
export const migrationsDirOf = (flavour: Flavour): string => path.resolve(import.meta.dirname, '../../prisma', flavour, 'migrations');

/** Migration directory names, in order. */
export function migrationNames(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(dir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort();
}

let enginePromise: Promise<any> | undefined;
function loadEngine(): Promise<any> {
  enginePromise ??= (async () => {
    const require = createRequire(import.meta.url);
    const glueId = '@prisma/schema-engine-wasm/schema_engine_bg';
    const glue: any = await import(glueId);
    const wasm = path.join(path.dirname(require.resolve(glueId)), 'schema_engine_bg.wasm');
    const wa = (globalThis as any).WebAssembly;
    const inst = new wa.Instance(new wa.Module(fs.readFileSync(wasm)), { './schema_engine_bg.js': glue });
    glue.__wbg_set_wasm(inst.exports);
    (inst.exports as any).__wbindgen_start();
    (globalThis as any).PRISMA_WASM_PANIC_REGISTRY ??= { set_message: () => {} };
    return glue.SchemaEngine;
  })();
  return enginePromise;
}

function migrationsList(dir: string) {
  const lock = path.join(dir, 'migration_lock.toml');
  return {
    baseDir: dir,
    shadowDbInitScript: '',
    lockfile: { path: 'migration_lock.toml', content: fs.existsSync(lock) ? fs.readFileSync(lock, 'utf8') : null },
    migrationDirectories: migrationNames(dir).map((d) => ({
      path: d,
      migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: fs.readFileSync(path.join(dir, d, 'migration.sql'), 'utf8') } },
    })),
  };
}

/**
 * Applies pending migrations through `factory` (a fresh adapter factory: the
 * engine opens its own connection). Returns the names it applied.
 */
export async function applyMigrations(factory: SqlMigrationAwareDriverAdapterFactory, dir: string): Promise<string[]> {
  const SchemaEngine = await loadEngine();
  // Track the connections the engine opens: engine.free() does not close them, and a
  // lingering SQLite connection would keep the file locked for the real client.
  const opened: { dispose(): Promise<void> }[] = [];
  const tracked: SqlMigrationAwareDriverAdapterFactory = {
    adapterName: factory.adapterName,
    provider: factory.provider,
    connect: async () => {
      const a = await factory.connect();
      opened.push(a);
      return a;
    },
    connectToShadowDb: async () => {
      const a = await factory.connectToShadowDb();
      opened.push(a);
      return a;
    },
  };
  const bound = bindMigrationAwareSqlAdapterFactory(tracked);
  const schemaPath = path.join(path.dirname(dir), 'schema.prisma');
  const engine = await SchemaEngine.new({ datamodels: [[schemaPath, fs.readFileSync(schemaPath, 'utf8')]] }, () => {}, bound);
  try {
    const r = await engine.applyMigrations({ migrationsList: migrationsList(dir), filters: { externalTables: [], externalEnums: [] } });
    return r.appliedMigrationNames as string[];
  } catch (err) {
    const detail = (bound.errorRegistry as any).registeredErrors.map((e: { error: unknown }) => String(e.error)).join('; ');
    throw new PkiError('invalidConfig', `database migration failed: ${(err as Error).message}${detail ? ` (${detail})` : ''}`, { cause: err });
  } finally {
    engine.free();
    await Promise.all(opened.map((a) => a.dispose()));
  }
}
