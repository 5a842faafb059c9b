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
