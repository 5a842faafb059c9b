import { describe, expect, test } from 'vitest';
import { checkReadiness, type ReadinessSources } from './readiness.js';

const now = new Date('2026-03-01T12:00:00Z');
const at = (seconds: number) => new Date(now.getTime() + seconds * 1000);

/** Sources of a process where everything is in order; `over` breaks one part. */
function sources(over: Partial<ReadinessSources> = {}): ReadinessSources {
  return {
    now: () => now,
    serving: () => true,
    keyStates: async () => [
      { id: 'root', keyState: 'active' },
      { id: 'issuing-1', keyState: 'active' },
    ],
    issuers: () => [{ id: 'issuing-1' }],
    crls: () => [
      { caId: 'issuing-1', scope: 'shard-0', nextUpdate: at(3600) },
      { caId: 'issuing-1', scope: 'full', nextUpdate: at(3600) },
    ],
    responders: () => [{ caId: 'issuing-1', notBefore: at(-3600), notAfter: at(86_400) }],
    ...over,
  };
}

describe('checkReadiness', () => {
  test('ready when every check passes', async () => {
    expect(await checkReadiness(sources())).toEqual({ ready: true, failed: [] });
  });

  test.each<[string, Partial<ReadinessSources>, { check: string; reason: string }[]]>([
    ['starting or stopping', { serving: () => false }, [{ check: 'serving', reason: 'the server is starting or shutting down' }]],
    [
      'the held issuing CA is suspended',
      { keyStates: async () => [{ id: 'issuing-1', keyState: 'suspended' }] },
      [{ check: 'keys', reason: 'no issuing CA held here has an active key (held: issuing-1)' }],
    ],
    ['no issuing CA unlocked', { issuers: () => [] }, [{ check: 'keys', reason: 'no issuing CA key is unlocked' }]],
    [
      'a CRL past its nextUpdate (at the very second too)',
      { crls: () => [{ caId: 'issuing-1', scope: 'shard-0', nextUpdate: at(0) }, { caId: 'issuing-1', scope: 'full', nextUpdate: at(1) }] },
      [{ check: 'crls', reason: 'CRL past its nextUpdate: issuing-1/shard-0 (2026-03-01T12:00:00.000Z)' }],
    ],
    [
      'an expired responder certificate',
      { responders: () => [{ caId: 'issuing-1', notBefore: at(-86_400), notAfter: at(-1) }] },
      [{ check: 'ocsp', reason: 'OCSP responder certificate outside its validity: issuing-1 (2026-02-28T12:00:00.000Z to 2026-03-01T11:59:59.000Z)' }],
    ],
    [
      'a responder certificate not yet valid',
      { responders: () => [{ caId: 'issuing-1', notBefore: at(60), notAfter: at(86_400) }] },
      [{ check: 'ocsp', reason: 'OCSP responder certificate outside its validity: issuing-1 (2026-03-01T12:01:00.000Z to 2026-03-02T12:00:00.000Z)' }],
    ],
    ['no responder at all', { responders: () => [] }, [{ check: 'ocsp', reason: 'no OCSP responder certificate' }]],
  ])('not ready: %s', async (_name, over, failed) => {
    expect(await checkReadiness(sources(over))).toEqual({ ready: false, failed });
  });

  test('a failing database query: the reason carries no detail of the error (the log has it)', async () => {
    const logs: Record<string, unknown>[] = [];
    const r = await checkReadiness(sources({ keyStates: () => Promise.reject(new Error('connect ECONNREFUSED db.internal:5432')), log: (e) => logs.push(e) }));
    expect(r).toEqual({
      ready: false,
      failed: [
        { check: 'database', reason: 'the database query failed' },
        { check: 'keys', reason: 'key states unknown: the database did not answer' },
      ],
    });
    expect(logs).toEqual([{ level: 'error', msg: 'readiness: database query failed', error: 'Error: connect ECONNREFUSED db.internal:5432' }]);
  });

  test('the failure logged while a request is served names its id', async () => {
    const logs: Record<string, unknown>[] = [];
    await checkReadiness(sources({ keyStates: () => Promise.reject(new Error('down')), log: (e) => logs.push(e) }), 'r-1');
    expect(logs).toEqual([{ level: 'error', msg: 'readiness: database query failed', reqId: 'r-1', error: 'Error: down' }]);
  });

  test('a database that does not answer in time', async () => {
    const r = await checkReadiness(sources({ keyStates: () => new Promise(() => {}), databaseTimeoutMs: 20 }));
    expect(r.failed[0]).toEqual({ check: 'database', reason: 'the database did not answer within 20 ms' });
  });

  test('every failure at once, in a fixed order', async () => {
    const r = await checkReadiness(sources({ serving: () => false, issuers: () => [], crls: () => [{ caId: 'c', scope: 'shard-0', nextUpdate: at(-1) }], responders: () => [] }));
    expect(r.failed.map((f) => f.check)).toEqual(['serving', 'keys', 'crls', 'ocsp']);
  });
});
