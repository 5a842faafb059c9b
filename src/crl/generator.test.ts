/**
 * CrlGenerator on a real SQLite store: one CRL of a scope, now. Each CRL is
 * checked by OpenSSL against the CA certificate; the signer is the CA's
 * stand-in, which lints before it signs (src/crl/testing/signer.ts).
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CertificateRepository } from '../ca/ports.js';
import { crlShardOf } from '../ca/serial.js';
import { refusal } from '../../test/helpers/errors.js';
import { CrlGenerator, scopesOf, type CrlIssuer } from './generator.js';
import { HeldCrls } from './held.js';
import { revokedListOf } from './incremental.js';
import { crlUrl } from './scope.js';
import { crlTestStore, repeatingPages, testUrls, type CrlTestStore } from './testing/store.js';

const start = new Date('2026-05-01T00:00:00Z');
const inAYear = new Date('2027-05-01T00:00:00Z');
const shards = 4;
let t: CrlTestStore;

beforeAll(async () => {
  t = await crlTestStore(start);
});
afterAll(() => t?.close());

/** A generator (with its own HeldCrls, as one node) over the test store; pages of 2 entries so reads span pages. */
function node(o: { certificates?: CertificateRepository } = {}) {
  const logs: Record<string, unknown>[] = [];
  const held = new HeldCrls(t.store.crls);
  const generator = new CrlGenerator({ crls: t.store.crls, certificates: o.certificates ?? t.store.certificates, audit: t.audit, clock: t.clock, urls: testUrls, validitySeconds: 86_400, log: (e) => logs.push(e), pageSize: 2 }, held);
  return { held, generator, logs };
}

/** A CA row of its own per test, and its CrlIssuer. */
async function ca(id: string, over: Partial<CrlIssuer> = {}): Promise<CrlIssuer & { signer: ReturnType<CrlTestStore['signer']> }> {
  await t.addCa(id);
  return { id, shards, signer: t.signer(), ...over } as CrlIssuer & { signer: ReturnType<CrlTestStore['signer']> };
}

const shardOf = (serialHex: string) => `shard-${crlShardOf(serialHex, shards)}`;
const upper = (serialHex: string) => serialHex.toUpperCase();

