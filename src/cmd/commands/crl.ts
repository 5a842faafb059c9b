/**
 * `trellis crl publish [--out DIR] [--root [--quorum-request ID]]`: regenerate
 * every CRL and write the files for offline distribution. `--root` also signs
 * the roots' CRLs with their keys: a use of the root key, so it needs the
 * custodians' quorum for `root-key.use` with `{ ca: ROOT[,ROOT2…], purpose: "crl publish" }`.
 */
import path from 'node:path';
import { parse, UsageError } from '../../cli/args.js';
import { permits } from '../../ca/key-state.js';
import { progress } from '../../cli/progress.js';
import { publishCrlFiles } from '../../crl/files.js';
import { holdsKey, unlockIssuers, isOfflineCa, keystoreFor, openInstance, tokenOf, unlockCa, type CaKeystores } from '../instance.js';
import { quorumRequestFlag, quorumGate } from '../quorum.js';
import { crlPublisher } from '../crl-publishing.js';
import { actorOf, dataDirOf, out, passphraseFor, rootPassphraseFlag, rootPassphraseFor } from './common.js';

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, { out: { type: 'string' }, root: { type: 'boolean' }, ...rootPassphraseFlag, ...quorumRequestFlag });
  if (sub !== 'publish') throw new UsageError('usage: trellis crl publish [--out DIR] [--root [--quorum-request ID]]');
  const instance = await openInstance(dataDirOf(values.data));
  try {
    // The roots whose keys sign (asked for with --root): the quorum is checked before any passphrase is read, used once the roots' keys are open.
    const roots = values.root ? instance.cas.filter((c) => c.role === 'root' && permits(c.keyState, 'crl') && holdsKey(c)) : [];
    const quorum = roots.length ? await quorumGate(instance, 'root-key.use', { ca: roots.map((c) => c.id).join(','), purpose: 'crl publish' }, { requestId: values['quorum-request'], actor: actorOf() }) : undefined;
    const keys: CaKeystores = { online: keystoreFor(instance, await passphraseFor(values)) };
    // A key whose state forbids CRLs (suspended, compromised…) signs none: its CA is skipped, and said so.
    const o = out(values);
    const mayCrl = (id: string) => permits(instance.cas.find((c) => c.id === id)!.keyState, 'crl');
    const unlocked = (await unlockIssuers(instance, keys.online)).all();
    for (const s of unlocked.filter((i) => !mayCrl(i.id))) process.stderr.write(`trellis crl: CA "${s.id}" skipped: its key is ${instance.cas.find((c) => c.id === s.id)!.keyState}, it signs no CRL\n`);
    const signers = unlocked.filter((i) => mayCrl(i.id));
    // The root's key is unlocked only when asked, with its own passphrase: it is the offline key of a ceremony.
    if (roots.some((c) => isOfflineCa(c) && !tokenOf(c))) keys.offline = keystoreFor(instance, await rootPassphraseFor(values));
    for (const ca of roots) signers.push(await unlockCa(instance, keys, ca.id));
    await quorum?.use();
    const publisher = crlPublisher(instance, signers);
    const dir = path.resolve(values.out ?? path.join(instance.dataDir, 'crl'));
    const shown = progress('crl publish');
    const files = await publishCrlFiles(publisher, dir, { regenerate: true, access: values.out ? 'public' : 'private', onProgress: (done, total, what) => shown.update(done, total, what) }).finally(() => shown.end());
    const written = files.map((w) => ({ ca: w.caId, scope: w.scope, crlNumber: w.crlNumber.toString(), entries: w.entries, file: w.derPath }));
    o.result(written);
    o.say(`wrote ${written.length} CRLs to ${dir}`);
    return 0;
  } finally {
    await instance.close();
  }
}
