/**
 * Checkpoint storage and the checkpointer's schedule on each database
 * flavour: windows tile the log even when several processes sign at once,
 * and nothing is signed over a log that does not extend the last checkpoint.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { afterEach, describe, expect, test } from 'vitest';
import { AuditLog, genesisHash } from '../audit/audit-log.js';
import { parseCheckpoint } from '../audit/checkpoint.js';
import { AuditCheckpointer, type CheckpointSigner } from '../audit/checkpointer.js';
import { fixedClock } from '../clock/clock.js';
import { openStoreInternals, type Store } from './open.js';
import { contractFlavours, type FreshDatabase } from './testing/flavours.js';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signer: CheckpointSigner = {
  serialHex: '0a',
  certDer: Buffer.alloc(0),
  sign: async (data) => sign('sha256', data, { key: privateKey, dsaEncoding: 'der' }),
};

describe.each(contractFlavours('audit checkpoint contract'))('audit checkpoints: $name', (flavour) => {
  let db: FreshDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await db?.drop();
    store = undefined;
    db = undefined;
  });

  async function setup(events: number) {
    db = await flavour.fresh();
    const opened = await openStoreInternals(db.url);
    store = opened.store;
    const clock = fixedClock(new Date('2030-01-01T00:00:00.000Z'));
    const audit = new AuditLog(store.audit, clock);
    const add = async (n: number) => {
      for (let i = 0; i < n; i++) await audit.record('test.event', 'test', { i });
    };
    await add(events);
    const checkpointer = (everyEvents = 5, everySeconds = 300) => new AuditCheckpointer({ events: store!.audit, checkpoints: store!.auditCheckpoints, signer, clock, everyEvents, everySeconds });
    return { store, prisma: opened.db, clock, add, checkpointer };
  }

  const windows = async (s: Store) => (await s.auditCheckpoints.page(null, 100)).map((c) => [parseCheckpoint(c.body).base, c.eventCount]);

  test('checkpoint() covers the log in windows of at most everyEvents, each on top of the last', async () => {
    const { store, checkpointer } = await setup(12);
    const cp = await checkpointer().checkpoint();
    expect(cp).toMatchObject({ eventCount: 12, signerSerialHex: '0a' });
    expect(await windows(store)).toEqual([[0, 5], [5, 10], [10, 12]]);
    const [first] = await store.auditCheckpoints.page(null, 1);
    expect(parseCheckpoint(first!.body)).toMatchObject({ base: 0, baseHash: genesisHash, events: 5, head: first!.headHash });
    expect(parseCheckpoint(cp!.body).digests).toHaveLength(2);
    // Nothing new: the newest checkpoint again, nothing signed.
    expect((await checkpointer().checkpoint())?.id).toBe(cp!.id);
    expect(await windows(store)).toHaveLength(3);
  });

  test('tick() signs when everyEvents are uncovered or the newest checkpoint is old, and only when the log grew', async () => {
    const { store, clock, add, checkpointer } = await setup(3);
    const c = checkpointer(5, 300);
    expect(await c.tick()).toMatchObject({ eventCount: 3 }); // the first one at once
    await add(2);
    expect(await c.tick()).toBeNull(); // 2 of 5, 0 s old
    await add(3);
    expect(await c.tick()).toMatchObject({ eventCount: 8 }); // 5 uncovered
    await add(1);
    clock.advance(299_000);
    expect(await c.tick()).toBeNull();
    clock.advance(1_000);
    expect(await c.tick()).toMatchObject({ eventCount: 9 }); // 300 s old and grown
    clock.advance(600_000);
    expect(await c.tick()).toBeNull(); // old, but nothing new
    expect(await windows(store)).toEqual([[0, 3], [3, 8], [8, 9]]);
  });

  test('several checkpointers at once store one checkpoint per window', async () => {
    const { store, checkpointer } = await setup(23);
    await Promise.all([checkpointer().checkpoint(), checkpointer().checkpoint(), checkpointer().checkpoint()]);
    expect(await windows(store)).toEqual([[0, 5], [5, 10], [10, 15], [15, 20], [20, 23]]);
  });

  test('addAfter refuses a checkpoint that is not on top of the newest', async () => {
    const { store, checkpointer } = await setup(3);
    const cp = (await checkpointer().checkpoint())!;
    const { id: _id, ...row } = cp;
    expect(await store.auditCheckpoints.addAfter(0, { ...row, eventCount: 4 })).toBeNull();
    const again = await store.auditCheckpoints.addAfter(3, { ...row, eventCount: 4 });
    expect(again).toMatchObject({ eventCount: 4, signature: cp.signature, at: cp.at });
    expect(await store.auditCheckpoints.latest()).toMatchObject({ id: again!.id });
    expect(await store.auditCheckpoints.findById(cp.id)).toMatchObject({ body: cp.body });
  });

  test('nothing is signed over a log edited since the newest checkpoint, or cut short', async () => {
    const { store, prisma, add, checkpointer } = await setup(4);
    await checkpointer().checkpoint();
    await add(2);
    await prisma.auditEvent.update({ where: { seq: 5 }, data: { data: '{"forged":true}' } });
    await expect(checkpointer().checkpoint()).rejects.toThrow(/does not extend the newest checkpoint at event 5; not signing/);
    await prisma.auditEvent.deleteMany({ where: { seq: { gte: 4 } } });
    await expect(checkpointer().checkpoint()).rejects.toThrow(/ends at event 3, but the newest checkpoint covers 4 events/);
    expect(await windows(store)).toEqual([[0, 4]]);
  });
});