describe('CrlGenerator', () => {
  test('each scope, verified by OpenSSL: a shard lists its own certificates under its URL, the full CRL every one and names its delta', async () => {
    const issuer = await ca('gen-scopes');
    const revoked: string[] = [];
    for (let i = 0; i < 8; i++) revoked.push(await t.issue(issuer.id, shards, inAYear));
    for (const s of revoked) await t.revoke(issuer.id, s, 1);
    const valid = await t.issue(issuer.id, shards, inAYear);
    const expired = await t.issue(issuer.id, shards, new Date(start.getTime() - 1000));
    await t.revoke(issuer.id, expired, 1, new Date(start.getTime() - 5000));
    const { generator } = node();

    const scope = shardOf(revoked[0]!);
    const shard = await generator.generate(issuer, scope);
    const shardText = await t.opensslText(shard.der);
    const inShard = revoked.filter((s) => shardOf(s) === scope);
    expect(shard.entries).toBe(inShard.length);
    for (const s of revoked) expect(shardText.includes(`Serial Number: ${upper(s)}`)).toBe(inShard.includes(s));
    expect(shardText).toMatch(new RegExp(`Issuing Distribution Point: critical\\s+Full Name:\\s+URI:${crlUrl(testUrls, issuer.id, scope)}`));

    const full = await generator.generate(issuer, 'full');
    const fullText = await t.opensslText(full.der);
    expect(full.entries).toBe(8);
    for (const s of revoked) expect(fullText).toContain(`Serial Number: ${upper(s)}`);
    for (const s of [valid, expired]) expect(fullText).not.toContain(upper(s));
    expect(fullText).not.toMatch(/Issuing Distribution Point/);
    expect(fullText).toMatch(new RegExp(`Freshest CRL: \\n\\s+Full Name:\\s+URI:${crlUrl(testUrls, issuer.id, 'full-delta')}`));
  });

  test('the delta names its base and lists what changed since it: new revocations, removeFromCRL for lifted holds', async () => {
    const issuer = await ca('gen-delta');
    const held = await t.issue(issuer.id, shards, inAYear);
    await t.revoke(issuer.id, held, 6);
    const { generator } = node();
    t.clock.advance(600_000); // past the overlap window of the base
    const base = await generator.generate(issuer, 'full');
    t.clock.advance(600_000);
    const later = await t.issue(issuer.id, shards, inAYear);
    await t.revoke(issuer.id, later, 1);
    await t.release(issuer.id, held);
    const delta = await generator.generate(issuer, 'full-delta');
    expect(delta.baseCrlNumber).toBe(base.crlNumber);
    expect(delta.entries).toBe(2);
    const text = await t.opensslText(delta.der);
    expect(text).toMatch(new RegExp(`Delta CRL Indicator: critical\\s+${base.crlNumber}\\b`));
    expect(text).toMatch(new RegExp(`Serial Number: ${upper(later)}[\\s\\S]*?Key Compromise`));
    expect(text).toMatch(new RegExp(`Serial Number: ${upper(held)}[\\s\\S]*?Remove From CRL`));
  });

  test('stored, served and audited: the newest row of its scope, held for serving, crl.published with the SHA-256 of the DER; numbers from the database sequence', async () => {
    const issuer = await ca('gen-stored', { validitySeconds: 3600 });
    const { generator, held } = node();
    const made = [await generator.generate(issuer, 'shard-0'), await generator.generate(issuer, 'full'), await generator.generate(issuer, 'shard-0', { validitySeconds: 600 })];
    expect(made.map((r) => r.crlNumber)).toEqual([made[0]!.crlNumber, made[0]!.crlNumber + 1n, made[0]!.crlNumber + 2n]);
    const rec = made[2]!;
    expect(await t.store.crls.latest(issuer.id, 'shard-0')).toEqual(rec);
    expect(held.get(issuer.id, 'shard-0')).toBe(rec);
    expect(held.get(issuer.id, 'full')).toBe(made[1]);
    // The CA's validity unless the call says less; thisUpdate in whole seconds.
    expect((made[1]!.nextUpdate.getTime() - made[1]!.thisUpdate.getTime()) / 1000).toBe(3600);
    expect((rec.nextUpdate.getTime() - rec.thisUpdate.getTime()) / 1000).toBe(600);
    expect(rec.thisUpdate.getTime() % 1000).toBe(0);
    const published = (await t.events('crl.published')).filter((e) => e.ca === issuer.id);
    expect(published.map((e) => [e.scope, e.crlNumber, e.sha256])).toEqual(made.map((r) => [r.scope, r.crlNumber.toString(), createHash('sha256').update(r.der).digest('hex')]));
    expect(issuer.signer.signed).toHaveLength(3);
  });

  test('incremental: a shard held here is rebuilt from its previous CRL plus the changes since, the same entries as a complete read', async () => {
    const issuer = await ca('gen-incremental');
    const { generator, logs } = node();
    const first = await t.issue(issuer.id, shards, inAYear);
    const scope = shardOf(first);
    const inScope: string[] = [first];
    while (inScope.length < 5) {
      const s = await t.issue(issuer.id, shards, inAYear);
      if (shardOf(s) === scope) inScope.push(s);
    }
    for (const s of inScope.slice(0, 3)) await t.revoke(issuer.id, s, 6);
    // Nothing held yet: an incremental request reads the whole shard.
    await generator.generate(issuer, scope, { incremental: true });
    t.clock.advance(600_000);
    await t.revoke(issuer.id, inScope[3]!, 1);
    await t.release(issuer.id, inScope[0]!);
    const merged = await generator.generate(issuer, scope, { incremental: true });
    const complete = await generator.generate(issuer, scope);
    expect(logs.filter((l) => l.msg === 'CRL published').map((l) => l.from)).toEqual(['store', 'previous', 'store']);
    expect(merged.entries).toBe(3);
    expect(revokedListOf(merged.der)).toEqual(revokedListOf(complete.der));
    await t.opensslText(merged.der);
  });

  test("the CA's lint refuses a bad TBS (a store that lists a serial twice): lintFailed, nothing signed, stored, served or audited by the generator", async () => {
    const issuer = await ca('gen-lint');
    const s = await t.issue(issuer.id, shards, inAYear);
    await t.revoke(issuer.id, s, 1);
    const { generator, held } = node({ certificates: repeatingPages(t.store.certificates) });
    const err = await refusal(generator.generate(issuer, 'full'));
    expect(err.type).toBe('lintFailed');
    expect(err.message).toMatch(/e_crl_serial_duplicate \(serial [0-9a-f]+ appears twice\)/);
    expect(issuer.signer.signed).toHaveLength(0);
    expect(await t.store.crls.latest(issuer.id, 'full')).toBeNull();
    expect(held.get(issuer.id, 'full')).toBeUndefined();
    // The CA audits crl.lint_failed; the generator adds nothing of its own.
    const mine = async (type: string) => (await t.events(type)).filter((e) => e.ca === issuer.id);
    expect([...(await mine('crl.published')), ...(await mine('crl.lint_failed')), ...(await mine('crl.generation_failed'))]).toEqual([]);
  });

  test('refuses: a CA without its key here, a shard beyond the CA, an unknown scope, a delta for a CA without deltas or before any full CRL', async () => {
    const issuer = await ca('gen-refuse');
    const { generator } = node();
    expect((await refusal(generator.generate({ ...issuer, signer: null }, 'full'))).type).toBe('notFound');
    expect((await refusal(generator.generate(issuer, 'shard-4'))).type).toBe('malformed');
    expect((await refusal(generator.generate(issuer, 'delta'))).type).toBe('malformed');
    expect((await refusal(generator.generate({ ...issuer, deltas: false }, 'full-delta'))).type).toBe('malformed');
    expect((await refusal(generator.generate(issuer, 'full-delta'))).type).toBe('notFound');
    expect(await t.store.crls.latestAll(issuer.id)).toEqual([]);
    expect(scopesOf({ ...issuer, deltas: false })).toEqual(['shard-0', 'shard-1', 'shard-2', 'shard-3', 'full']);
  });

  test('two nodes on one database: numbers never collide, and each serves the newest it has seen, never an older one', async () => {
    const issuer = await ca('gen-nodes');
    const a = node();
    const b = node();
    const made = await Promise.all([a.generator.generate(issuer, 'shard-1'), b.generator.generate(issuer, 'shard-1'), a.generator.generate(issuer, 'full'), b.generator.generate(issuer, 'full')]);
    expect(new Set(made.map((r) => r.crlNumber)).size).toBe(4);
    await a.held.loadNewer(issuer.id);
    await b.held.loadNewer(issuer.id);
    for (const scope of ['shard-1', 'full']) {
      const newest = (await t.store.crls.latest(issuer.id, scope))!.crlNumber;
      expect(a.held.get(issuer.id, scope)!.crlNumber).toBe(newest);
      expect(b.held.get(issuer.id, scope)!.crlNumber).toBe(newest);
    }
    // An older CRL offered later does not replace the newer one held.
    const older = made.filter((r) => r.scope === 'full').sort((x, y) => (x.crlNumber < y.crlNumber ? -1 : 1))[0]!;
    a.held.remember(older);
    expect(a.held.get(issuer.id, 'full')!.crlNumber).toBeGreaterThan(older.crlNumber);
  });
});
