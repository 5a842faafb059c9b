/**
 * The image's entry point (docker/entrypoint.sh) run for real, outside Docker:
 * `sh` against a temp data directory and the built CLI (bin/trellis.js, so
 * dist/ must be built). Secrets are files readable by everyone, as a compose
 * bind mount of a host file may be: the script copies them into private files,
 * since Trellis refuses such a passphrase file. The two-node case on one
 * PostgreSQL skips loudly without TRELLIS_TEST_DATABASE_URL.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { procEntries, runEntrypoint as run, serving, stopEntrypoint, writeSecret, type EntrypointRun as Run } from '../helpers/entrypoint.js';
import { freshPgDatabase, pgAvailable } from '../helpers/postgres.js';

const passphrase = 'online passphrase for the deployment test';
const rootPassphrase = 'root passphrase for the deployment test';

let dir: string;
const secret = (name: string, text: string): string => writeSecret(path.join(dir, 'secrets'), name, text);

const running: Run[] = [];
/** The entry point without an access log (these tests read stdout for init's output). */
const runEntrypoint = (env: Record<string, string>): Run => {
  const r = run({ TRELLIS_ACCESS_LOG: 'off', ...env });
  running.push(r);
  return r;
};

const rootCertOf = async (url: string): Promise<Buffer> => {
  const res = await fetch(`${url}/ca/root.cer`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
};

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-deploy-'));
  fs.mkdirSync(path.join(dir, 'secrets'));
});

