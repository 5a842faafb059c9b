/**
 * The quorum ceremony through the CLI commands, run in process on SQLite:
 * custodians with passphrases and keys made by OpenSSL, a 2-of-3 approval of
 * a key destruction collected on the instance and as a signed file, the
 * check an operation makes (exact parameters, single use), every refusal;
 * then the root secret split into shares that open the root for
 * `crl publish --root` (the CRL checked with openssl crl -verify), each root
 * operation approved by 2 custodians (quorum-gates.int.test.ts tests the gates).
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initInstance } from '../../src/cmd/init-instance.js';
import { keyIdOf, keystoreFor, openInstance } from '../../src/cmd/instance.js';
import { requireQuorum } from '../../src/cmd/quorum.js';
import { configFile, readInstanceConfig } from '../../src/config/instance-config.js';
import { isPkiError } from '../../src/errors/pki-error.js';
import { toPem } from '../../src/pki/pem.js';
import { rootSecretFromShares } from '../../src/quorum/root-secret.js';
import * as ceremony from '../../src/cmd/commands/ceremony.js';
import * as crl from '../../src/cmd/commands/crl.js';
import * as custodian from '../../src/cmd/commands/custodian.js';
import * as quorum from '../../src/cmd/commands/quorum.js';
import { runInProcess } from '../helpers/cli-in-process.js';
import { openssl, tempDir } from '../helpers/openssl.js';
import { testPassphrase, testRootPassphrase } from '../helpers/test-pki.js';

const tmp = tempDir('trellis-quorum-');
const dataDir = tmp.file('data');
const base = { TRELLIS_DATA: dataDir, TRELLIS_PASSPHRASE: testPassphrase, TRELLIS_ROOT_PASSPHRASE: undefined, TRELLIS_CUSTODIAN_PASSPHRASE: undefined };
const cli = {
  custodian: (args: string[], env = {}) => runInProcess('custodian', custodian, args, { ...base, ...env }),
  quorum: (args: string[], env = {}) => runInProcess('quorum', quorum, args, { ...base, ...env }),
  ceremony: (args: string[], env = {}) => runInProcess('ceremony', ceremony, args, { ...base, ...env }),
  crl: (args: string[], env = {}) => runInProcess('crl', crl, args, { ...base, ...env }),
};
const alice = { TRELLIS_CUSTODIAN_PASSPHRASE: 'alice passphrase 1' };
const bob = { TRELLIS_CUSTODIAN_PASSPHRASE: 'bob passphrase 22' };
const json = (r: { code: number; stdout: string; stderr: string }) => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
};
const setThreshold = (threshold: number | undefined) => {
  const { quorum: _q, ...rest } = readInstanceConfig(dataDir);
  fs.writeFileSync(configFile(dataDir), JSON.stringify(threshold === undefined ? rest : { ...rest, quorum: { threshold } }, null, 2), { mode: 0o600 });
};
async function check(op: 'key.destroy', params: Record<string, string>, requestId?: string) {
  const instance = await openInstance(dataDir);
  try {
    return await requireQuorum(instance, op, params, { requestId, actor: 'test' });
  } finally {
    await instance.close();
  }
}
const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as Error);
/** `--quorum-request ID` of a new request for the root's use for `purpose`, approved by alice (passphrase) and carol (key). */
async function rootUseApproved(purpose: string): Promise<string[]> {
  const { id } = json(await cli.quorum(['request', '--op', 'root-key.use', '--param', 'ca=root', '--param', `purpose=${purpose}`, '--json']));
  expect((await cli.quorum(['approve', '--request', id, '--custodian', 'alice'], alice)).code).toBe(0);
  expect((await cli.quorum(['approve', '--request', id, '--custodian', 'carol', '--key', tmp.file('carol.key')])).code).toBe(0);
  return ['--quorum-request', id];
}

beforeAll(async () => {
  await initInstance({ dataDir, baseUrl: 'http://pki.test:8080', passphrase: testPassphrase, rootPassphrase: testRootPassphrase, actor: 'test' });
  await openssl('genpkey', '-algorithm', 'ed25519', '-out', tmp.file('carol.key'));
  await openssl('pkey', '-in', tmp.file('carol.key'), '-pubout', '-out', tmp.file('carol.pub'));
  await openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', tmp.file('dave.key'));
  await openssl('pkey', '-in', tmp.file('dave.key'), '-pubout', '-out', tmp.file('dave.pub'));
  await openssl('genpkey', '-algorithm', 'ed25519', '-out', tmp.file('mallory.key'));
});
afterAll(() => tmp.cleanup());

