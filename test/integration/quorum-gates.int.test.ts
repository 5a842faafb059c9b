/**
 * The quorum gates of the commands that make a CA or use the root key, run in
 * process on SQLite with 2 key custodians (Ed25519, made by OpenSSL) and
 * quorum.threshold 2. Each gate is refused without a request (printing the
 * `trellis quorum request` command to run, before any secret is read: the
 * refusals run with no passphrase at hand), with 1 approval, and with 2
 * approvals of other parameters; it runs with 2 approvals of its own, and
 * then its request is used up. `ceremony issuing --csr-out` needs none.
 * OpenSSL checks what the gated commands signed.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as audit from '../../src/cmd/commands/audit.js';
import * as ceremony from '../../src/cmd/commands/ceremony.js';
import * as crl from '../../src/cmd/commands/crl.js';
import * as custodian from '../../src/cmd/commands/custodian.js';
import * as quorum from '../../src/cmd/commands/quorum.js';
import { initInstance } from '../../src/cmd/init-instance.js';
import { keyIdOf, openInstance, tokenOf } from '../../src/cmd/instance.js';
import { requireQuorum } from '../../src/cmd/quorum.js';
import { configFile, readInstanceConfig } from '../../src/config/instance-config.js';
import { isPkiError } from '../../src/errors/pki-error.js';
import { SoftwareKeystore } from '../../src/keys/software-keystore.js';
import { sha256Hex } from '../../src/pki/certificate.js';
import { derFromPemOrDer, toPem } from '../../src/pki/pem.js';
import type { QuorumOperation } from '../../src/quorum/operation.js';
import type { CliEnv, CliResult } from '../helpers/cli.js';
import { runInProcess } from '../helpers/cli-in-process.js';
import { openssl, tempDir } from '../helpers/openssl.js';
import { testPassphrase, testRootPassphrase } from '../helpers/test-pki.js';

const tmp = tempDir('trellis-quorum-gates-');
const dataDir = tmp.file('data');
const secrets: CliEnv = { TRELLIS_PASSPHRASE: testPassphrase, TRELLIS_ROOT_PASSPHRASE: testRootPassphrase };
const noSecrets: CliEnv = { TRELLIS_PASSPHRASE: undefined, TRELLIS_ROOT_PASSPHRASE: undefined };
type Command = Parameters<typeof runInProcess>[1];
const trellis = (name: string, command: Command, args: string[], env: CliEnv = {}) => runInProcess(name, command, args, { TRELLIS_DATA: dataDir, ...env });
const ok = (r: CliResult) => {
  expect(r.code, r.stderr).toBe(0);
  return r;
};
const withRequest = (args: string[], requestId: string | undefined) => (requestId ? [...args, '--quorum-request', requestId] : args);
let counter = 0;
const fresh = (name: string) => tmp.file(`${name}-${++counter}`);

type Params = Record<string, string>;

/** A request for `op` with `params`, approved by `custodians` with their keys. */
async function approvedRequest(op: QuorumOperation, params: Params, custodians: string[]): Promise<string> {
  const r = ok(await trellis('quorum', quorum, ['request', '--op', op, ...Object.entries(params).flatMap(([k, v]) => ['--param', `${k}=${v}`]), '--json']));
  const id = JSON.parse(r.stdout).id as string;
  for (const c of custodians) ok(await trellis('quorum', quorum, ['approve', '--request', id, '--custodian', c, '--key', tmp.file(`${c}.key`)]));
  return id;
}

/** The operation and parameters of the `trellis quorum request` command a refusal prints, as sh splits it. */
function printedRequest(stderr: string): { op: string; params: Params } {
  const m = /run trellis quorum request (.*), have them approve it, then pass --quorum-request ID/.exec(stderr);
  expect(m, stderr).not.toBeNull();
  const words = execFileSync('sh', ['-c', `printf '%s\\n' ${m![1]}`], { encoding: 'utf8' }).trimEnd().split('\n');
  const params: Params = {};
  for (let i = 2; i < words.length; i += 2) {
    expect(words[i]).toBe('--param');
    const pair = words[i + 1]!;
    params[pair.slice(0, pair.indexOf('='))] = pair.slice(pair.indexOf('=') + 1);
  }
  expect(words[0]).toBe('--op');
  return { op: words[1]!, params };
}

async function withInstance<T>(fn: (instance: Awaited<ReturnType<typeof openInstance>>) => Promise<T>): Promise<T> {
  const instance = await openInstance(dataDir);
  try {
    return await fn(instance);
  } finally {
    await instance.close();
  }
}

