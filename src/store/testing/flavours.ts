/**
 * The database flavours a store contract suite runs on: SQLite (a temp file)
 * always, and PostgreSQL whenever TRELLIS_TEST_DATABASE_URL names a server
 * (each fresh database is created there and dropped afterwards). Without that
 * variable the PostgreSQL flavour is left out with a loud warning, or, under
 * TRELLIS_REQUIRE_INTEROP=1, a test that fails says why.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, test } from 'vitest';

/** A fresh, empty database of one flavour; `drop` removes it. */
export interface FreshDatabase {
  url: string;
  drop(): Promise<void>;
}

export interface Flavour {
  name: 'sqlite' | 'postgres';
  fresh(): Promise<FreshDatabase>;
}

/** Runs one SQL statement as the test server's admin (CREATE/DROP DATABASE). */
async function admin(server: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: server });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** The flavours for the suite called `suite` (named in the skip warning or the failing test). */
export function contractFlavours(suite: string): Flavour[] {
  const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-store-'));
  afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
  const flavours: Flavour[] = [
    {
      name: 'sqlite',
      fresh: async () => ({ url: `file:${path.join(tmpRoot, `${randomBytes(6).toString('hex')}.db`)}`, drop: async () => {} }),
    },
  ];
  const server = process.env.TRELLIS_TEST_DATABASE_URL;
  if (server) {
    flavours.push({
      name: 'postgres',
      async fresh() {
        const name = `trellis_test_${randomBytes(6).toString('hex')}`;
        await admin(server, `CREATE DATABASE ${name}`);
        const url = new URL(server);
        url.pathname = `/${name}`;
        return { url: url.toString(), drop: () => admin(server, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
      },
    });
  } else if (process.env.TRELLIS_REQUIRE_INTEROP === '1') {
    test(`PostgreSQL ${suite}`, () => {
      throw new Error(`TRELLIS_REQUIRE_INTEROP=1 but TRELLIS_TEST_DATABASE_URL is not set: the PostgreSQL ${suite} cannot run`);
    });
  } else {
    console.warn(`\n*** SKIPPING the PostgreSQL ${suite}: set TRELLIS_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres to run it ***\n`);
  }
  return flavours;
}
