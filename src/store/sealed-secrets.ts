/** The secret sealer the store's repositories use once cmd binds one (see Store.sealSecrets). */
import { PkiError } from '../errors/pki-error.js';
import type { SecretSealer } from '../keys/ports.js';

/** The bound sealer, or `forbidden` naming what needed it: without the online keystore, sealed secrets are out of reach. */
export function requireSealer(sealer: () => SecretSealer | null, what: string): SecretSealer {
  const s = sealer();
  if (!s) throw new PkiError('forbidden', `${what} are stored sealed under the online passphrase: open the online keystore first`);
  return s;
}
