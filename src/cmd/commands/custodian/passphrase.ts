/** A custodian's own passphrase: TRELLIS_CUSTODIAN_PASSPHRASE, --passphrase-file FILE, or a prompt without echo. */
import { readPassphrase, ttyPrompt } from '../../../config/passphrase.js';

export function custodianPassphraseFor(flags: { 'passphrase-file'?: string | undefined }, name: string, opts: { confirm?: boolean; forNew?: boolean } = {}): Promise<string> {
  return readPassphrase(
    {
      env: process.env.TRELLIS_CUSTODIAN_PASSPHRASE,
      file: flags['passphrase-file'],
      prompt: process.stdin.isTTY ? ttyPrompt : undefined,
      label: `custodian "${name}"`,
      envName: 'TRELLIS_CUSTODIAN_PASSPHRASE',
      fileFlag: 'passphrase-file',
    },
    opts,
  );
}
