/** `trellis db migrate` */
import { parse, UsageError } from '../../cli/args.js';
import { databaseUrlOf, readInstanceConfig } from '../../config/instance-config.js';
import { openStore } from '../../store/open.js';
import { dataDirOf, out } from './common.js';

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, { db: { type: 'string' } });
  if (sub !== 'migrate') throw new UsageError('usage: trellis db migrate [--db URL]');
  const dataDir = dataDirOf(values.data);
  const url = values.db ?? process.env.TRELLIS_DATABASE_URL ?? databaseUrlOf(dataDir, readInstanceConfig(dataDir));
  const store = await openStore(url, { migrate: false });
  try {
    const applied = await store.migrate();
    out(values).result({ applied });
    out(values).say(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date');
    return 0;
  } finally {
    await store.close();
  }
}
