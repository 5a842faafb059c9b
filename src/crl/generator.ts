/**
 * Makes the CRL of one scope of one CA, now: draws its number, reads its
 * entries (the whole scope from the store, or a shard's previous CRL plus the
 * changes since), builds it and has the CA lint and sign it, stores it,
 * serves it, and audits `crl.published`. No timers and no leases: when to
 * make a CRL is the scheduler's job (src/crl/scheduler.ts).
 */
import { createHash } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import type { CaUrls } from '../ca/issuer.js';
import type { CertificateRepository } from '../ca/ports.js';
import type { Clock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import type { CrlExpectations } from '../lint/crl.js';
import { buildCrl, type CrlContent, type CrlSigner, type EntryPage, type RemovedEntry } from './build.js';
import type { HeldCrls } from './held.js';
import { mergeEntries, revokedListOf } from './incremental.js';
import type { CrlRecord, CrlRepository, HeldCrl } from './ports.js';
import { crlUrl, parseScope, shardScope, type CrlScope } from './scope.js';

/** A CA whose CRLs this node publishes or serves. */
export interface CrlIssuer {
  id: string;
  /** CRL shards of the certificates it issues (1 for a root). */
  shards: number;
  /** Null when its key is not unlocked on this node (an offline root): its CRLs are served, never made. */
  signer: CrlSigner | null;
  /** nextUpdate - thisUpdate for this CA; defaults to the generator's (an offline root's ARL lives longer). */
  validitySeconds?: number;
  /** Only CA certificates in scope (the root's ARL): IDP onlyContainsCACerts. */
  onlyCaCerts?: boolean;
  /** Publish a delta of the full CRL (default true; false for an offline root, whose CRLs change only in ceremonies). */
  deltas?: boolean;
}

/** The scopes a CA publishes: its shards, the full CRL, and the full CRL's delta unless it has none. */
export function scopesOf(issuer: CrlIssuer): string[] {
  const shards = Array.from({ length: issuer.shards }, (_, n) => shardScope(n));
  return issuer.deltas === false ? [...shards, 'full'] : [...shards, 'full', 'full-delta'];
}

/** What the generator needs; all parameters, no defaults from libraries. */
export interface CrlGeneratorOptions {
  crls: CrlRepository;
  certificates: CertificateRepository;
  audit: AuditLog;
  clock: Clock;
  urls: CaUrls;
  /** nextUpdate - thisUpdate of a CA that sets none. */
  validitySeconds: number;
  log?: (event: Record<string, unknown>) => void;
  /**
   * Revoked entries per store page (default 2,000): the most entry objects
   * held at once, and the longest the store blocks the event loop in one go.
   */
  pageSize?: number;
}

/** Status changes older than the base CRL by this much still go into its delta (commit lag, clock skew between nodes). */
const deltaOverlapMs = 5 * 60_000;
const defaultPageSize = 2_000;
/** Octets of one revoked entry with a reason code (serial of 16 octets), to size the buffer of a CRL whose previous DER is not held. */
const entryBytesEstimate = 42;

/**
 * The issuingDistributionPoint a scope needs (docs/crl.md, RFC 5280 §5.2.5):
 * a shard of a CA with several shards names its URL; a CA with one shard, the
 * full CRL and its delta cover every certificate and carry none, except the
 * root's ARL, which says onlyContainsCACerts.
 */
function scopeIdp(issuer: CrlIssuer, scope: CrlScope, url: string): CrlExpectations['idp'] {
  const onlyCaCerts = !!issuer.onlyCaCerts;
  if (scope.kind === 'shard' && issuer.shards > 1) return { url, onlyCaCerts };
  return onlyCaCerts ? { url: null, onlyCaCerts } : null;
}

/** Makes, stores and serves (through `held`) one CRL at a time. */
export class CrlGenerator {
  constructor(
    private readonly o: CrlGeneratorOptions,
    private readonly held: HeldCrls,
  ) {}

  /**
   * Builds, signs, stores and starts serving one CRL of a scope of `issuer`;
   * throws when it cannot (no key here, an unknown scope, no base CRL for a
   * delta, store or signing failure, a lint finding of the CA). `incremental`
   * (shards only): start from the CRL of the scope held here and read only
   * the certificates whose status changed since it from the store, instead
   * of the whole shard; without a CRL held, a complete read.
   */
  async generate(issuer: CrlIssuer, scope: string, opts: { validitySeconds?: number; incremental?: boolean } = {}): Promise<CrlRecord> {
    const caId = issuer.id;
    if (!issuer.signer) throw new PkiError('notFound', `the key of CA ${caId} is not unlocked on this node`);
    const parsed = parseScope(scope);
    if (!parsed || (parsed.kind === 'shard' && parsed.shard >= issuer.shards) || (parsed.kind === 'full-delta' && issuer.deltas === false)) throw new PkiError('malformed', `CA ${caId} has no CRL scope "${scope}"`);
    const started = performance.now();
    const now = this.o.clock.now();
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + (opts.validitySeconds ?? issuer.validitySeconds ?? this.o.validitySeconds) * 1000);

    // Step 1: draw the number before reading. Every status change committed
    // before the draw is then in this CRL, and a later change makes its node
    // draw a higher number: the highest number is never missing a change
    // that a lower one has (docs/crl.md, "several nodes").
    const crlNumber = await this.o.crls.nextCrlNumber(caId);

    // Step 2: the scope's content, streamed page by page into the encoder.
    const content: CrlContent = { crlNumber, thisUpdate, nextUpdate, ...(issuer.onlyCaCerts ? { onlyCaCerts: true } : {}) };
    let revoked: AsyncIterable<EntryPage> | Iterable<EntryPage>;
    let removed: RemovedEntry[] = [];
    let baseCrlNumber: bigint | null = null;
    const previous = this.held.get(caId, scope);
    let builtFrom: 'store' | 'previous' = 'store';
    const pageSize = this.o.pageSize ?? defaultPageSize;
    switch (parsed.kind) {
      case 'shard': {
        // RFC 5280 §5.2.5: the IDP names exactly the URL in the certificates' CDP.
        // A CA with one shard (a root) has no IDP name: its CRL covers every
        // certificate it issued, so it also serves for a certificate without
        // a CDP, like the root itself under `openssl verify -crl_check_all`.
        if (issuer.shards > 1) content.distributionPointUrl = crlUrl(this.o.urls, caId, scope);
        const merged = opts.incremental && previous ? await this.mergedPages(caId, parsed.shard, previous) : null;
        if (merged) builtFrom = 'previous';
        revoked = merged ?? this.o.certificates.revokedEntries(caId, parsed.shard, { notAfterAfter: now, pageSize });
        break;
      }
      case 'full':
        // Complete for the whole CA, so no IDP (a CRL with an IDP covers only
        // certificates whose CDP matches it, §6.3.3); the delta carries changes.
        if (issuer.deltas !== false) content.freshestUrl = crlUrl(this.o.urls, caId, 'full-delta');
        revoked = this.o.certificates.revokedEntries(caId, null, { notAfterAfter: now, pageSize });
        break;
      case 'full-delta': {
        // §5.2.4: changes since the complete CRL it names, same scope (no IDP).
        // The newest full CRL of any node, by its metadata (its DER can be 49 MB).
        const base = (await this.o.crls.latestAll(caId)).find((m) => m.scope === 'full');
        if (!base) throw new PkiError('notFound', `CA ${caId} has no full CRL yet to base a delta on`);
        baseCrlNumber = content.baseCrlNumber = base.crlNumber;
        const changes = await this.o.certificates.changedSince(caId, null, new Date(base.thisUpdate.getTime() - deltaOverlapMs));
        revoked = [changes.revoked];
        removed = changes.released.map((serialHex) => ({ serialHex, removedAt: thisUpdate }));
        break;
      }
    }

    // Step 3: build, and have the CA lint and sign the TBS. The CA lints it
    // against what the scope needs, derived here from the scope and the CA
    // (not from `content`): IDP, delta base, freshestCRL, validity; a finding
    // is audited there (crl.lint_failed) and thrown, and nothing is signed.
    // The previous CRL of the scope sizes the buffer, so the entries are written in place.
    const expect: Partial<CrlExpectations> = {
      idp: scopeIdp(issuer, parsed, crlUrl(this.o.urls, caId, scope)),
      freshestUrl: parsed.kind === 'full' && issuer.deltas !== false ? crlUrl(this.o.urls, caId, 'full-delta') : null,
      maxValiditySeconds: (nextUpdate.getTime() - thisUpdate.getTime()) / 1000,
      now,
    };
    const previousBytes = previous ? (previous.der?.length ?? previous.derBytes ?? previous.entries * entryBytesEstimate) : null;
    const built = await buildCrl(issuer.signer, content, revoked, removed, { expect, ...(previousBytes !== null ? { sizeHint: Math.ceil(previousBytes * 1.05) + 65_536 } : {}) });

    // Step 4: store, serve; the audit event carries the digest of what was published.
    const rec: CrlRecord = { caId, scope, crlNumber, baseCrlNumber, thisUpdate, nextUpdate, entries: built.entries, der: built.der };
    await this.o.crls.insert(rec);
    this.held.remember(rec);
    const ms = Math.round((performance.now() - started) * 10) / 10;
    await this.o.audit.record('crl.published', 'trellis', {
      ca: caId, scope, crlNumber: crlNumber.toString(), entries: built.entries, sha256: createHash('sha256').update(built.der).digest('hex'),
      thisUpdate: thisUpdate.toISOString(), nextUpdate: nextUpdate.toISOString(),
    });
    this.o.log?.({ level: 'info', msg: 'CRL published', ca: caId, scope, crlNumber: crlNumber.toString(), entries: built.entries, bytes: built.der.length, from: builtFrom, ms });
    return rec;
  }

  /**
   * The entries of a shard's next CRL from its previous one and the store's
   * changes since (src/crl/incremental.ts); null when the previous DER cannot
   * be walked, so the caller reads the whole shard instead.
   */
  private async mergedPages(caId: string, shard: number, previous: HeldCrl): Promise<EntryPage[] | null> {
    // A shard too large to be held with its DER is read from the store first.
    const previousDer = await this.held.derOf(previous);
    if (!previousDer) return null;
    // The same window as a delta's: a change stamped before the previous
    // thisUpdate may have committed after its number was drawn.
    const changes = await this.o.certificates.changedSince(caId, shard, new Date(previous.thisUpdate.getTime() - deltaOverlapMs));
    try {
      return mergeEntries(revokedListOf(previousDer), changes);
    } catch (err) {
      this.o.log?.({ level: 'warn', msg: 'previous CRL not reusable; reading the whole shard', ca: caId, shard, crlNumber: previous.crlNumber.toString(), error: err instanceof Error ? err.message : String(err) });
      return null;
    }
  }
}
