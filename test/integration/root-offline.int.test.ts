/**
 * The root key is offline in fact (issue 9, item 2): it has its own
 * passphrase and scrypt salt, the online passphrase never opens it, `serve`
 * neither asks for it nor hands either passphrase to its workers' environment,
 * and a serving worker keeps no copy of the online passphrase once its keys
 * are open.
 * init and serve run the compiled CLI in a child process (what they print, the
 * environment they hand on); the commands in between run in this process (the
 * same modules, no Node start per call).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openInstance, type Instance } from '../../src/cmd/instance.js';
import { SoftwareKeystore } from '../../src/keys/software-keystore.js';
import * as ca from '../../src/cmd/commands/ca.js';
import * as ceremony from '../../src/cmd/commands/ceremony.js';
import * as crl from '../../src/cmd/commands/crl.js';
import * as init from '../../src/cmd/commands/init.js';
import * as issue from '../../src/cmd/commands/issue.js';
import { cliFor, type CliEnv } from '../helpers/cli.js';
import { runInProcess } from '../helpers/cli-in-process.js';
import { makeCsr, openssl, tempDir } from '../helpers/openssl.js';

const bin = path.join(import.meta.dirname, '../../bin/trellis.js');
const tmp = tempDir('trellis-root-offline-');
const data = tmp.file('data');
const passphrase = 'online passphrase for serve 1';

// The root passphrase only where a test gives it (never inherited from the test's environment).
const trellisProcess = cliFor(data, passphrase, { TRELLIS_ROOT_PASSPHRASE: undefined });
const modules = { ca, ceremony, crl, init, issue } as const;
/** `trellis <command> …` run in this process, with the environment `trellisProcess` gives the child. */
const trellis = (args: string[], env: CliEnv = {}) => {
  const [name, ...rest] = args as [keyof typeof modules, ...string[]];
  return runInProcess(name, modules[name], rest, { TRELLIS_DATA: data, TRELLIS_PASSPHRASE: passphrase, TRELLIS_ROOT_PASSPHRASE: undefined, ...env });
};

let rootPassphrase: string;

beforeAll(async () => {
  const r = await trellisProcess(['init', '--yes', '--json']);
  expect(r.code).toBe(0);
  rootPassphrase = JSON.parse(r.stdout).generatedRootPassphrase;
  expect(rootPassphrase).toMatch(/^[A-Za-z0-9_-]{24}$/);
});
afterAll(() => tmp.cleanup());

/** The stored envelope of a CA's key. */
async function envelopeOf(instance: Instance, caId: string): Promise<{ keyId: string; salt: string }> {
  const ca = instance.cas.find((c) => c.id === caId)!;
  const keyId = JSON.parse(ca.keyRef).keyId as string;
  const blob = await instance.store.keyBlobs.find(keyId);
  return { keyId, salt: JSON.parse(blob!.envelope).kdf.salt };
}