const rootPem = tmp.file('root.pem');
const caPem = (id: string) => withInstance(async (instance) => toPem('CERTIFICATE', instance.cas.find((c) => c.id === id)!.certDer));

interface Gate {
  title: string;
  op: QuorumOperation;
  /** What the custodians must approve (computed when the gate runs). */
  params: () => Params;
  /** A parameter changed: approvals of this do not open the gate. */
  other: Params;
  /** Anything the gate's inputs need first. */
  prepare?: () => Promise<void>;
  run: (requestId: string | undefined, env: CliEnv) => Promise<CliResult>;
  /** Checks what the command made (OpenSSL where it signed). */
  made: (r: CliResult) => Promise<void>;
  /** True when the same command may run again (so a second run reaches the quorum check). */
  again: boolean;
  /** True when the command verifies the root passphrase before it uses the request (a mistyped one costs no approvals). */
  checksRootSecret?: boolean;
}

let external: { certificateSha256: string; rootSha256: string };

const gates: Gate[] = [
  {
    title: 'crl publish --root',
    op: 'root-key.use',
    params: () => ({ ca: 'root', purpose: 'crl publish' }),
    other: { ca: 'root', purpose: 'audit signer' },
    run: (id, env) => trellis('crl', crl, withRequest(['publish', '--root', '--out', fresh('crl'), '--json'], id), env),
    made: async (r) => {
      const rootCrl = (JSON.parse(r.stdout) as { ca: string; file: string }[]).find((w) => w.ca === 'root')!;
      expect(await openssl('crl', '-inform', 'DER', '-in', rootCrl.file, '-CAfile', rootPem, '-noout')).toMatch(/verify OK/);
    },
    again: true,
    checksRootSecret: true,
  },
  {
    title: 'audit signer create',
    op: 'root-key.use',
    params: () => ({ ca: 'root', purpose: 'audit signer' }),
    other: { ca: 'root', purpose: 'crl publish' },
    run: (id, env) => trellis('audit', audit, withRequest(['signer', 'create', '--rotate', '--json'], id), env),
    made: async (r) => {
      fs.writeFileSync(tmp.file('audit-signer.pem'), JSON.parse(r.stdout).certificate);
      await expect(openssl('verify', '-CAfile', rootPem, tmp.file('audit-signer.pem'))).resolves.toMatch(/: OK$/m);
    },
    again: true,
    checksRootSecret: true,
  },
  {
    title: 'ceremony split-root-secret',
    op: 'root-key.use',
    params: () => ({ ca: 'root', purpose: 'split-root-secret 2 of 3' }),
    other: { ca: 'root', purpose: 'split-root-secret 2 of 5' },
    run: (id, env) => trellis('ceremony', ceremony, withRequest(['split-root-secret', '--shares', '3', '--threshold', '2', '--out-dir', fresh('shares'), '--json'], id), env),
    made: async (r) => {
      for (const f of JSON.parse(r.stdout).files as string[]) expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    },
    again: true,
    checksRootSecret: true,
  },
  {
    title: 'ceremony issuing (signed by the root here)',
    op: 'ca.create',
    params: () => ({ role: 'issuing', id: 'issuing-2', parent: 'root', profile: 'issuing-ca', subject: "O=Trellis Test, CN=Gate's Issuing 2", algorithm: 'ecdsa-p256', keystore: 'software', validity: `${365 * 86400}s`, pathLen: 'profile' }),
    other: { role: 'issuing', id: 'issuing-2', parent: 'root', profile: 'issuing-ca', subject: "O=Trellis Test, CN=Gate's Issuing 2", algorithm: 'ecdsa-p256', keystore: 'software', validity: `${730 * 86400}s`, pathLen: 'profile' },
    run: (id, env) => trellis('ceremony', ceremony, withRequest(['issuing', '--id', 'issuing-2', '--o', 'Trellis Test', '--cn', "Gate's Issuing 2", '--validity', '365d', '--json'], id), env),
    made: async () => {
      fs.writeFileSync(tmp.file('issuing-2.pem'), await caPem('issuing-2'));
      await expect(openssl('verify', '-x509_strict', '-CAfile', rootPem, tmp.file('issuing-2.pem'))).resolves.toMatch(/: OK$/m);
      expect(await openssl('x509', '-in', tmp.file('issuing-2.pem'), '-noout', '-subject')).toMatch(/O\s?=\s?Trellis Test, CN\s?=\s?Gate's Issuing 2/);
    },
    again: false,
    checksRootSecret: true,
  },
  {
    title: 'ceremony issuing --import-cert (signed by an external root)',
    op: 'ca.create',
    params: () => ({ role: 'issuing', id: 'ext-1', parent: 'external-root', ...external }),
    other: { role: 'issuing', id: 'ext-1', parent: 'external-root', certificateSha256: '00'.repeat(32), rootSha256: '00'.repeat(32) },
    prepare: async () => {
      // Step 1 makes a key and a CSR: no CA, nothing signed here, no quorum.
      ok(await trellis('ceremony', ceremony, ['issuing', '--id', 'ext-1', '--cn', 'Gate External 1', '--csr-out', tmp.file('ext-1.csr')], secrets));
      await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', tmp.file('ext-root.key'), '-subj', '/CN=External Root', '-days', '3650', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', tmp.file('ext-root.pem'));
      fs.writeFileSync(tmp.file('ext.cnf'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
      await openssl('x509', '-req', '-in', tmp.file('ext-1.csr'), '-CA', tmp.file('ext-root.pem'), '-CAkey', tmp.file('ext-root.key'), '-set_serial', '0x4a3b2c1d0e0f1a2b', '-days', '1825', '-sha384', '-extfile', tmp.file('ext.cnf'), '-out', tmp.file('ext-1.pem'));
      const der = (f: string) => derFromPemOrDer(fs.readFileSync(f), ['CERTIFICATE'], f);
      external = { certificateSha256: sha256Hex(der(tmp.file('ext-1.pem'))), rootSha256: sha256Hex(der(tmp.file('ext-root.pem'))) };
    },
    run: (id, env) => trellis('ceremony', ceremony, withRequest(['issuing', '--id', 'ext-1', '--import-cert', tmp.file('ext-1.pem'), '--root-cert', tmp.file('ext-root.pem'), '--json'], id), env),
    made: async () => {
      expect(await withInstance(async (i) => i.cas.find((c) => c.id === 'ext-1')?.parentId)).toBe('external-root');
      fs.writeFileSync(tmp.file('ext-1-stored.pem'), await caPem('ext-1'));
      await expect(openssl('verify', '-CAfile', tmp.file('ext-root.pem'), tmp.file('ext-1-stored.pem'))).resolves.toMatch(/: OK$/m);
    },
    again: false,
  },
  {
    title: 'ceremony root',
    op: 'ca.create',
    params: () => ({ role: 'root', id: 'root-2', profile: 'root-ca', subject: 'CN=Gate Root 2', algorithm: 'ecdsa-p384', keystore: 'software', validity: 'profile', pathLen: 'profile' }),
    other: { role: 'root', id: 'root-2', profile: 'root-ca', subject: 'CN=Gate Root 2', algorithm: 'ecdsa-p256', keystore: 'software', validity: 'profile', pathLen: 'profile' },
    run: (id, env) => trellis('ceremony', ceremony, withRequest(['root', '--id', 'root-2', '--cn', 'Gate Root 2', '--json'], id), env),
    made: async () => {
      fs.writeFileSync(tmp.file('root-2.pem'), await caPem('root-2'));
      await expect(openssl('verify', '-x509_strict', '-CAfile', tmp.file('root-2.pem'), tmp.file('root-2.pem'))).resolves.toMatch(/: OK$/m);
    },
    again: false,
  },
  {
    title: 'ceremony protect-root',
    op: 'root-key.use',
    params: () => ({ ca: 'root-2', purpose: 'protect-root' }),
    other: { ca: 'root', purpose: 'protect-root' },
    prepare: async () => {
      // root-2 made as earlier versions made roots: its key under the online passphrase, no offline mark.
      await withInstance(async (instance) => {
        const keyId = keyIdOf(instance.cas.find((c) => c.id === 'root-2')!);
        const blobs = instance.store.keyBlobs;
        await new SoftwareKeystore({ blobs, passphrase: testRootPassphrase }).copyTo(keyId, new SoftwareKeystore({ blobs, passphrase: testPassphrase }), { id: `${keyId}-legacy` });
        await instance.store.cas.setKeyRef('root-2', JSON.stringify({ type: 'software', keyId: `${keyId}-legacy` }));
        await blobs.destroy(keyId);
      });
    },
    run: (id, env) => trellis('ceremony', ceremony, withRequest(['protect-root', '--id', 'root-2', '--json'], id), env),
    made: async (r) => {
      expect(JSON.parse(r.stdout)).toMatchObject({ ca: 'root-2' });
      const keyRef = await withInstance(async (i) => JSON.parse(i.cas.find((c) => c.id === 'root-2')!.keyRef));
      expect(keyRef).toMatchObject({ type: 'software', offline: true });
    },
    again: false,
  },
];

beforeAll(async () => {
  await initInstance({ dataDir, baseUrl: 'http://pki.test:8080', passphrase: testPassphrase, rootPassphrase: testRootPassphrase, actor: 'test' });
  fs.writeFileSync(rootPem, await caPem('root'));
  for (const c of ['alice', 'bob']) {
    await openssl('genpkey', '-algorithm', 'ed25519', '-out', tmp.file(`${c}.key`));
    await openssl('pkey', '-in', tmp.file(`${c}.key`), '-pubout', '-out', tmp.file(`${c}.pub`));
    ok(await trellis('custodian', custodian, ['add', '--name', c, '--key-file', tmp.file(`${c}.pub`)]));
  }
  fs.writeFileSync(configFile(dataDir), JSON.stringify({ ...readInstanceConfig(dataDir), quorum: { threshold: 2 } }, null, 2), { mode: 0o600 });
});
afterAll(() => tmp.cleanup());

describe.each(gates)('$title needs 2 of 2 custodians', (gate) => {
  let approved: string;

  test('refused, before any secret is read: without a request (the refusal prints it), with 1 approval, with approvals of other parameters', async () => {
    await gate.prepare?.();
    const params = gate.params();
    const none = await gate.run(undefined, noSecrets);
    expect(none.code, none.stderr).toBe(1);
    expect(none.stderr).toMatch(new RegExp(`${gate.op.replace('.', '\\.')} needs approvals from 2 of 2 custodians`));
    expect(printedRequest(none.stderr)).toEqual({ op: gate.op, params });
    const one = await gate.run(await approvedRequest(gate.op, params, ['alice']), noSecrets);
    expect(one.code).toBe(1);
    expect(one.stderr).toMatch(/has 1 of the 2 approvals it needs \(alice\)/);
    const other = await gate.run(await approvedRequest(gate.op, gate.other, ['alice', 'bob']), noSecrets);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/approves another operation/);
  });

  test('runs with 2 approvals of exactly its parameters (after a mistyped root passphrase, which used nothing)', async () => {
    approved = await approvedRequest(gate.op, gate.params(), ['bob', 'alice']);
    if (gate.checksRootSecret) {
      const typo = await gate.run(approved, { ...secrets, TRELLIS_ROOT_PASSPHRASE: 'not the root passphrase at all' });
      expect(typo.code).toBe(1);
      expect(typo.stderr).toMatch(/wrong root passphrase/);
      const view = JSON.parse(ok(await trellis('quorum', quorum, ['show', '--request', approved, '--json'])).stdout);
      expect(view.status).not.toBe('used');
    }
    const r = ok(await gate.run(approved, secrets));
    await gate.made(r);
  });

  test('the request is used up: it opens the gate once', async () => {
    const view = JSON.parse(ok(await trellis('quorum', quorum, ['show', '--request', approved, '--json'])).stdout);
    expect(view).toMatchObject({ status: 'used', op: gate.op, params: gate.params() });
    const replay = await withInstance((instance) => requireQuorum(instance, gate.op, gate.params(), { requestId: approved, actor: 'test' }).then(() => undefined, (e: unknown) => e));
    expect(isPkiError(replay, 'conflict')).toBe(true);
    if (gate.again) {
      const again = await gate.run(approved, secrets);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(new RegExp(`request ${approved} was already used`));
    }
  });
});

test('every gate passed once, as the audit log says; the log still verifies', async () => {
  await withInstance(async (instance) => {
    expect(await instance.audit.verify()).toMatchObject({ ok: true });
    const satisfied = (await instance.store.audit.range(1, 100_000)).filter((e) => e.type === 'quorum.satisfied').map((e) => JSON.parse(e.data) as { op: string; params: Params });
    expect(satisfied.map((s) => s.op).sort()).toEqual(gates.map((g) => g.op).sort());
    // The root key of root-2 now opens with the root passphrase only.
    const root2 = instance.cas.find((c) => c.id === 'root-2')!;
    expect(tokenOf(root2)).toBeUndefined();
    await expect(new SoftwareKeystore({ blobs: instance.store.keyBlobs, passphrase: testPassphrase }).load(keyIdOf(root2))).rejects.toMatchObject({ type: 'badPassphrase' });
  });
});
