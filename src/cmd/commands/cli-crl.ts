/** `trellis crl publish [--out DIR] [--root]`: regenerate every CRL and write the files for offline distribution. */
import path from 'node:path';
import { parse, UsageError } from '../../cli/args.js';
import { publishCrlFiles } from '../../crl/files.js';
import { IssuerRegistry, keystoreFor, openInstance, unlockCa } from '../instance.js';
import { crlPublisher } from './crl.js';
import { dataDirOf, out, passphraseFor } from './common.js';

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, { out: { type: 'string' }, root: { type: 'boolean' } });
  if (sub !== 'publish') throw new UsageError('usage: trellis crl publish [--out DIR] [--root]');
  const passphrase = await passphraseFor(values);
  const instance = await openInstance(dataDirOf(values.data));
  try {
    const keystore = keystoreFor(instance, passphrase);
    const signers = (await IssuerRegistry.unlock(instance, keystore)).all();
    // The root's key is unlocked only when asked: it is the offline key of a ceremony.
    if (values.root) for (const ca of instance.cas.filter((c) => c.role === 'root' && c.state === 'active')) signers.push(await unlockCa(instance, keystore, ca.id));
    const publisher = crlPublisher(instance, signers);
    const dir = path.resolve(values.out ?? path.join(instance.dataDir, 'crl'));
    const written = (await publishCrlFiles(publisher, dir, { regenerate: true })).map((w) => ({ ca: w.caId, scope: w.scope, crlNumber: w.crlNumber.toString(), entries: w.entries, file: w.derPath }));
    const o = out(values);
    o.result(written);
    o.say(`wrote ${written.length} CRLs to ${dir}`);
    return 0;
  } finally {
    await instance.close();
  }
}
