/**
 * `trellis init --yes [--data DIR] [--base-url URL] [--db URL]
 *   [--keystore pkcs11 --pkcs11-module PATH --pkcs11-token LABEL [--pkcs11-pin-file FILE]
 *    [--pkcs11-root-token LABEL --pkcs11-root-pin-file FILE]]` (docs/hsm.md)
 */
import { parse, UsageError } from '../../cli/args.js';
import type { InitResult } from '../init-instance.js';
import { actorOf, dataDirOf, keystoreConfigOf, out, passphraseFor, pkcs11Flags, rootPassphraseFlag, rootPassphraseFor, rootPassphraseGiven, tokenPinsOf } from './common.js';
import type { Output } from '../../cli/output.js';

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { yes: { type: 'boolean', short: 'y' }, 'base-url': { type: 'string' }, db: { type: 'string' }, ...rootPassphraseFlag, ...pkcs11Flags });
  if (!values.yes) throw new UsageError('init creates new CA keys; confirm with --yes');
  const keystore = keystoreConfigOf(values);
  const passphrase = await passphraseFor(values, { confirm: true, forNew: true });
  // Without TRELLIS_ROOT_PASSPHRASE or --root-passphrase-file, init generates the root passphrase and shows it once.
  const rootInToken = keystore.type === 'pkcs11' && keystore.rootToken !== undefined;
  if (rootInToken && rootPassphraseGiven(values)) throw new UsageError('the root key goes into --pkcs11-root-token: it has no root passphrase');
  const rootPassphrase = rootPassphraseGiven(values) ? await rootPassphraseFor(values, { forNew: true }) : undefined;
  const { initInstance } = await import('../init-instance.js');
  const result = await initInstance({
    dataDir: dataDirOf(values.data),
    baseUrl: values['base-url'] ?? 'http://localhost:8080',
    ...(values.db ?? process.env.TRELLIS_DATABASE_URL ? { databaseUrl: values.db ?? process.env.TRELLIS_DATABASE_URL } : {}),
    passphrase,
    ...(rootPassphrase !== undefined ? { rootPassphrase } : {}),
    keystore,
    pins: tokenPinsOf(values),
    actor: actorOf(),
  });
  printInit(out(values), result);
  return 0;
}

/** Prints what init made; a generated root passphrase goes to stderr once (in the JSON result with --json). */
export function printInit(o: Output, r: InitResult): void {
  o.result(r);
  o.say(`Initialised Trellis in ${r.dataDir} (${r.database})`);
  o.say(`Base URL: ${r.baseUrl}`);
  if (r.keystore.type === 'pkcs11') o.say(`CA keys in PKCS#11 token "${r.keystore.token}"${r.keystore.rootToken ? `, the root's in token "${r.keystore.rootToken}"` : ''} (${r.keystore.module})`);
  for (const c of r.cas) o.say(`  ${c.role.padEnd(8)} ${c.id.padEnd(10)} ${c.subject}\n           valid until ${c.notAfter.toISOString()}\n           SHA-256 ${c.sha256}`);
  o.say(`  OCSP responder certificate ${r.ocspResponder.serialHex}, valid until ${r.ocspResponder.notAfter.toISOString()}`);
  if (r.generatedRootPassphrase && !o.json) {
    process.stderr.write(
      `\nRoot key passphrase (shown once; keep it offline, apart from the online passphrase; needed for ceremonies and the root's CRL, never by serve):\n\n    ${r.generatedRootPassphrase}\n\n`,
    );
  }
}
