/**
 * The quorum's rules on in-memory storage: approvals bound to the exact
 * operation, one per custodian, checked passphrase or signature, expiry,
 * single use, M of the registered custodians, single-operator mode; every
 * refusal audited.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, scrypt as scryptCb, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { beforeEach, describe, expect, test } from 'vitest';
import { fixedClock } from '../clock/clock.js';
import { isPkiError, type ErrorType } from '../errors/pki-error.js';
import { approvalFileText, parseApprovalFile } from './approval-file.js';
import { signApproval, type PassphraseKdf } from './credential.js';
import type { CustodianRepository, CustodianRow, QuorumRepository, QuorumRequestRow } from './ports.js';
import { QuorumService, shellWord } from './quorum.js';

const scrypt = promisify(scryptCb) as (p: string, s: Buffer, n: number, o: object) => Promise<Buffer>;
/** scrypt at the lowest cost the keystore accepts (the real cost is the keystore's; cmd wires it). */
const testKdf: PassphraseKdf = {
  params: { N: 1024, r: 8, p: 1 },
  paramsOk: (p) => p.N === 1024 && p.r === 8 && p.p === 1,
  derive: (pass, salt, p) => scrypt(pass, salt, 32, { N: p.N, r: p.r, p: p.p }),
};

function memoryCustodians(): CustodianRepository {
  const rows = new Map<string, CustodianRow>();
  return {
    async insert(row) {
      if (rows.has(row.name)) throw new Error('duplicate');
      rows.set(row.name, { ...row, removedAt: null });
    },
    find: async (name) => rows.get(name) ?? null,
    list: async () => [...rows.values()],
    async remove(name, at) {
      const r = rows.get(name);
      if (!r) throw new Error('unknown');
      if (r.removedAt) return false;
      r.removedAt = at;
      return true;
    },
  };
}

function memoryRequests(): QuorumRepository & { rows: Map<string, QuorumRequestRow> } {
  const rows = new Map<string, QuorumRequestRow>();
  return {
    rows,
    async insertRequest(row) {
      rows.set(row.id, { ...row, usedAt: null, approvals: [] });
    },
    find: async (id) => {
      const r = rows.get(id);
      return r ? { ...r, approvals: [...r.approvals] } : null;
    },
    async insertApproval(id, a) {
      const r = rows.get(id)!;
      if (r.approvals.some((x) => x.custodian === a.custodian)) throw new Error('duplicate');
      r.approvals.push(a);
    },
    async markUsed(id, at) {
      const r = rows.get(id);
      if (!r || r.usedAt || r.expiresAt <= at) return false;
      r.usedAt = at;
      return true;
    },
  };
}

const pem = (k: KeyObject) => k.export({ type: k.type === 'public' ? 'spki' : 'pkcs8', format: 'pem' }).toString();
const ed = generateKeyPairSync('ed25519');
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ed25519');

async function refusal(p: Promise<unknown>, type: ErrorType, message: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(isPkiError(err, type), String(err)).toBe(true);
  expect((err as Error).message).toMatch(message);
}

let clock: ReturnType<typeof fixedClock>;
let audit: { type: string; data: Record<string, unknown> }[];
let requests: ReturnType<typeof memoryRequests>;
let q: QuorumService;
const make = (threshold: number | undefined) =>
  new QuorumService({
    custodians: custodianRepo,
    requests,
    clock,
    kdf: testKdf,
    threshold,
    audit: { record: async (type, _actor, data) => (audit.push({ type, data }), undefined as never) },
  });
let custodianRepo: CustodianRepository;

beforeEach(async () => {
  clock = fixedClock(new Date('2026-12-06T08:00:00Z'));
  audit = [];
  requests = memoryRequests();
  custodianRepo = memoryCustodians();
  q = make(2);
  await q.custodians.add('alice', { passphrase: 'alice passphrase 1' }, 'test');
  await q.custodians.add('bob', { publicKeyPem: pem(ed.publicKey) }, 'test');
  await q.custodians.add('carol', { publicKeyPem: pem(p256.publicKey) }, 'test');
});

