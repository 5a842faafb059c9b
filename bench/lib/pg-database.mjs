/** A fresh PostgreSQL database for one benchmark run, dropped after it (unless kept), and row counts read from it. */
import pg from 'pg';

async function adminQuery(serverUrl, sql) {
  const c = new pg.Client({ connectionString: serverUrl });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

/** Makes `<prefix>_<time>` on the server of `serverUrl`; returns its URL and `drop()`. */
export async function freshDatabase(serverUrl, prefix) {
  const name = `${prefix}_${Date.now()}`;
  await adminQuery(serverUrl, `CREATE DATABASE "${name}"`);
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return { name, url: u.toString(), drop: () => adminQuery(serverUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

/** Certificate rows by status in the database at `url`. */
export async function certificateRowsPg(url) {
  const { rows } = await adminQuery(url, 'SELECT status, count(*)::int AS n FROM "Certificate" GROUP BY status');
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/**
 * Runs `load` (a bulk load of `table`) with the table's secondary indexes
 * dropped, then builds them again, `connections` at a time: building an index
 * once over the loaded rows is much cheaper than maintaining it row by row.
 * Indexes behind a constraint (the primary key) stay. Returns the seconds
 * the load and the build took.
 */
export async function loadWithoutIndexes(url, table, load, { connections = 2, maintenanceWorkMem = '256MB' } = {}) {
  const { rows: indexes } = await adminQuery(
    url,
    `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = '${table}'
       AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = '"${table}"'::regclass)`,
  );
  await adminQuery(url, indexes.map((i) => `DROP INDEX "${i.indexname}";`).join('\n'));
  const t0 = performance.now();
  await load();
  const t1 = performance.now();
  const queue = [...indexes];
  await Promise.all(
    Array.from({ length: Math.min(connections, queue.length) }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`SET maintenance_work_mem = '${maintenanceWorkMem}'`);
        for (let i = queue.shift(); i; i = queue.shift()) await c.query(i.indexdef);
      } finally {
        await c.end();
      }
    }),
  );
  return { loadSeconds: (t1 - t0) / 1000, indexSeconds: (performance.now() - t1) / 1000, indexes: indexes.length };
}
