/** `trellis audit verify` */
import { parse, UsageError } from '../../cli/args.js';
import { openInstance } from '../instance.js';
import { dataDirOf, out } from './common.js';

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, {});
  if (sub !== 'verify') throw new UsageError('usage: trellis audit verify');
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const r = await instance.audit.verify();
    out(values).result(r);
    if (r.ok) out(values).say(`audit log intact: ${r.events} events`);
    else process.stderr.write(`audit log broken at event ${r.seq}: ${r.reason}\n`);
    return r.ok ? 0 : 1;
  } finally {
    await instance.close();
  }
}
