/**
 * `trellis ceremony split-root-secret --shares N --threshold M --out-dir DIR`:
 * splits the root secret (the root passphrase, checked against every root
 * key this instance holds offline) into N Shamir shares, any M of which
 * rebuild it (`--share FILE` on root operations). The passphrase itself
 * keeps working. Writes DIR/root-secret-share-I-of-N.json (mode 0600) and
 * refuses a DIR that already holds share files; audited without the secret.
 * It changes how the root's secret is held, so it needs the custodians'
 * quorum for `root-key.use` with `{ ca: ROOT[,ROOT2…], purpose: "split-root-secret M of N" }`
 * (`--quorum-request ID`), checked before the passphrase is read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse, required, UsageError } from '../../../cli/args.js';
import { makePrivateDir, writePrivateFile } from '../../../config/file-permissions.js';
import { PkiError } from '../../../errors/pki-error.js';
import { splitRootSecret } from '../../../quorum/root-secret.js';
import { checkSplitCounts } from '../../../quorum/shamir.js';
import { shareFileText } from '../../../quorum/share-file.js';
import { holdsKey, isOfflineCa, keyIdOf, keystoreFor, openInstance, tokenOf } from '../../instance.js';
import { quorumRequestFlag, quorumGate } from '../../quorum.js';
import { actorOf, dataDirOf, out, rootPassphraseFlag, rootPassphraseFor } from '../common.js';

const shareFilePattern = /^root-secret-share-.*\.json$/;

function countOf(text: string | undefined, flag: string): number {
  const n = Number(required(text, flag));
  if (!Number.isInteger(n)) throw new UsageError(`--${flag} must be an integer`);
  return n;
}

export async function splitRootSecretCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { shares: { type: 'string' }, threshold: { type: 'string' }, 'out-dir': { type: 'string' }, ...rootPassphraseFlag, ...quorumRequestFlag });
  const shares = countOf(values.shares, 'shares');
  const threshold = countOf(values.threshold, 'threshold');
  try {
    checkSplitCounts(shares, threshold);
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
  const dir = path.resolve(required(values['out-dir'], 'out-dir'));
  if (fs.existsSync(dir)) {
    const existing = fs.readdirSync(dir).filter((f) => shareFilePattern.test(f));
    if (existing.length > 0) throw new PkiError('conflict', `${dir} already holds share files (${existing.join(', ')}): use an empty directory`);
  } else {
    makePrivateDir(dir);
  }
  const instance = await openInstance(dataDirOf(values.data));
  try {
    // A root in a token has a PIN, not a passphrase to split.
    const roots = instance.cas.filter((c) => c.role === 'root' && holdsKey(c) && isOfflineCa(c) && !tokenOf(c));
    if (roots.length === 0) throw new PkiError('forbidden', 'no root key held under the root passphrase: a root in a PKCS#11 token has a PIN instead, and a root made by an older version needs trellis ceremony protect-root first');
    const actor = actorOf();
    // The quorum is checked before the secret is asked for, and used once the passphrase is verified.
    const quorum = await quorumGate(instance, 'root-key.use', { ca: roots.map((r) => r.id).join(','), purpose: `split-root-secret ${threshold} of ${shares}` }, { requestId: values['quorum-request'], actor });
    const passphrase = await rootPassphraseFor(values);
    // The shares must rebuild a secret that opens the roots: a mistyped passphrase is refused before anything is written.
    const keystore = keystoreFor(instance, passphrase);
    try {
      for (const root of roots) await keystore.verifyPassphrase(keyIdOf(root));
    } catch (err) {
      if (err instanceof PkiError && err.type === 'badPassphrase') throw new PkiError('badPassphrase', `wrong root passphrase for CA "${roots.map((r) => r.id).join('", "')}"`, { cause: err });
      throw err;
    } finally {
      keystore.close();
    }
    await quorum.use();
    const parts = await splitRootSecret(passphrase, shares, threshold, instance.clock.now());
    const files = parts.map((p) => path.join(dir, `root-secret-share-${p.index}-of-${shares}.json`));
    const written: string[] = [];
    try {
      parts.forEach((p, i) => {
        writePrivateFile(files[i]!, shareFileText(p), 'wx');
        written.push(files[i]!);
      });
    } catch (err) {
      // Half a split is of no use, and each file is a share of the secret.
      for (const f of written) fs.rmSync(f, { force: true });
      throw new PkiError('conflict', `cannot write the share files in ${dir}: ${(err as Error).message}`, { cause: err });
    }
    await instance.audit.record('ceremony.root_secret_split', actor, { split: parts[0]!.split, shares, threshold, roots: roots.map((r) => r.id), files: files.map((f) => path.basename(f)) });
    const o = out(values);
    o.result({ split: parts[0]!.split, shares, threshold, files });
    o.say(`root secret split into ${shares} shares, any ${threshold} of which rebuild it (split ${parts[0]!.split}):`);
    for (const f of files) o.say(`  ${f}`);
    o.say('give each file to one custodian and delete it here; root operations take --share FILE (repeatable); the passphrase still works');
    return 0;
  } finally {
    await instance.close();
  }
}
