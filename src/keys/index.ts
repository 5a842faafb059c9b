/** The CA key layer: signing keys, the software keystore, and what each key algorithm means in X.509. */
export { keyAlgorithms, type KeyAlgorithm, type Keystore, type SigningKey } from './signing-key.js';
export type { KeyBlobRecord, KeyBlobRepository, SecretSealer } from './ports.js';
export { SoftwareSecretSealer, secretSealingKeyId } from './secret-sealer.js';
export { describePublicKey, generatePrivateKey, hashFor, keyAlgorithmOfPublicKey, signatureAlgorithmOf, type PublicKeyDescription, type SignatureAlgorithm } from './algorithms.js';
export { NodeSigningKey } from './node-signing-key.js';
export { defaultScrypt, type ScryptParams } from './envelope.js';
export { SoftwareKeystore, type SoftwareKeystoreOptions } from './software-keystore.js';
