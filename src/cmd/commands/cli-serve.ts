/** `trellis serve` and `trellis quickstart`. */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { parse, UsageError } from '../../cli/args.js';
import { configFile } from '../../config/instance-config.js';
import { jsonLogger } from '../../http/log.js';
import { systemClock } from '../../clock/clock.js';
import { initInstance } from './init.js';
import { printInit } from './cli-init.js';
import { serve } from './serve.js';
import { actorOf, dataDirOf, out, passphraseFor } from './common.js';

const serveFlags = { host: { type: 'string' }, port: { type: 'string' }, tls: { type: 'boolean' }, 'base-url': { type: 'string' }, db: { type: 'string' } } as const;

function portOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const p = Number(text);
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new UsageError(`--port: not a port number: ${text}`);
  return p;
}

async function start(values: { data?: string | undefined; host?: string | undefined; port?: string | undefined; tls?: boolean | undefined; db?: string | undefined }, passphrase: string): Promise<number> {
  const log = jsonLogger(systemClock);
  const port = portOf(values.port);
  const db = values.db ?? process.env.TRELLIS_DATABASE_URL;
  const serving = await serve({
    dataDir: dataDirOf(values.data),
    ...(values.host ? { host: values.host } : {}),
    ...(port !== undefined ? { port } : {}),
    tls: !!values.tls,
    passphrase,
    log,
    // One log line per request unless TRELLIS_ACCESS_LOG=off (benchmarks, or a proxy that logs already).
    accessLog: process.env.TRELLIS_ACCESS_LOG !== 'off',
    ...(db ? { databaseUrl: db } : {}),
  });
  process.stderr.write(`Trellis is serving on ${serving.url} (Ctrl-C to stop)\n`);
  const stop = (signal: string) => {
    log({ msg: 'shutting down', signal });
    serving.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, serveFlags);
  return start(values, await passphraseFor(values));
}

/** init when there is no CA yet (showing a generated passphrase once unless TRELLIS_PASSPHRASE is set), then serve. */
export async function runQuickstart(argv: string[]): Promise<number> {
  const { values } = parse(argv, serveFlags);
  const dataDir = dataDirOf(values.data);
  let passphrase: string;
  if (!fs.existsSync(configFile(dataDir))) {
    const generated = !process.env.TRELLIS_PASSPHRASE && !values['passphrase-file'];
    passphrase = generated ? randomBytes(18).toString('base64url') : await passphraseFor(values, { forNew: true });
    const port = portOf(values.port) ?? 8080;
    const scheme = values.tls ? 'https' : 'http';
    const db = values.db ?? process.env.TRELLIS_DATABASE_URL;
    const result = await initInstance({ dataDir, baseUrl: values['base-url'] ?? `${scheme}://localhost:${port}`, ...(db ? { databaseUrl: db } : {}), passphrase, actor: actorOf() });
    printInit(out(values), result);
    if (generated) {
      process.stderr.write(
        `\nCA key passphrase (shown once, store it safely; needed to restart):\n\n    ${passphrase}\n\nRestart later with: TRELLIS_PASSPHRASE='<passphrase>' npx trellis quickstart\n\n`,
      );
    }
  } else {
    passphrase = await passphraseFor(values);
  }
  return start(values, passphrase);
}
