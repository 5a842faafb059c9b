/** Wiring of the CRL publisher: which CAs it signs for on this node. */
import { randomInt } from 'node:crypto';
import type { Issuer } from '../ca/issuer.js';
import { makeArl, rootCrlIssuer } from '../crl/arl.js';
import { CrlPublisher } from '../crl/crl-publisher.js';
import { leaseHolderLimit } from '../crl/ports.js';
import type { Instance } from './instance.js';

/**
 * A publisher for every CA of the instance; `signers` are the CAs whose keys
 * are unlocked here (the issuing CAs on a server; the root only in a ceremony).
 * `lease` (servers): only the process holding the database lease of a CA
 * runs its schedule, so `serve --workers N` and several nodes publish each
 * CRL once; the lease lasts half of crlSeconds (at least 15 s) unless renewed.
 */
export function crlPublisher(instance: Instance, signers: Issuer[], log?: (e: Record<string, unknown>) => void, opts: { lease?: boolean } = {}): CrlPublisher {
  const publisher = new CrlPublisher({
    crls: instance.store.crls,
    certificates: instance.store.certificates,
    audit: instance.audit,
    clock: instance.clock,
    urls: instance.urls,
    validitySeconds: instance.config.revocation.crlValiditySeconds,
    delaySeconds: instance.config.revocation.crlSeconds,
    heldEntries: instance.config.revocation.crlHeldEntries,
    heldBytes: instance.config.revocation.crlHeldBytes,
    ...(log ? { log } : {}),
    ...(opts.lease ? { lease: { holder: randomInt(1, leaseHolderLimit), seconds: Math.max(15, Math.ceil(instance.config.revocation.crlSeconds / 2)) } } : {}),
  });
  for (const ca of instance.cas) {
    const unlocked = signers.find((s) => s.id === ca.id);
    const signer = unlocked ? instance.authority.crlSigner(unlocked.id) : null;
    if (ca.role === 'root') publisher.addIssuer(rootCrlIssuer(ca.id, signer));
    else publisher.addIssuer({ id: ca.id, shards: instance.config.crlShards, signer });
  }
  return publisher;
}

/** The root's CRL (ARL, a year): the issuing-CA certificates it revoked. Made when the root key is unlocked, in a ceremony. */
export async function publishArl(instance: Instance, root: Issuer): Promise<void> {
  await makeArl(crlPublisher(instance, [root]), root, instance.authority.crlSigner(root.id));
}