afterEach(async () => {
  while (running.length) await stopEntrypoint(running.pop()!);
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('docker/entrypoint.sh on one node (SQLite in the data directory)', () => {
  let data: string;
  let secretsDir: string;
  let env: Record<string, string>;
  let firstRootCert: Buffer;
  let firstConfig: string;

  beforeAll(() => {
    data = path.join(dir, 'single');
    secretsDir = path.join(dir, 'private-single');
    env = {
      TRELLIS_DATA: data,
      TRELLIS_SECRETS_DIR: secretsDir,
      TRELLIS_PASSPHRASE_FILE: secret('passphrase', passphrase),
      TRELLIS_ROOT_PASSPHRASE_FILE: secret('root-passphrase', rootPassphrase),
    };
  });

  test('TRELLIS_INIT=1 initialises on the first start, then serves with the passphrase from the file, which is in no environment', async () => {
    const run = runEntrypoint({ ...env, TRELLIS_INIT: '1', TRELLIS_BASE_URL: 'https://pki.example.test' });
    const url = await serving(run);
    expect(run.stdout()).toMatch(/Initialised Trellis in .*single/);
    expect(run.stderr()).toContain('initialising a Trellis instance');
    expect(JSON.parse(fs.readFileSync(path.join(data, 'trellis.json'), 'utf8')).baseUrl).toBe('https://pki.example.test');
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    // The script exec'd serve: the pid is the serving node process.
    const pid = run.proc.pid!;
    const cmdline = procEntries(pid, 'cmdline');
    expect(cmdline).toEqual(expect.arrayContaining(['serve', '--passphrase-file', path.join(secretsDir, 'passphrase')]));
    const environ = procEntries(pid, 'environ');
    for (const entry of [...environ, ...cmdline]) {
      expect(entry).not.toContain(passphrase);
      expect(entry).not.toContain(rootPassphrase);
    }
    expect(environ.map((e) => e.split('=')[0])).not.toEqual(expect.arrayContaining([expect.stringMatching(/^TRELLIS_(ROOT_)?PASSPHRASE(_FILE)?$/)]));
    // The private copy serve read: 0600 in a 0700 directory; the root passphrase's copy is gone once init is done.
    expect(fs.statSync(secretsDir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(secretsDir, 'passphrase')).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(secretsDir)).toEqual(['passphrase']);
    // No secret in what a container log would show.
    expect(run.stdout() + run.stderr()).not.toContain(passphrase);
    expect(run.stdout() + run.stderr()).not.toContain(rootPassphrase);

    firstRootCert = await rootCertOf(url);
    firstConfig = fs.readFileSync(path.join(data, 'trellis.json'), 'utf8');
  });

  test('a second start with TRELLIS_INIT=1 serves the same instance without initialising again', async () => {
    const run = runEntrypoint({ ...env, TRELLIS_INIT: '1' });
    const url = await serving(run);
    expect(run.stderr()).toContain('already holds a Trellis instance; not initialising');
    expect(run.stdout()).not.toContain('Initialised');
    expect(await rootCertOf(url)).toEqual(firstRootCert);
    expect(fs.readFileSync(path.join(data, 'trellis.json'), 'utf8')).toBe(firstConfig);
  });

  test('the passphrase served with is the file\'s: a wrong one stops serve', async () => {
    const run = runEntrypoint({ ...env, TRELLIS_PASSPHRASE_FILE: secret('wrong-passphrase', 'not the online passphrase at all') });
    expect(await run.exited).not.toBe(0);
    expect(run.stderr()).toMatch(/wrong online passphrase/);
    expect(run.stderr()).not.toContain('not the online passphrase at all');
  });

  test('TRELLIS_INIT=only initialises nothing more and exits 0', async () => {
    const run = runEntrypoint({ ...env, TRELLIS_INIT: 'only' });
    expect(await run.exited).toBe(0);
    expect(run.stderr()).toContain('not initialising');
    expect(run.stderr()).not.toContain('serving');
  });
});

describe('docker/entrypoint.sh refuses what it cannot use, with a clear message', () => {
  const refused = async (env: Record<string, string>, message: RegExp): Promise<Run> => {
    const run = runEntrypoint({ TRELLIS_SECRETS_DIR: path.join(dir, 'private-refused'), ...env });
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toMatch(message);
    return run;
  };

  test('no TRELLIS_PASSPHRASE_FILE', async () => {
    await refused({ TRELLIS_DATA: path.join(dir, 'none') }, /^trellis-entrypoint: TRELLIS_PASSPHRASE_FILE is not set/m);
  });

  test('a TRELLIS_PASSPHRASE_FILE that does not exist', async () => {
    const missing = path.join(dir, 'secrets', 'missing');
    await refused({ TRELLIS_DATA: path.join(dir, 'none'), TRELLIS_PASSPHRASE_FILE: missing }, new RegExp(`TRELLIS_PASSPHRASE_FILE=${missing}: no such file, or not readable`));
  });

  test('TRELLIS_INIT without TRELLIS_ROOT_PASSPHRASE_FILE makes nothing', async () => {
    const data = path.join(dir, 'no-root');
    await refused({ TRELLIS_DATA: data, TRELLIS_INIT: '1', TRELLIS_PASSPHRASE_FILE: secret('passphrase-2', passphrase) }, /TRELLIS_INIT needs TRELLIS_ROOT_PASSPHRASE_FILE/);
    expect(fs.existsSync(data)).toBe(false);
  });

  test('a passphrase in the environment, without showing it', async () => {
    const run = await refused({ TRELLIS_DATA: path.join(dir, 'none'), TRELLIS_PASSPHRASE: passphrase }, /TRELLIS_PASSPHRASE is set in the environment.*TRELLIS_PASSPHRASE_FILE/);
    expect(run.stderr()).not.toContain(passphrase);
  });

  test('no instance and no TRELLIS_INIT: waits TRELLIS_WAIT_SECONDS, then gives up', async () => {
    await refused(
      { TRELLIS_DATA: path.join(dir, 'empty'), TRELLIS_PASSPHRASE_FILE: secret('passphrase-3', passphrase), TRELLIS_WAIT_SECONDS: '1' },
      /no Trellis instance in .*empty after 1s: start one container with TRELLIS_INIT=1/,
    );
  });

  test('an unknown TRELLIS_INIT value', async () => {
    await refused({ TRELLIS_DATA: path.join(dir, 'none'), TRELLIS_INIT: 'yes', TRELLIS_PASSPHRASE_FILE: secret('passphrase-4', passphrase) }, /TRELLIS_INIT must be 1, only or 0, not "yes"/);
  });
});

const pg = pgAvailable();

describe.skipIf(!pg)('docker/entrypoint.sh: two nodes on one PostgreSQL and one shared data directory', () => {
  let db: Awaited<ReturnType<typeof freshPgDatabase>> | undefined;
  afterAll(async () => db?.drop());

  test('the second node waits for the first to initialise, then both serve the same CAs; the database URL stays out of serve\'s environment', async () => {
    db = await freshPgDatabase();
    const data = path.join(dir, 'shared');
    const common = { TRELLIS_DATA: data, TRELLIS_PASSPHRASE_FILE: secret('passphrase-pg', passphrase) };
    // Node 2 first: it has nothing to serve until node 1 has made trellis.json.
    const node2 = runEntrypoint({ ...common, TRELLIS_SECRETS_DIR: path.join(dir, 'private-2'), TRELLIS_WAIT_SECONDS: '110' });
    const node1 = runEntrypoint({
      ...common,
      TRELLIS_SECRETS_DIR: path.join(dir, 'private-1'),
      TRELLIS_INIT: '1',
      TRELLIS_ROOT_PASSPHRASE_FILE: secret('root-passphrase-pg', rootPassphrase),
      TRELLIS_DATABASE_URL_FILE: secret('database-url', db.url),
    });
    const [url1, url2] = await Promise.all([serving(node1), serving(node2)]);
    expect(node2.stderr()).toContain('waiting up to 110s');
    expect(node1.stdout()).toMatch(/Initialised Trellis in .*\(postgres\)/);
    expect(node2.stdout()).not.toContain('Initialised');
    expect(JSON.parse(fs.readFileSync(path.join(data, 'trellis.json'), 'utf8')).databaseUrl).toBe(db.url);
    expect(await rootCertOf(url2)).toEqual(await rootCertOf(url1));
    for (const node of [node1, node2]) {
      for (const entry of procEntries(node.proc.pid!, 'environ')) {
        expect(entry).not.toMatch(/^TRELLIS_DATABASE_URL/);
        expect(entry).not.toContain(db.url);
      }
    }
  });
});
