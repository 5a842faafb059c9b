/**
 * PostgreSQL for tests: TRELLIS_TEST_DATABASE_URL names a server (and a
 * database we may use to create others). Without it PG tests skip loudly,
 * unless TRELLIS_REQUIRE_INTEROP=1, which turns the skip into a failure.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { interopAvailable } from './interop.js';

export function pgAvailable(): boolean {
  return interopAvailable(!!process.env.TRELLIS_TEST_DATABASE_URL, 'PostgreSQL (TRELLIS_TEST_DATABASE_URL)', 'set TRELLIS_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres');
}

/** Creates a fresh database on the test server; `drop` removes it. */
export async function freshPgDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = new URL(process.env.TRELLIS_TEST_DATABASE_URL!);
  const name = `trellis_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base.toString());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base.toString() });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