const destroy = { ca: 'issuing-1' };
const sig = (key: KeyObject, id: string, hash: string, name: string) => ({ signature: signApproval(pem(key), undefined, id, hash, name) });

describe('custodians', () => {
  test('listed with the kind of credential, never its secret; removal is audited; names are not reused', async () => {
    expect((await q.custodians.list()).map((c) => [c.name, c.credential])).toEqual([
      ['alice', 'passphrase'],
      ['bob', 'ed25519'],
      ['carol', 'ecdsa-p256'],
    ]);
    expect(JSON.stringify(audit)).not.toContain('alice passphrase 1');
    expect(await q.custodians.remove('carol', 'test')).toEqual({ removed: true });
    expect(await q.custodians.remove('carol', 'test')).toEqual({ removed: false });
    expect(audit.filter((e) => e.type === 'custodian.removed')).toHaveLength(1);
    await refusal(q.custodians.add('carol', { passphrase: 'another passphrase' }, 'test'), 'conflict', /was removed at .*; names are not reused/);
    await refusal(q.custodians.add('alice', { passphrase: 'another passphrase' }, 'test'), 'conflict', /already exists/);
  });

  test.each([
    ['rejects: a private key instead of a public one', () => pem(ed.privateKey), /public key .* not the private key/],
    ['rejects: an RSA key', () => pem(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey), /Ed25519 or ECDSA P-256, not rsa/],
    ['rejects: a P-384 key', () => pem(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey), /not ec secp384r1/],
    ['rejects: not PEM', () => 'hello', /not a PEM public key/],
  ])('%s', async (_name, key, message) => {
    await refusal(q.custodians.add('dave', { publicKeyPem: key() }, 'test'), 'badPublicKey', message);
  });

  test('rejects: a name with spaces or too long', async () => {
    await refusal(q.custodians.add('a b', { passphrase: 'x'.repeat(12) }, 'test'), 'malformed', /custodian name "a b"/);
    await refusal(q.custodians.add('a'.repeat(65), { passphrase: 'x'.repeat(12) }, 'test'), 'malformed', /custodian name/);
  });
});