describe('2 of 3 custodians approve a key destruction', () => {
  let id: string;

  test('no custodians, no threshold: single-operator mode, audited', async () => {
    expect(await check('key.destroy', { ca: 'issuing' })).toMatchObject({ applied: false });
  });

  test('custodian add: passphrases and an Ed25519 public key; refusals', async () => {
    expect(json(await cli.custodian(['add', '--name', 'alice', '--json'], alice))).toMatchObject({ name: 'alice', credential: 'passphrase' });
    expect((await cli.custodian(['add', '--name', 'bob'], bob)).code).toBe(0);
    expect(json(await cli.custodian(['add', '--name', 'carol', '--key-file', tmp.file('carol.pub'), '--json']))).toMatchObject({ name: 'carol', credential: 'ed25519' });
    const dup = await cli.custodian(['add', '--name', 'alice'], alice);
    expect(dup).toMatchObject({ code: 1, stderr: 'trellis custodian: custodian "alice" already exists\n' });
    const priv = await cli.custodian(['add', '--name', 'erin', '--key-file', tmp.file('carol.key')]);
    expect(priv.code).toBe(1);
    expect(priv.stderr).toMatch(/not the private key/);
    const short = await cli.custodian(['add', '--name', 'erin'], { TRELLIS_CUSTODIAN_PASSPHRASE: 'short' });
    expect(short.stderr).toMatch(/at least 12 characters/);
    const none = await cli.custodian(['add', '--name', 'erin']);
    expect(none.stderr).toMatch(/no custodian "erin" passphrase: set TRELLIS_CUSTODIAN_PASSPHRASE, pass --passphrase-file/);
    const list = json(await cli.custodian(['list', '--json']));
    expect(list).toMatchObject({ threshold: null });
    expect(list.custodians.map((c: { name: string; credential: string }) => `${c.name}:${c.credential}`)).toEqual(['alice:passphrase', 'bob:passphrase', 'carol:ed25519']);
    expect(JSON.stringify(list)).not.toMatch(/hash|salt|spki/);
  });

  test('custodians without a threshold: operations are refused until one is set', async () => {
    const err = await errorOf(check('key.destroy', { ca: 'issuing' }));
    expect(isPkiError(err, 'invalidConfig')).toBe(true);
    expect(err?.message).toMatch(/3 custodian\(s\) registered but trellis.json sets no quorum.threshold/);
    setThreshold(4);
    expect((await errorOf(check('key.destroy', { ca: 'issuing' })))?.message).toMatch(/threshold is 4 but only 3/);
    setThreshold(2);
    expect((await errorOf(check('key.destroy', { ca: 'issuing' })))?.message).toMatch(/needs approvals from 2 of 3 custodians: run trellis quorum request --op key.destroy --param ca=issuing/);
  });

  test('quorum request prints the id alone; bad flags are usage errors', async () => {
    const r = await cli.quorum(['request', '--op', 'key.destroy', '--param', 'ca=issuing', '--ttl', '1h']);
    expect(r.code, r.stderr).toBe(0);
    id = r.stdout.trim();
    expect(id).toMatch(/^qr_[0-9a-f]{24}$/);
    expect(r.stderr).toMatch(/key.destroy ca=issuing/);
    expect((await cli.quorum(['request', '--op', 'key.eat'])).code).toBe(2);
    expect((await cli.quorum(['request', '--op', 'key.destroy', '--param', 'ca'])).stderr).toMatch(/expected KEY=VALUE/);
    expect((await cli.quorum(['request', '--op', 'key.destroy', '--param', 'a=1', '--param', 'a=2'])).stderr).toMatch(/--param a is given twice/);
  });

  test('alice approves on the instance; a wrong passphrase and a second approval are refused', async () => {
    const wrong = await cli.quorum(['approve', '--request', id, '--custodian', 'bob'], alice);
    expect(wrong).toMatchObject({ code: 1 });
    expect(wrong.stderr).toMatch(/custodian "bob": wrong passphrase for request/);
    expect(json(await cli.quorum(['approve', '--request', id, '--custodian', 'alice', '--json'], alice))).toEqual({ request: id, custodian: 'alice', approvals: 1 });
    expect((await cli.quorum(['approve', '--request', id, '--custodian', 'alice'], alice)).stderr).toMatch(/"alice" already approved/);
    expect((await errorOf(check('key.destroy', { ca: 'issuing' }, id)))?.message).toMatch(/has 1 of the 2 approvals it needs \(alice\)/);
  });

  test('carol signs a copy of the request away from the instance; the file is submitted once; a forged one is refused', async () => {
    // What the operator hands the custodian: the request as `quorum show --json` prints it.
    const shown = await cli.quorum(['show', '--request', id, '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    fs.writeFileSync(tmp.file('request.json'), shown.stdout);
    const away = { TRELLIS_DATA: tmp.file('no-instance-here') };
    const signed = await cli.quorum(['approve', '--request-file', tmp.file('request.json'), '--custodian', 'carol', '--key', tmp.file('carol.key'), '--out', tmp.file('carol-approval.json')], away);
    expect(signed.code, signed.stderr).toBe(0);
    expect(fs.existsSync(tmp.file('no-instance-here'))).toBe(false);
    const forged = await cli.quorum(['approve', '--request-file', tmp.file('request.json'), '--custodian', 'carol', '--key', tmp.file('mallory.key'), '--out', tmp.file('forged.json')], away);
    expect(forged.code).toBe(0);
    const refused = await cli.quorum(['submit', '--in', tmp.file('forged.json')]);
    expect(refused.stderr).toMatch(/custodian "carol": signature does not verify/);
    // The request file's parameters edited: the custodian's copy no longer hashes to the request.
    const edited = JSON.parse(fs.readFileSync(tmp.file('request.json'), 'utf8'));
    fs.writeFileSync(tmp.file('edited.json'), JSON.stringify({ ...edited, params: { ca: 'issuing-2' } }));
    expect((await cli.quorum(['approve', '--request-file', tmp.file('edited.json'), '--custodian', 'carol', '--key', tmp.file('carol.key'), '--out', tmp.file('x.json')], away)).stderr).toMatch(/its hash is not the hash of its operation/);
    expect(json(await cli.quorum(['submit', '--in', tmp.file('carol-approval.json'), '--json']))).toEqual({ request: id, custodian: 'carol', approvals: 2 });
    expect((await cli.quorum(['submit', '--in', tmp.file('carol-approval.json')])).stderr).toMatch(/"carol" already approved/);
    const view = json(await cli.quorum(['show', '--request', id, '--json']));
    expect(view).toMatchObject({ status: 'approved', threshold: 2, custodians: 3, op: 'key.destroy', params: { ca: 'issuing' } });
    expect(view.approvals.map((a: { custodian: string; with: string; counts: boolean }) => [a.custodian, a.with, a.counts])).toEqual([
      ['alice', 'passphrase', true],
      ['carol', 'key', true],
    ]);
  });

  test('the operation passes with exactly its parameters, once', async () => {
    expect((await errorOf(check('key.destroy', { ca: 'issuing-2' }, id)))?.message).toMatch(/approves another operation/);
    expect(await check('key.destroy', { ca: 'issuing' }, id)).toMatchObject({ applied: true, approvedBy: ['alice', 'carol'], threshold: 2, custodians: 3 });
    const again = await errorOf(check('key.destroy', { ca: 'issuing' }, id));
    expect(isPkiError(again, 'conflict')).toBe(true);
    expect((await cli.quorum(['approve', '--request', id, '--custodian', 'bob'], bob)).stderr).toMatch(/was already used/);
    expect(json(await cli.quorum(['show', '--request', id, '--json'])).status).toBe('used');
  });

  test('a P-256 custodian approves on the instance with --key; removing a custodian drops their approval', async () => {
    expect((await cli.custodian(['add', '--name', 'dave', '--key-file', tmp.file('dave.pub')])).code).toBe(0);
    const r = json(await cli.quorum(['request', '--op', 'key.destroy', '--param', 'ca=issuing', '--json']));
    expect((await cli.quorum(['approve', '--request', r.id, '--custodian', 'dave', '--key', tmp.file('dave.key')])).code).toBe(0);
    expect((await cli.quorum(['approve', '--request', r.id, '--custodian', 'bob'], bob)).code).toBe(0);
    expect((await cli.custodian(['remove', '--name', 'dave'])).stderr).toMatch(/removed; their approvals no longer count/);
    expect((await errorOf(check('key.destroy', { ca: 'issuing' }, r.id)))?.message).toMatch(/has 1 of the 2 approvals it needs \(bob\)/);
    expect((await cli.custodian(['add', '--name', 'dave', '--key-file', tmp.file('dave.pub')])).stderr).toMatch(/names are not reused/);
  });

  test('every step is in the audit log, which still verifies; no passphrase is in it', async () => {
    const instance = await openInstance(dataDir);
    try {
      expect(await instance.audit.verify()).toMatchObject({ ok: true });
      const events = await instance.store.audit.range(1, 10_000);
      const types = events.map((e) => e.type);
      for (const t of ['quorum.not_applied', 'custodian.added', 'custodian.removed', 'quorum.requested', 'quorum.approved', 'quorum.approval_refused', 'quorum.refused', 'quorum.satisfied']) expect(types).toContain(t);
      expect(JSON.stringify(events)).not.toMatch(/alice passphrase 1|bob passphrase 22/);
    } finally {
      await instance.close();
    }
  });
});

describe('the root secret in shares', () => {
  const shares = tmp.file('shares');
  const files = [1, 2, 3].map((i) => `${shares}/root-secret-share-${i}-of-3.json`);

  test('split-root-secret: a wrong passphrase writes nothing; 3 files 0600; never into a directory that has shares', async () => {
    const wrong = await cli.ceremony(['split-root-secret', '--shares', '3', '--threshold', '2', '--out-dir', tmp.file('wrong'), ...(await rootUseApproved('split-root-secret 2 of 3'))], { TRELLIS_ROOT_PASSPHRASE: 'not the root passphrase' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/wrong root passphrase for CA "root"/);
    expect(fs.readdirSync(tmp.file('wrong'))).toEqual([]);
    expect((await cli.ceremony(['split-root-secret', '--shares', '3', '--threshold', '4', '--out-dir', shares], { TRELLIS_ROOT_PASSPHRASE: testRootPassphrase })).code).toBe(2);
    const r = await cli.ceremony(['split-root-secret', '--shares', '3', '--threshold', '2', '--out-dir', shares, '--json', ...(await rootUseApproved('split-root-secret 2 of 3'))], { TRELLIS_ROOT_PASSPHRASE: testRootPassphrase });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ shares: 3, threshold: 2, files });
    for (const f of files) expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(files[0]!, 'utf8')).not.toContain(testRootPassphrase);
    const again = await cli.ceremony(['split-root-secret', '--shares', '3', '--threshold', '2', '--out-dir', shares], { TRELLIS_ROOT_PASSPHRASE: testRootPassphrase });
    expect(again.stderr).toMatch(/already holds share files/);
  });

  test('any 2 shares open the root key; 1 share does not', async () => {
    const instance = await openInstance(dataDir);
    try {
      const root = instance.cas.find((c) => c.role === 'root')!;
      for (const pair of [[files[0]!, files[1]!], [files[2]!, files[0]!]]) {
        const ks = keystoreFor(instance, await rootSecretFromShares(pair));
        await ks.verifyPassphrase(keyIdOf(root));
        ks.close();
      }
      await expect(rootSecretFromShares([files[1]!])).rejects.toThrow(/needs 2 of its 3 shares; 1 given/);
    } finally {
      await instance.close();
    }
  });

  test('crl publish --root --share --share signs the root CRL (openssl crl -verify); one share is refused', async () => {
    const one = await cli.crl(['publish', '--root', '--out', tmp.file('crl-one'), '--share', files[1]!, ...(await rootUseApproved('crl publish'))]);
    expect(one.code).toBe(1);
    expect(one.stderr).toMatch(/needs 2 of its 3 shares; 1 given/);
    const r = await cli.crl(['publish', '--root', '--out', tmp.file('crl'), '--share', files[1]!, '--share', files[2]!, '--json', ...(await rootUseApproved('crl publish'))]);
    expect(r.code, r.stderr).toBe(0);
    const rootCrl = (JSON.parse(r.stdout) as { ca: string; file: string }[]).find((w) => w.ca === 'root')!;
    const instance = await openInstance(dataDir);
    const rootPem = toPem('CERTIFICATE', instance.cas.find((c) => c.role === 'root')!.certDer);
    await instance.close();
    fs.writeFileSync(tmp.file('root.pem'), rootPem);
    expect(await openssl('crl', '-inform', 'DER', '-in', rootCrl.file, '-CAfile', tmp.file('root.pem'), '-noout')).toMatch(/verify OK/);
  });
});
