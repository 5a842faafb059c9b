/**
 * Wiring of sealed secrets: a keystore opens the instance's secret-sealing
 * key, and the store seals EAB HMAC keys and the ACME nonce key with it
 * (keys/secret-sealer.ts has the format). The keystore is the online one, or
 * the PKCS#11 token of the issuing CAs on an instance whose trellis.json
 * names one (unlockIssuers chooses; docs/hsm.md). Only cmd hands a
 * keys object to the store.
 */
import type { Keystore } from '../keys/signing-key.js';
import type { Instance } from './instance.js';

/**
 * Binds the keystore's secret sealer to the instance's store, before a
 * software keystore forgets its passphrase: the sealer keeps the opened sealing
 * key, so it works for the life of the process. Rows an older version stored
 * in clear are sealed now, with an audit event saying how many.
 */
export async function sealSecretsWith(instance: Instance, keystore: Keystore): Promise<void> {
  const resealed = await instance.store.sealSecrets(await keystore.openSecretSealer());
  if (resealed > 0) await instance.audit.record('store.secrets_sealed', 'trellis', { rows: resealed });
}