describe('approvals', () => {
  test('checkQuorum checks everything and uses nothing; use() then uses the request once', async () => {
    const r = await q.request('key.destroy', destroy, { ttlSeconds: 3600, actor: 'op' });
    await refusal(q.checkQuorum('key.destroy', destroy, { requestId: r.id, actor: 'op' }), 'forbidden', /has 0 of the 2 approvals/);
    await q.approve(r.id, 'alice', { passphrase: 'alice passphrase 1' }, 'alice');
    await q.approve(r.id, 'bob', sig(ed.privateKey, r.id, r.hash, 'bob'), 'bob');
    const satisfied = () => audit.filter((e) => e.type === 'quorum.satisfied' && (e.data as { request?: string }).request === r.id).length;
    const gate = await q.checkQuorum('key.destroy', destroy, { requestId: r.id, actor: 'op' });
    // A second check (a command run again after a mistyped passphrase) still passes: nothing was used.
    const again = await q.checkQuorum('key.destroy', destroy, { requestId: r.id, actor: 'op' });
    expect(satisfied()).toBe(0);
    expect(await gate.use()).toMatchObject({ applied: true, requestId: r.id, approvedBy: ['alice', 'bob'] });
    expect(satisfied()).toBe(1);
    await refusal(again.use(), 'conflict', /already used/);
    await refusal(q.checkQuorum('key.destroy', destroy, { requestId: r.id, actor: 'op' }), 'conflict', /already used/);
  });

  test('2 of 3: a passphrase and a signature pass once; the request cannot be replayed', async () => {
    const r = await q.request('key.destroy', destroy, { ttlSeconds: 3600, actor: 'op' });
    expect(await q.approve(r.id, 'alice', { passphrase: 'alice passphrase 1' }, 'alice')).toEqual({ approvals: 1 });
    await refusal(q.requireQuorum('key.destroy', destroy, { requestId: r.id, actor: 'op' }), 'forbidden', /has 1 of the 2 approvals it needs \(alice\)/);
    expect(await q.approve(r.id, 'bob', sig(ed.privateKey, r.id, r.hash, 'bob'), 'bob')).toEqual({ approvals: 2 });
    const outcome = await q.requireQuorum('key.destroy', destroy, { requestId: r.id, actor: 'op' });
    expect(outcome).toEqual({ applied: true, requestId: r.id, hash: r.hash, approvedBy: ['alice', 'bob'], threshold: 2, custodians: 3 });
    expect(audit.map((e) => e.type)).toContain('quorum.satisfied');
    await refusal(q.requireQuorum('key.destroy', destroy, { requestId: r.id, actor: 'op' }), 'conflict', /already used/);
    await refusal(q.approve(r.id, 'carol', sig(p256.privateKey, r.id, r.hash, 'carol'), 'carol'), 'conflict', /already used/);
  });

  test('rejects: the same custodian twice', async () => {
    const r = await q.request('key.destroy', destroy, { ttlSeconds: 3600, actor: 'op' });
    await q.approve(r.id, 'carol', sig(p256.privateKey, r.id, r.hash, 'carol'), 'carol');
    await refusal(q.approve(r.id, 'carol', sig(p256.privateKey, r.id, r.hash, 'carol'), 'carol'), 'conflict', /"carol" already approved/);
    await q.approve(r.id, 'alice', { passphrase: 'alice passphrase 1' }, 'alice');
    await refusal(q.approve(r.id, 'alice', { passphrase: 'alice passphrase 1' }, 'alice'), 'conflict', /"alice" already approved/);
  });

  test('rejects: a wrong passphrase (audited), a passphrase for a key custodian and the reverse', async () => {
    const r = await q.request('key.destroy', destroy, { ttlSeconds: 3600, actor: 'op' });
    await refusal(q.approve(r.id, 'alice', { passphrase: 'alice passphrase 2' }, 'mallory'), 'unauthorized', /"alice": wrong passphrase/);
    expect(audit.at(-1)).toEqual({ type: 'quorum.approval_refused', data: { request: r.id, custodian: 'alice', reason: 'wrong passphrase' } });
    await refusal(q.approve(r.id, 'bob', { passphrase: 'x' }, 'bob'), 'unauthorized', /approves with a key file/);
    await refusal(q.approve(r.id, 'alice', sig(ed.privateKey, r.id, r.hash, 'alice'), 'alice'), 'unauthorized', /approves with a passphrase/);
    expect((await q.show(r.id)).approvals).toEqual([]);
  });

  test('rejects: a signature by another key, over another request, under another name, or garbage', async () => {
    const r = await q.request('key.destroy', destroy, { ttlSeconds: 3600, actor: 'op' });
    const r2 = await q.request('key.destroy', destroy, { ttlSeconds: 3600, actor: 'op' });
    expect(r2.hash).toBe(r.hash);
    await refusal(q.approve(r.id, 'bob', sig(other.privateKey, r.id, r.hash, 'bob'), 'bob'), 'unauthorized', /signature does not verify/);
    // Same operation, another request: a signature is bound to its request id, so it cannot be replayed.
    await refusal(q.approve(r.id, 'bob', sig(ed.privateKey, r2.id, r.hash, 'bob'), 'bob'), 'unauthorized', /signature does not verify/);
    await refusal(q.approve(r.id, 'bob', sig(ed.privateKey, r.id, r.hash, 'carol'), 'bob'), 'unauthorized', /signature does not verify/);
    await refusal(q.approve(r.id, 'carol', { signature: Buffer.from('not a signature') }, 'carol'), 'unauthorized', /signature does not verify/);
  });

  test('rejects: an expired request (approve and require), an unknown request or custodian, a removed custodian', async () => {
    const r = await q.request('key.destroy', destroy, { ttlSeconds: 60, actor: 'op' });
    await q.approve(r.id, 'alice', { passphrase: 'alice passphrase 1' }, 'alice');
    await q.approve(r.id, 'bob', sig(ed.privateKey, r.id, r.hash, 'bob'), 'bob');
    clock.advance(60_000);
    await refusal(q.approve(r.id, 'carol', sig(p256.privateKey, r.id, r.hash, 'carol'), 'carol'), 'forbidden', /expired at 2026-12-06T08:01:00.000Z/);
    await refusal(q.requireQuorum('key.destroy', destroy, { requestId: r.id, actor: 'op' }), 'forbidden', /expired/);
    await refusal(q.approve('qr_nope', 'alice', { passphrase: 'alice passphrase 1' }, 'alice'), 'notFound', /no quorum request "qr_nope"/);
    const r2 = await q.request('key.destroy', destroy, { ttlSeconds: 60, actor: 'op' });
    await refusal(q.approve(r2.id, 'dave', { passphrase: 'x' }, 'dave'), 'notFound', /no custodian "dave"/);
    await q.custodians.remove('carol', 'test');
    await refusal(q.approve(r2.id, 'carol', sig(p256.privateKey, r2.id, r2.hash, 'carol'), 'carol'), 'forbidden', /"carol" was removed/);
  });

  test('rejects: parameters changed after approval, another operation, no request id', async () => {
    const r = await q.request('key.destroy', destroy, { ttlSeconds: 3600, actor: 'op' });
    await q.approve(r.id, 'alice', { passphrase: 'alice passphrase 1' }, 'alice');
    await q.approve(r.id, 'bob', sig(ed.privateKey, r.id, r.hash, 'bob'), 'bob');
    await refusal(q.requireQuorum('key.destroy', { ca: 'issuing-2' }, { requestId: r.id, actor: 'op' }), 'forbidden', /approves another operation/);
    await refusal(q.requireQuorum('key.compromise', destroy, { requestId: r.id, actor: 'op' }), 'forbidden', /approves another operation/);
    await refusal(q.requireQuorum('key.destroy', destroy, { actor: 'op' }), 'forbidden', /needs approvals from 2 of 3 custodians: run trellis quorum request --op key.destroy --param ca=issuing-1/);
    expect(audit.filter((e) => e.type === 'quorum.refused')).toHaveLength(3);
    // The refusals did not use it up.
    expect((await q.requireQuorum('key.destroy', destroy, { requestId: r.id, actor: 'op' })).applied).toBe(true);
  });

  test('the refusal prints a command the shell reads back as the same parameters', async () => {
    const params = { ca: 'root', purpose: "renew it's", subject: 'O=Trellis, CN=Issuing 1', empty: '' };
    const err = await q.requireQuorum('root-key.use', params, { actor: 'op' }).then(() => undefined, (e: unknown) => e as Error);
    const command = /run (trellis quorum request .*), have them/.exec(err?.message ?? '')![1]!;
    // sh itself splits the printed command: each --param is one word, KEY=VALUE as given.
    const words = execFileSync('sh', ['-c', `printf '%s\\n' ${command.slice('trellis '.length)}`], { encoding: 'utf8' }).trimEnd().split('\n');
    const given = words.flatMap((w, i) => (words[i - 1] === '--param' ? [w] : []));
    expect(given).toEqual(Object.entries(params).map(([k, v]) => `${k}=${v}`));
    expect(shellWord('ca=issuing-1')).toBe('ca=issuing-1');
  });

  test('M-1 approvals are refused; an approval stops counting once its custodian is removed', async () => {
    const q3 = make(3);
    const r = await q3.request('ca.rotate', { ca: 'issuing' }, { ttlSeconds: 3600, actor: 'op' });
    await q3.approve(r.id, 'alice', { passphrase: 'alice passphrase 1' }, 'alice');
    await q3.approve(r.id, 'bob', sig(ed.privateKey, r.id, r.hash, 'bob'), 'bob');
    await refusal(q3.requireQuorum('ca.rotate', { ca: 'issuing' }, { requestId: r.id, actor: 'op' }), 'forbidden', /has 2 of the 3 approvals/);
    await q3.approve(r.id, 'carol', sig(p256.privateKey, r.id, r.hash, 'carol'), 'carol');
    const view = await q3.show(r.id);
    expect(view.approvals.map((a) => [a.custodian, a.with, a.counts])).toEqual([
      ['alice', 'passphrase', true],
      ['bob', 'key', true],
      ['carol', 'key', true],
    ]);
    await q.custodians.remove('bob', 'test');
    await refusal(q3.requireQuorum('ca.rotate', { ca: 'issuing' }, { requestId: r.id, actor: 'op' }), 'invalidConfig', /quorum.threshold is 3 but only 2 custodian\(s\) are registered/);
    expect(await make(2).requireQuorum('ca.rotate', { ca: 'issuing' }, { requestId: r.id, actor: 'op' })).toMatchObject({ applied: true, approvedBy: ['alice', 'carol'], custodians: 2 });
  });

  test('a stored signature that does not verify does not count (a row written by hand)', async () => {
    const r = await q.request('key.destroy', destroy, { ttlSeconds: 3600, actor: 'op' });
    await q.approve(r.id, 'alice', { passphrase: 'alice passphrase 1' }, 'alice');
    requests.rows.get(r.id)!.approvals.push({ custodian: 'bob', approvedAt: clock.now(), signature: Buffer.from('forged').toString('base64') });
    await refusal(q.requireQuorum('key.destroy', destroy, { requestId: r.id, actor: 'op' }), 'forbidden', /has 1 of the 2 approvals it needs \(alice\)/);
  });

  test('an approval file round-trips and is recorded by submit; one for another operation is refused', async () => {
    const r = await q.request('key.destroy', destroy, { ttlSeconds: 3600, actor: 'op' });
    const signature = signApproval(pem(p256.privateKey), undefined, r.id, r.hash, 'carol').toString('base64');
    const file = parseApprovalFile(approvalFileText({ request: r.id, custodian: 'carol', operation: r.operation, hash: r.hash, signature }), 'approval.json');
    expect(await q.submit(file, 'op')).toEqual({ approvals: 1 });
    const r2 = await q.request('key.destroy', { ca: 'other' }, { ttlSeconds: 3600, actor: 'op' });
    await refusal(q.submit({ ...file, request: r2.id }, 'op'), 'forbidden', /the approval is for operation/);
    expect(() => parseApprovalFile(approvalFileText({ request: r.id, custodian: 'carol', operation: '{"op":"key.destroy","params":{"ca":"x"}}', hash: r.hash, signature }), 'a.json')).toThrow(/does not hash to its hash/);
  });
});

describe('configuration', () => {
  test('no custodians and no threshold: single-operator mode, audited as quorum.not_applied', async () => {
    const solo = new QuorumService({ custodians: memoryCustodians(), requests, clock, kdf: testKdf, threshold: undefined, audit: { record: async (type, _a, data) => (audit.push({ type, data }), undefined as never) } });
    expect(await solo.requireQuorum('key.destroy', destroy, { actor: 'op' })).toEqual({ applied: false, reason: 'no custodians registered and no quorum configured (single-operator mode)' });
    expect(audit.at(-1)).toMatchObject({ type: 'quorum.not_applied', data: { op: 'key.destroy', params: destroy } });
  });

  test('rejects: custodians without a threshold, a threshold above N, a ttl out of bounds', async () => {
    await refusal(make(undefined).requireQuorum('key.destroy', destroy, { actor: 'op' }), 'invalidConfig', /3 custodian\(s\) registered but trellis.json sets no quorum.threshold/);
    await refusal(make(4).requireQuorum('key.destroy', destroy, { actor: 'op' }), 'invalidConfig', /threshold is 4 but only 3/);
    await refusal(q.request('key.destroy', destroy, { ttlSeconds: 59, actor: 'op' }), 'malformed', /between 60s and 7d/);
  });
});
