/** `trellis token create --role issuer|admin [--name NAME]` */
import { parse, required, UsageError } from '../../cli/args.js';
import { createToken, tokenRoles, type TokenRole } from '../../tokens/tokens.js';
import { openInstance } from '../instance.js';
import { actorOf, dataDirOf, out } from './common.js';

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, { role: { type: 'string' }, name: { type: 'string' } });
  if (sub !== 'create') throw new UsageError('usage: trellis token create --role issuer|admin [--name NAME]');
  const role = required(values.role, 'role');
  if (!(tokenRoles as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${tokenRoles.join(', ')}`);
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const token = await createToken(instance.store.tokens, role as TokenRole, values.name ?? null);
    await instance.audit.record('token.created', actorOf(), { id: token.id, role, name: values.name ?? null });
    const o = out(values);
    o.result({ id: token.id, role, token: token.secret });
    if (!o.json) {
      process.stdout.write(`${token.secret}\n`);
      process.stderr.write(`token ${token.id} (${role}) created; it is shown only once\n`);
    }
    return 0;
  } finally {
    await instance.close();
  }
}
