/**
 * Closing an instance lets every request the CA already holds finish: a
 * server stopping while clients that gave up still have requests in flight
 * leaves no intent pending (each would be a serial used for nothing until the
 * reconciler fails it).
 */
import { expect, test } from 'vitest';
import { openInstance } from '../../src/cmd/instance.js';
import { makeCsr } from '../helpers/openssl.js';
import { testPki } from '../helpers/test-pki.js';

test('instance.close() waits for the requests the CA already holds; none is left pending', async () => {
  const pki = await testPki();
  try {
    const { csrPem } = await makeCsr(pki.dir, 'inflight', '/CN=inflight.example.test', { sans: 'DNS:inflight.example.test' });
    const requests = Array.from({ length: 40 }, () => pki.ra.requestCertificate({ profile: 'server', csr: csrPem, requestedVia: 'api', requestedBy: 'test' }));
    // Close at once, without awaiting the requests (their clients are gone).
    await pki.instance.close();
    const outcomes = await Promise.allSettled(requests);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(40);
    const reopened = await openInstance(pki.dataDir);
    try {
      expect(await reopened.store.certificates.count({ status: 'pending' })).toBe(0);
      expect(await reopened.store.certificates.count({ issuerId: 'issuing-1', status: 'valid' })).toBeGreaterThanOrEqual(40);
    } finally {
      await reopened.close();
    }
  } finally {
    await pki.close();
  }
});