describe('the root key has its own secret', () => {
  test('init without a root passphrase generates one and shows it once on stderr, apart from the output', async () => {
    const other = tmp.file('data-human');
    const r = await trellisProcess(['init', '--yes', '--data', other]);
    expect(r.code).toBe(0);
    const m = /Root key passphrase[^\n]*\n\n {4}(\S+)\n/.exec(r.stderr);
    expect(m).not.toBeNull();
    expect(r.stdout).not.toContain(m![1]);
    // stored nowhere in the data directory
    for (const f of fs.readdirSync(other, { recursive: true }) as string[]) {
      const p = path.join(other, f);
      if (fs.statSync(p).isFile()) expect(fs.readFileSync(p).includes(m![1]!)).toBe(false);
    }
  });

  test('the online passphrase cannot open the root key; the root key has its own salt', async () => {
    const instance = await openInstance(data);
    try {
      const root = await envelopeOf(instance, 'root');
      const issuing = await envelopeOf(instance, 'issuing-1');
      expect(root.salt).not.toBe(issuing.salt);
      expect(JSON.parse(instance.cas.find((c) => c.id === 'root')!.keyRef).offline).toBe(true);
      const online = new SoftwareKeystore({ blobs: instance.store.keyBlobs, passphrase });
      await expect(online.load(root.keyId)).rejects.toMatchObject({ type: 'badPassphrase' });
      await expect(online.load(issuing.keyId)).resolves.toBeDefined();
      const offline = new SoftwareKeystore({ blobs: instance.store.keyBlobs, passphrase: rootPassphrase });
      await expect(offline.load(root.keyId)).resolves.toBeDefined();
      await expect(offline.load(issuing.keyId)).rejects.toMatchObject({ type: 'badPassphrase' });
    } finally {
      await instance.close();
    }
  });

  test('ceremony issuing needs the root passphrase; the online one in its place is refused', async () => {
    const none = await trellis(['ceremony', 'issuing', '--id', 'issuing-2', '--cn', 'Issuing 2']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no root key passphrase: set TRELLIS_ROOT_PASSPHRASE/);
    const wrong = await trellis(['ceremony', 'issuing', '--id', 'issuing-2', '--cn', 'Issuing 2'], { TRELLIS_ROOT_PASSPHRASE: passphrase });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/wrong root passphrase for CA "root"/);
    const ok = await trellis(['ceremony', 'issuing', '--id', 'issuing-2', '--cn', 'Issuing 2'], { TRELLIS_ROOT_PASSPHRASE: rootPassphrase });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    // a failed attempt leaves nothing behind
    const list = JSON.parse((await trellis(['ca', 'list', '--json'])).stdout) as { id: string }[];
    expect(list.filter((c) => c.id === 'issuing-2')).toHaveLength(1);
  });

  test('the root passphrase may come from a private file, and must differ from the online one', async () => {
    const file = tmp.file('root.pass');
    fs.writeFileSync(file, `${rootPassphrase}\n`, { mode: 0o600 });
    const r = await trellis(['crl', 'publish', '--root', '--root-passphrase-file', file, '--out', tmp.file('crls'), '--json']);
    expect(r.stderr).toBe('');
    const scopes = (JSON.parse(r.stdout) as { ca: string; scope: string }[]).filter((w) => w.ca === 'root');
    expect(scopes.length).toBeGreaterThan(0);
    const withoutRoot = await trellis(['crl', 'publish', '--root', '--out', tmp.file('crls2')]);
    expect(withoutRoot.code).toBe(1);
    expect(withoutRoot.stderr).toMatch(/no root key passphrase/);
    const same = await trellis(['init', '--yes', '--data', tmp.file('data-same')], { TRELLIS_ROOT_PASSPHRASE: passphrase });
    expect(same.code).toBe(1);
    expect(same.stderr).toMatch(/root passphrase must differ/);
    expect(fs.existsSync(tmp.file('data-same'))).toBe(false);
  });

  test('serve refuses --root-passphrase-file', async () => {
    const r = await trellisProcess(['serve', '--root-passphrase-file', tmp.file('root.pass')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/serve never opens the root key/);
  });
});

describe('ceremony protect-root: a root made before the split moves under its own passphrase', () => {
  const legacy = tmp.file('data-legacy');
  const newRootPassphrase = 'a fresh root passphrase 42';

  test('moves the key, destroys the envelope the online passphrase opened, and refuses a second run', async () => {
    const init = await trellis(['init', '--yes', '--json', '--data', legacy]);
    const generated = JSON.parse(init.stdout).generatedRootPassphrase as string;
    // Make the root what earlier versions made: its key under the online passphrase, no offline mark.
    let instance = await openInstance(legacy);
    let legacyKeyId: string;
    try {
      const { keyId } = await envelopeOf(instance, 'root');
      legacyKeyId = `${keyId}-legacy`;
      const offline = new SoftwareKeystore({ blobs: instance.store.keyBlobs, passphrase: generated });
      await offline.copyTo(keyId, new SoftwareKeystore({ blobs: instance.store.keyBlobs, passphrase }), { id: legacyKeyId });
      await instance.store.cas.setKeyRef('root', JSON.stringify({ type: 'software', keyId: legacyKeyId }));
      await instance.store.keyBlobs.destroy(keyId);
    } finally {
      await instance.close();
    }
    // Such a root still opens with the online passphrase alone (what the command exists to end).
    const before = await trellis(['ceremony', 'issuing', '--data', legacy, '--id', 'issuing-old', '--cn', 'Old']);
    expect(before.code).toBe(0);

    const r = await trellis(['ceremony', 'protect-root', '--data', legacy, '--json'], { TRELLIS_ROOT_PASSPHRASE: newRootPassphrase });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ ca: 'root', keyId: `${legacyKeyId}-offline`, destroyedKeyId: legacyKeyId });
    instance = await openInstance(legacy);
    try {
      const old = await instance.store.keyBlobs.find(legacyKeyId);
      expect(old).toMatchObject({ envelope: '', state: 'destroyed' });
      const moved = await envelopeOf(instance, 'root');
      await expect(new SoftwareKeystore({ blobs: instance.store.keyBlobs, passphrase }).load(moved.keyId)).rejects.toMatchObject({ type: 'badPassphrase' });
    } finally {
      await instance.close();
    }
    const online = await trellis(['ceremony', 'issuing', '--data', legacy, '--id', 'issuing-new', '--cn', 'New']);
    expect(online.code).toBe(1);
    expect(online.stderr).toMatch(/no root key passphrase/);
    const withRoot = await trellis(['ceremony', 'issuing', '--data', legacy, '--id', 'issuing-new', '--cn', 'New'], { TRELLIS_ROOT_PASSPHRASE: newRootPassphrase });
    expect(withRoot.code).toBe(0);
    fs.writeFileSync(tmp.file('legacy-root.pem'), (await trellis(['ca', 'cert', '--root', '--data', legacy])).stdout);
    fs.writeFileSync(tmp.file('legacy-new.pem'), (await trellis(['ca', 'cert', '--ca', 'issuing-new', '--data', legacy])).stdout);
    await expect(openssl('verify', '-CAfile', tmp.file('legacy-root.pem'), tmp.file('legacy-new.pem'))).resolves.toMatch(/: OK$/m);

    const again = await trellis(['ceremony', 'protect-root', '--data', legacy], { TRELLIS_ROOT_PASSPHRASE: newRootPassphrase });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already protected by the root passphrase/);
  });
});

