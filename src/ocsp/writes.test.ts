import { describe, expect, test } from 'vitest';
import { Invalidations } from './invalidations.js';
import type { StoredOcspResponse } from './ports.js';
import { memResponses } from './testing/responder-pki.js';
import { PendingWrites } from './writes.js';

const row = (serialHex: string): StoredOcspResponse => ({ issuerId: 'issuing-1', serialHex, der: Buffer.from(serialHex), thisUpdate: new Date(0), nextUpdate: new Date(86_400_000) });

function setup() {
  const responses = memResponses();
  const changes = new Invalidations();
  const logs: Record<string, unknown>[] = [];
  const writes = new PendingWrites({ responses, log: (e) => logs.push(e) }, changes);
  return { responses, changes, writes, logs };
}

describe('PendingWrites', () => {
  test('queued rows are written in one batch on flush', async () => {
    const { responses, changes, writes } = setup();
    writes.enqueue('issuing-1:01', row('01'), changes.mark());
    writes.enqueue('issuing-1:02', row('02'), changes.mark());
    expect(writes.size).toBe(2);
    expect(responses.rows.size).toBe(0);
    await writes.flush();
    expect([...responses.rows.keys()]).toEqual(['issuing-1:01', 'issuing-1:02']);
    expect(writes.size).toBe(0);
  });

  test('256 pending rows are written without waiting for the timer', async () => {
    const { responses, changes, writes } = setup();
    for (let i = 0; i < 256; i++) writes.enqueue(`issuing-1:${i}`, row(String(i)), changes.mark());
    expect(writes.size).toBe(0);
    await writes.flush(); // the batch already under way
    expect(responses.rows.size).toBe(256);
  });

  test('a row whose certificate changed after its load began is never written; one dropped or cleared neither', async () => {
    const { responses, changes, writes } = setup();
    const start = changes.mark();
    writes.enqueue('issuing-1:01', row('01'), start);
    writes.enqueue('issuing-1:02', row('02'), start);
    writes.enqueue('issuing-1:03', row('03'), start);
    changes.note('issuing-1:01', 0);
    writes.drop('issuing-1:02');
    await writes.flush();
    expect([...responses.rows.keys()]).toEqual(['issuing-1:03']);
    writes.enqueue('issuing-1:04', row('04'), changes.mark());
    writes.clear();
    await writes.flush();
    expect(responses.rows.size).toBe(1);
  });

  test('close writes what is pending and accepts nothing more', async () => {
    const { responses, changes, writes } = setup();
    writes.enqueue('issuing-1:01', row('01'), changes.mark());
    await writes.close();
    writes.enqueue('issuing-1:02', row('02'), changes.mark());
    expect(writes.size).toBe(0);
    expect([...responses.rows.keys()]).toEqual(['issuing-1:01']);
  });

  test('a database that refuses the batch: logged, not thrown (the rows are signed again on the next miss)', async () => {
    const { responses, changes, writes, logs } = setup();
    responses.putMany = async () => {
      throw new Error('database is read-only');
    };
    writes.enqueue('issuing-1:01', row('01'), changes.mark());
    await writes.flush();
    expect(logs).toEqual([expect.objectContaining({ level: 'warn', count: 1, error: 'Error: database is read-only' })]);
  });
});
