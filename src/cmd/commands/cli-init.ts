/** `trellis init --yes [--data DIR] [--base-url URL] [--db URL]` */
import { parse, UsageError } from '../../cli/args.js';
import type { InitResult } from './init.js';
import { actorOf, dataDirOf, out, passphraseFor } from './common.js';
import type { Output } from '../../cli/output.js';

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { yes: { type: 'boolean', short: 'y' }, 'base-url': { type: 'string' }, db: { type: 'string' } });
  if (!values.yes) throw new UsageError('init creates new CA keys; confirm with --yes');
  const passphrase = await passphraseFor(values, { confirm: true, forNew: true });
  const { initInstance } = await import('./init.js');
  const result = await initInstance({
    dataDir: dataDirOf(values.data),
    baseUrl: values['base-url'] ?? 'http://localhost:8080',
    ...(values.db ?? process.env.TRELLIS_DATABASE_URL ? { databaseUrl: values.db ?? process.env.TRELLIS_DATABASE_URL } : {}),
    passphrase,
    actor: actorOf(),
  });
  printInit(out(values), result);
  return 0;
}

export function printInit(o: Output, r: InitResult): void {
  o.result(r);
  o.say(`Initialised Trellis in ${r.dataDir} (${r.database})`);
  o.say(`Base URL: ${r.baseUrl}`);
  for (const c of r.cas) o.say(`  ${c.role.padEnd(8)} ${c.id.padEnd(10)} ${c.subject}\n           valid until ${c.notAfter.toISOString()}\n           SHA-256 ${c.sha256}`);
  o.say(`  OCSP responder certificate ${r.ocspResponder.serialHex}, valid until ${r.ocspResponder.notAfter.toISOString()}`);
}
