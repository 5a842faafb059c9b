/**
 * Values derived from an account key (its KeyObject, its SPKI), kept per
 * account: importing a JWK costs about as much as checking a P-256
 * signature, and the same accounts sign request after request. An entry is
 * recomputed when the account's key changed (rollover), and the oldest entry
 * goes when the cache is full.
 */
import type { AcmeAccountRecord } from './ports.js';

export class AccountKeyCache<V> {
  private readonly entries = new Map<string, { thumbprint: string; value: V }>();

  constructor(
    private readonly derive: (account: AcmeAccountRecord) => V,
    private readonly max = 10_000,
  ) {}

  get(account: AcmeAccountRecord): V {
    const hit = this.entries.get(account.id);
    if (hit?.thumbprint === account.thumbprint) return hit.value;
    const value = this.derive(account);
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(account.id, { thumbprint: account.thumbprint, value });
    return value;
  }
}
