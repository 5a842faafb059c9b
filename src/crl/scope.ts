/**
 * CRL scopes of one CA and where each is published (docs/crl.md):
 *
 *   scope        file             what it lists                              IDP
 *   shard-<n>    <n>.crl          revoked certificates whose CDP names it    critical, fullName = its URL
 *   full         full.crl         every revoked certificate of the CA        none (complete for the CA)
 *   full-delta   full-delta.crl   changes since the `full` CRL it names      none, like its base
 *
 * under `{base}/crl/{caId}/`. Shard URLs are the ones `CaUrls.crl` writes into
 * issued certificates, so a shard's IDP matches its certificates' CDP byte for
 * byte (RFC 5280 §6.3.3 (b)(2)).
 */
import type { CaUrls } from '../ca/issuer.js';
import { PkiError } from '../errors/pki-error.js';

/** A scope name as stored in `CrlRecord.scope`. */
export type CrlScopeName = `shard-${number}` | 'full' | 'full-delta';

/** A scope, parsed. */
export type CrlScope = { kind: 'shard'; shard: number } | { kind: 'full' } | { kind: 'full-delta' };

/** Largest shard number a URL may name (config allows up to 4096 shards). */
const maxShard = 4095;

/** The scope name of shard `n`. */
export const shardScope = (n: number): CrlScopeName => `shard-${n}`;

/** Parses a stored scope name; null for anything else. */
export function parseScope(name: string): CrlScope | null {
  if (name === 'full' || name === 'full-delta') return { kind: name };
  const m = /^shard-(0|[1-9]\d{0,3})$/.exec(name);
  return m && Number(m[1]) <= maxShard ? { kind: 'shard', shard: Number(m[1]) } : null;
}

/** The file name a scope is published under (`3.crl`, `full.crl`, `full-delta.crl`). */
export function fileOfScope(name: string): string {
  const s = parseScope(name);
  if (!s) throw new PkiError('malformed', `unknown CRL scope "${name}"`);
  return s.kind === 'shard' ? `${s.shard}.crl` : `${s.kind}.crl`;
}

/** The scope a published file name stands for; null when it names none (the HTTP 404 path). */
export function scopeOfFile(file: string): CrlScopeName | null {
  const m = /^(0|[1-9]\d{0,3}|full|full-delta)\.crl$/.exec(file);
  if (!m) return null;
  if (m[1] === 'full' || m[1] === 'full-delta') return m[1];
  return Number(m[1]) <= maxShard ? shardScope(Number(m[1])) : null;
}

/** The URL of a scope's CRL, derived from the shard URL layout of `CaUrls.crl`. */
export function crlUrl(urls: CaUrls, caId: string, scope: string): string {
  const shard0 = urls.crl(caId, 0);
  if (!shard0.endsWith('/0.crl')) throw new PkiError('invalidConfig', `CRL URLs must end in /<shard>.crl, got ${shard0}`);
  const s = parseScope(scope);
  if (!s) throw new PkiError('malformed', `unknown CRL scope "${scope}"`);
  return s.kind === 'shard' ? urls.crl(caId, s.shard) : `${shard0.slice(0, -'0.crl'.length)}${s.kind}.crl`;
}
