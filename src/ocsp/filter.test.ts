import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { tempDir } from '../../test/helpers/openssl.js';
import { RequestFilter } from './filter.js';
import { hashOids, issuerHashes, type OcspRequest } from './request.js';
import { errorResponse } from './response.js';
import type { OcspResult, OcspSource, ServedCa } from './source.js';
import { certIdOf, makeResponderPki, request, type ResponderPki } from './testing/responder-pki.js';

const tmp = tempDir('trellis-ocsp-filter-');
let pki: ResponderPki;

beforeAll(async () => {
  pki = await makeResponderPki(tmp);
});
afterAll(() => tmp.cleanup());

const answered: OcspResult = { der: Buffer.from('answered by the next source'), cache: null };

/** The filter over a next source that records what reaches it. */
function setup() {
  const reached: { req: OcspRequest; ca: ServedCa }[] = [];
  const next: OcspSource = { answer: async (req, ca) => (reached.push({ req, ca }), answered) };
  const filter = new RequestFilter(next);
  filter.setCa(pki.responder);
  return { filter, reached };
}

describe('RequestFilter', () => {
  test('a request naming a served CA reaches the next source with that CA, SHA-1 and SHA-256 CertIDs alike', async () => {
    const { filter, reached } = setup();
    expect(await filter.answer(request([certIdOf(pki.ca, '01')], Buffer.alloc(16, 3)))).toBe(answered);
    expect(await filter.answer(request([certIdOf(pki.ca, '02', 'sha256'), certIdOf(pki.ca, '03', 'sha256')]))).toBe(answered);
    expect(reached.map((r) => [r.ca.id, r.req.certIds.map((c) => c.serialHex), r.req.nonce?.toString('hex') ?? null])).toEqual([
      ['issuing-1', ['01'], '03'.repeat(16)],
      ['issuing-1', ['02', '03'], null],
    ]);
  });

  test('what the CA carries below: its CertID hashes, the responder notAfter, and the lint facts from the responder certificate', () => {
    const { filter } = setup();
    const ca = filter.ca('issuing-1')!;
    const sha1 = issuerHashes('sha1', pki.ca.subjectDer, pki.ca.subjectPublicKey);
    expect(ca.hashes.sha1).toEqual(sha1);
    expect(ca.signerNotAfter).toEqual(pki.respNotAfter);
    expect(ca.lint.responderKeyHash.equals(pki.responder.signer.keyHash)).toBe(true);
    expect(ca.lint.issuerHashes[hashOids.sha1]).toEqual(sha1);
    expect(filter.ca('issuing-2')).toBeUndefined();
  });

  test('refuses with the protocol’s answer, before the next source: malformedRequest, unauthorized (another CA, or two CAs in one request)', async () => {
    const { filter, reached } = setup();
    for (const body of [Buffer.from('junk'), Buffer.alloc(0), request(Array.from({ length: 11 }, () => certIdOf(pki.ca, '01')))]) expect((await filter.answer(body)).der).toEqual(errorResponse('malformedRequest'));
    expect(await filter.answer(request([certIdOf(pki.other, '01')]))).toEqual({ der: errorResponse('unauthorized'), cache: null });
    expect((await filter.answer(request([certIdOf(pki.ca, '01'), certIdOf(pki.other, '01')]))).der).toEqual(errorResponse('unauthorized'));
    expect(reached).toHaveLength(0);
  });

  test('a failure of the next source is the caller’s to answer: it rejects', async () => {
    const filter = new RequestFilter({ answer: () => Promise.reject(new Error('store down')) });
    filter.setCa(pki.responder);
    await expect(filter.answer(request([certIdOf(pki.ca, '01')]))).rejects.toThrow('store down');
  });

  test('setCa refuses a responder certificate without id-kp-OCSPSigning or from another CA; the CA itself may sign', () => {
    const { filter } = setup();
    expect(() => filter.setCa({ ...pki.responder, signer: { ...pki.responder.signer, certDer: pki.noEkuDer } })).toThrow(/OCSPSigning/);
    expect(() => filter.setCa({ ...pki.responder, subjectDer: pki.other.subjectDer })).toThrow(/not issued/);
    const caKeyHash = createHash('sha1').update(pki.ca.subjectPublicKey).digest();
    filter.setCa({ ...pki.responder, signer: { ...pki.responder.signer, certDer: pki.ca.der, keyHash: caKeyHash } });
    expect(filter.ca('issuing-1')!.lint.responderKeyHash).toEqual(caKeyHash);
  });

  test('setCa again replaces the responder (a renewal): requests go on with the new one', async () => {
    const { filter, reached } = setup();
    const renewed = { ...pki.responder.signer };
    filter.setCa({ ...pki.responder, signer: renewed });
    await filter.answer(request([certIdOf(pki.ca, '01')]));
    expect(reached[0]!.ca.signer).toBe(renewed);
  });
});
