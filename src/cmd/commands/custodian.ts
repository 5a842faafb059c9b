/**
 * `trellis custodian add --name N [--key-file PUB.pem]`, `custodian list`,
 * `custodian remove --name N`. A custodian without --key-file approves with a
 * passphrase of their own (TRELLIS_CUSTODIAN_PASSPHRASE, --passphrase-file,
 * or a prompt), stored only as scrypt; one with --key-file approves by
 * signing with the private key that stays with them.
 */
import fs from 'node:fs';
import { parse, required, UsageError } from '../../cli/args.js';
import { PkiError } from '../../errors/pki-error.js';
import { openInstance } from '../instance.js';
import { quorumOf } from '../quorum.js';
import { actorOf, dataDirOf, out } from './common.js';
import { custodianPassphraseFor } from './custodian/passphrase.js';

const usage = `usage: trellis custodian add --name NAME [--key-file PUBLIC.pem] [--passphrase-file FILE]
       trellis custodian list [--json]
       trellis custodian remove --name NAME`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'add') return add(rest);
  if (sub === 'list') return list(rest);
  if (sub === 'remove') return remove(rest);
  throw new UsageError(usage);
}

async function add(argv: string[]): Promise<number> {
  const { values } = parse(argv, { name: { type: 'string' }, 'key-file': { type: 'string' } });
  const name = required(values.name, 'name');
  const keyFile = values['key-file'];
  if (keyFile && values['passphrase-file']) throw new UsageError('a custodian has a key file or a passphrase, not both');
  let publicKeyPem: string | undefined;
  if (keyFile) {
    try {
      publicKeyPem = fs.readFileSync(keyFile, 'utf8');
    } catch (err) {
      throw new PkiError('notFound', `cannot read ${keyFile}`, { cause: err });
    }
  }
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const credential = publicKeyPem !== undefined ? { publicKeyPem } : { passphrase: await custodianPassphraseFor(values, name, { confirm: true, forNew: true }) };
    const c = await quorumOf(instance).custodians.add(name, credential, actorOf());
    const o = out(values);
    o.result({ name: c.name, credential: c.credential, createdAt: c.createdAt.toISOString() });
    o.say(`custodian "${c.name}" added (${c.credential === 'passphrase' ? 'approves with a passphrase' : `approves with a ${c.credential} key`})`);
    return 0;
  } finally {
    await instance.close();
  }
}

async function list(argv: string[]): Promise<number> {
  const { values } = parse(argv, {});
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const all = await quorumOf(instance).custodians.list();
    const rows = all.map((c) => ({ name: c.name, credential: c.credential, createdAt: c.createdAt.toISOString(), removedAt: c.removedAt?.toISOString() ?? null }));
    const o = out(values);
    const m = instance.config.quorum?.threshold;
    const n = rows.filter((c) => c.removedAt === null).length;
    o.result({ threshold: m ?? null, custodians: rows });
    for (const c of rows) o.say([c.name, c.credential, `added ${c.createdAt}`, c.removedAt ? `removed ${c.removedAt}` : 'active'].join('  '));
    o.say(m === undefined ? (n === 0 ? 'no quorum configured: single-operator mode' : `no quorum.threshold in trellis.json: operations that need a quorum are refused until it is set (1 to ${n})`) : `quorum: ${m} of ${n}`);
    return 0;
  } finally {
    await instance.close();
  }
}

async function remove(argv: string[]): Promise<number> {
  const { values } = parse(argv, { name: { type: 'string' } });
  const name = required(values.name, 'name');
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const { removed } = await quorumOf(instance).custodians.remove(name, actorOf());
    out(values).result({ name, removed });
    process.stderr.write(removed ? `custodian "${name}" removed; their approvals no longer count\n` : `custodian "${name}" was already removed\n`);
    return 0;
  } finally {
    await instance.close();
  }
}