describe('serve --workers holds no passphrase where it need not', () => {
  let child: ChildProcess | undefined;
  let url = '';
  let stderr = '';
  let stdout = '';
  const snapshots = tmp.file('snapshots');

  beforeAll(async () => {
    fs.mkdirSync(snapshots);
    child = spawn(process.execPath, ['--heapsnapshot-signal=SIGUSR2', bin, 'serve', '--port', '0', '--workers', '2'], {
      cwd: snapshots,
      env: { ...process.env, TRELLIS_DATA: data, TRELLIS_PASSPHRASE: passphrase, TRELLIS_ROOT_PASSPHRASE: rootPassphrase, TRELLIS_ACCESS_LOG: 'off' },
    });
    child.stdout!.on('data', (d) => (stdout += d));
    url = await new Promise<string>((resolve, reject) => {
      child!.stderr!.on('data', (d) => {
        stderr += d;
        const m = /serving on (http:\/\/\S+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child!.on('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
    });
  });
  afterAll(async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  });

  const workerPids = (): number[] =>
    fs
      .readFileSync(`/proc/${child!.pid}/task/${child!.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);

  test('warns that the root passphrase has no place in its environment, and serves', async () => {
    expect(stdout).toMatch(/TRELLIS_ROOT_PASSPHRASE is set in the environment of serve, which never uses it/);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  test("no worker's environment holds either passphrase", () => {
    const pids = workerPids();
    expect(pids).toHaveLength(2);
    for (const pid of pids) {
      const environ = fs.readFileSync(`/proc/${pid}/environ`);
      expect(environ.includes('TRELLIS_PASSPHRASE=')).toBe(false);
      expect(environ.includes('TRELLIS_ROOT_PASSPHRASE=')).toBe(false);
      expect(environ.includes(passphrase)).toBe(false);
      expect(environ.includes(rootPassphrase)).toBe(false);
    }
  });

  test('a serving worker keeps no string copy of the online passphrase (heap snapshot), yet still signs', async () => {
    const { csrPath } = await makeCsr(tmp.dir, 'after-forget', '/CN=after.example.test');
    const pid = workerPids()[0]!;
    process.kill(pid, 'SIGUSR2');
    let file: string | undefined;
    for (let i = 0; i < 300 && !file; i++) {
      await new Promise((r) => setTimeout(r, 100));
      file = fs.readdirSync(snapshots).find((f) => f.endsWith('.heapsnapshot') && f.includes(`.${pid}.`));
    }
    expect(file).toBeDefined();
    // The worker writes the snapshot in one go; wait until the file is non-empty and stops growing.
    let size = 0;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const now = fs.statSync(path.join(snapshots, file!)).size;
      if (now > 0 && now === size) break;
      size = now;
    }
    const heap = fs.readFileSync(path.join(snapshots, file!));
    expect(heap.length).toBeGreaterThan(1_000_000);
    expect(heap.includes(passphrase)).toBe(false);
    expect(heap.includes(Buffer.from(passphrase).toString('base64'))).toBe(false);
    expect(heap.includes(rootPassphrase)).toBe(false);
    // The keys stay open: the CLI beside the server still issues, and the server signs OCSP answers.
    const issued = await trellis(['issue', '--profile', 'server', '--csr', csrPath, '--out', tmp.file('after.pem')]);
    expect(issued.code).toBe(0);
    fs.writeFileSync(tmp.file('issuing.pem'), (await trellis(['ca', 'cert'])).stdout);
    const ocsp = await openssl('ocsp', '-issuer', tmp.file('issuing.pem'), '-cert', tmp.file('after.pem'), '-url', `${url}/ocsp`, '-noverify');
    expect(ocsp).toMatch(/after\.pem: good/);
  });
});
