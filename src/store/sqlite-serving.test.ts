/**
 * A SQLite store makes its Prisma client on the first query that needs it
 * (lazy-client.ts): what a serving process runs at start, under load and on
 * its timers goes through prepared statements (sqlite-serving.ts, the hot
 * path) and leaves it unmade. What each method returns is the store
 * contract's business (store.contract.test.ts, both flavours).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, expect, test } from 'vitest';
import { chainHash } from '../audit/audit-log.js';
import { lazyClientMade } from './lazy-client.js';
import { openStoreInternals } from './open.js';
import { sqliteDate } from './sqlite-date.js';
import { testSealer } from './testing/test-sealer.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

test('the queries of a serving process leave the Prisma client unmade; the first other query makes it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-serving-'));
  dirs.push(dir);
  const { store, db, raw } = await openStoreInternals(`file:${path.join(dir, 'trellis.db')}`);
  try {
    const now = new Date();
    const at = sqliteDate(now);
    // A CA row written as `trellis init` would (through Prisma there, by hand here).
    raw!.prepare(`INSERT INTO "CertificateAuthority" ("id","name","role","certDer","subject","skiHex","keyRef","notBefore","notAfter","createdAt","updatedAt") VALUES (?,?,?,?,?,?,?,?,?,?,?)`)
      .run('issuing-1', 'Issuing', 'issuing', Buffer.from('der'), 'CN=Issuing', 'aa', '{}', at, sqliteDate(new Date(now.getTime() + 86_400_000)), at, at);

    // Start: CAs, key blobs, instance secrets, leftovers, CRLs, responder and audit signer.
    expect((await store.cas.list()).map((c) => c.id)).toEqual(['issuing-1']);
    expect(await store.cas.keyStates()).toEqual([{ id: 'issuing-1', keyState: 'active' }]);
    await store.keyBlobs.insert({ id: 'k1', algorithm: 'P-256', envelope: '{}' });
    expect((await store.keyBlobs.find('k1'))?.state).toBe('active');
    expect(await store.sealSecrets(testSealer())).toBe(0);
    expect((await store.secrets.getOrCreate('nonce', () => randomBytes(32))).length).toBe(32);
    expect(await store.acmeOrders.listProcessing(now, 10)).toEqual([]);
    expect(await store.certificates.latestHeld('issuing-1', 'ocsp-responder')).toBeNull();
    expect(await store.crls.acquireLease('issuing-1', 1, now, new Date(now.getTime() + 60_000))).toBe(true);
    const crlNumber = await store.crls.nextCrlNumber('issuing-1');
    await store.crls.insert({ caId: 'issuing-1', scope: 'full', crlNumber, baseCrlNumber: null, thisUpdate: now, nextUpdate: now, entries: 0, der: Buffer.from('crl') });
    expect((await store.crls.latestAll('issuing-1')).map((c) => c.crlNumber)).toEqual([crlNumber]);
    expect(await store.crls.prune('issuing-1', 1)).toBe(0);
    expect(await store.auditCheckpoints.latest()).toBeNull();
    // Under load: issuance, OCSP, polls, checkpoints, API token use.
    const serialHex = randomBytes(16).toString('hex');
    const intent = { issuerId: 'issuing-1', serialHex, profile: 'server', subject: 'CN=x', sans: '[]', notBefore: now, notAfter: now, lintDer: Buffer.from('tbs'), crlShard: 0, requestedVia: 'api' as const, requestedBy: 't', keyId: null, deviceId: null };
    await store.certificates.insertIntents([intent]);
    await store.certificates.completeMany({ issued: [{ issuerId: 'issuing-1', serialHex, der: Buffer.from('cert'), issuedAt: now }], failed: [] }, { drafts: [], chain: chainHash });
    expect((await store.certificates.statusOf('issuing-1', serialHex))?.status).toBe('valid');
    expect(await store.certificates.statusChangedSince(new Date(0), 100)).toEqual([]);
    await store.ocspResponses.putMany([{ issuerId: 'issuing-1', serialHex, der: Buffer.from('ocsp'), thisUpdate: now, nextUpdate: now }]);
    expect((await store.ocspResponses.get('issuing-1', serialHex))?.der).toEqual(Buffer.from('ocsp'));
    expect(await store.auditCheckpoints.addAfter(0, { eventCount: 1, headHash: 'h', at: now, body: 'b', signature: Buffer.from('s'), signerSerialHex: '01' })).toMatchObject({ eventCount: 1, body: 'b' });
    await store.tokens.touch('no-such-token', now, now);
    await store.crls.releaseLease('issuing-1', 1);
    expect(lazyClientMade(db)).toBe(false);

    // Anything else still works, through Prisma, made now.
    expect((await store.cas.findById('issuing-1'))?.name).toBe('Issuing');
    expect(lazyClientMade(db)).toBe(true);
  } finally {
    await store.close();
  }
});
