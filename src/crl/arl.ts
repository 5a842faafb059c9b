/**
 * The root CA's CRL (ARL, RFC 5280 §5: a CRL whose scope is CA certificates).
 * The root is offline, so its CRL is made in a ceremony, while its key is
 * unlocked, and served by every node until the next ceremony.
 */
import type { Issuer } from '../ca/issuer.js';
import { PkiError } from '../errors/pki-error.js';
import type { CrlSigner } from './build.js';
import type { CrlPublisher } from './crl-publisher.js';
import type { CrlIssuer } from './generator.js';
import type { CrlRecord } from './ports.js';

/**
 * Default lifetime of an ARL: a year, the longest CA/B Forum BR §4.9.7 allows
 * for the CRL of subordinate CA certificates. Make a new one well before.
 */
export const arlValiditySeconds = 365 * 86_400;

/**
 * The CrlIssuer view of a root: one shard (the URL issuing-CA certificates
 * carry), only CA certificates in scope (IDP onlyContainsCACerts), no delta,
 * a long validity. `signer` null: the root's key is not here, its ARL is only served.
 */
export function rootCrlIssuer(rootId: string, signer: CrlSigner | null, validitySeconds = arlValiditySeconds): CrlIssuer {
  return { id: rootId, shards: 1, signer, validitySeconds, onlyCaCerts: true, deltas: false };
}

/**
 * Makes the root's ARL during a ceremony: `0.crl` (named in the CRL
 * distribution point of every issuing-CA certificate) and `full.crl`, listing
 * the issuing-CA certificates the root revoked. Stored like every CRL, so
 * every node serves it. Throws when it cannot be made.
 */
export async function makeArl(publisher: CrlPublisher, root: Pick<Issuer, 'id' | 'role'>, signer: CrlSigner, opts: { validitySeconds?: number } = {}): Promise<CrlRecord[]> {
  if (root.role !== 'root') throw new PkiError('invalidConfig', `CA ${root.id} is not a root; its CRLs are kept current by the publisher`);
  publisher.addIssuer(rootCrlIssuer(root.id, signer, opts.validitySeconds));
  return [await publisher.generate(root.id, 'shard-0'), await publisher.generate(root.id, 'full')];
}
