import { defineConfig } from 'prisma/config';

// Only generate/validate/format use the CLI; migrations run in-process through
// @prisma/schema-engine-wasm (src/store/migrate.ts), so the native schema
// engine is never needed and never downloaded.
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= '/bin/false';

export default defineConfig({
  schema: 'sqlite',
  migrations: { path: 'sqlite/migrations' },
});
