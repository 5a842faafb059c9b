/**
 * CA keys in PKCS#11 tokens, end to end (issue 11, docs/hsm.md), against two
 * SoftHSM2 tokens in a temp dir: `trellis init --keystore pkcs11` puts the
 * root in its own token and the issuing CA in the other; a certificate is
 * issued, the CRLs published and OCSP answered by a served instance, all
 * judged by OpenSSL; pkcs11-tool shows the CA private keys sensitive and
 * never extractable; `trellis key destroy` deletes the token objects.
 * The commands run in this process (the TypeScript source, no build), except
 * `serve --workers 2`, which runs the compiled CLI (dist/, `npm run build`).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as cliCeremony from '../../src/cmd/commands/ceremony.js';
import * as cliCrl from '../../src/cmd/commands/crl.js';
import * as cliInit from '../../src/cmd/commands/init.js';
import * as cliIssue from '../../src/cmd/commands/issue.js';
import * as cliKey from '../../src/cmd/commands/key.js';
import { serve, type Serving } from '../../src/cmd/server.js';
import { openInstance } from '../../src/cmd/instance.js';
import { silentLogger } from '../../src/http/log.js';
import { toPem } from '../../src/pki/pem.js';
import { createToken } from '../../src/tokens/tokens.js';
import { runInProcess } from '../helpers/cli-in-process.js';
import { makeCsr, openssl, opensslRun, tempDir } from '../helpers/openssl.js';
import { haveSoftHsm, otherModuleUser, parseObjectList, pkcs11Tool, removeSoftHsm, caAndRootTokens, type SoftHsmToken } from '../helpers/softhsm.js';

const available = haveSoftHsm();
const tmp = tempDir('trellis-hsm-');
const data = tmp.file('data');
const passphrase = 'online passphrase for the hsm test';
let caToken: SoftHsmToken;
let rootToken: SoftHsmToken;
let pinFile: string;
let rootPinFile: string;
const pem = { root: tmp.file('root.pem'), issuing: tmp.file('issuing.pem'), leaf: tmp.file('leaf.pem') };

/** Environment of every command: the online passphrase; no PIN unless a call gives one. */
const baseEnv = { TRELLIS_DATA: data, TRELLIS_PASSPHRASE: passphrase, TRELLIS_ROOT_PASSPHRASE: undefined, TRELLIS_PKCS11_PIN: undefined, TRELLIS_PKCS11_ROOT_PIN: undefined };
const run = async (name: string, command: Parameters<typeof runInProcess>[1], args: string[], env: Record<string, string | undefined> = {}) => {
  const r = await runInProcess(name, command, args, { ...baseEnv, ...env });
  return r;
};
const withPin = () => ({ TRELLIS_PKCS11_PIN: caToken.pin });

/** Private key objects of a token, by label. */
async function privateKeys(token: SoftHsmToken) {
  return parseObjectList(await pkcs11Tool(token, '--list-objects')).filter((o) => o.kind.startsWith('Private Key Object'));
}

beforeAll(() => {
  if (!available) return;
  ({ caToken, rootToken, pinFile, rootPinFile } = caAndRootTokens(tmp, 'trellis'));
});
afterAll(() => {
  tmp.cleanup();
  removeSoftHsm();
});

describe.skipIf(!available)('CA keys in PKCS#11 tokens (SoftHSM2)', () => {
  test('init --keystore pkcs11: the root in the root token, the issuing CA in the other; no root passphrase is made', async () => {
    const r = await run('init', cliInit, [
      '--yes', '--json', '--keystore', 'pkcs11', '--pkcs11-module', caToken.modulePath,
      '--pkcs11-token', caToken.label, '--pkcs11-pin-file', pinFile,
      '--pkcs11-root-token', rootToken.label, '--pkcs11-root-pin-file', rootPinFile,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { generatedRootPassphrase?: string; keystore: unknown };
    expect(result.generatedRootPassphrase).toBeUndefined();
    expect(result.keystore).toEqual({ type: 'pkcs11', module: caToken.modulePath, token: 'trellis-ca', rootToken: 'trellis-root' });
    const config = JSON.parse(fs.readFileSync(path.join(data, 'trellis.json'), 'utf8'));
    expect(config.keystore).toEqual(result.keystore);
    expect(JSON.stringify(config)).not.toContain(caToken.pin);

    const instance = await openInstance(data);
    try {
      const refs = Object.fromEntries(instance.cas.map((c) => [c.id, JSON.parse(c.keyRef)]));
      expect(refs.root).toMatchObject({ type: 'pkcs11', token: 'trellis-root', offline: true });
      expect(refs['issuing-1']).toMatchObject({ type: 'pkcs11', token: 'trellis-ca' });
      expect(refs['issuing-1'].offline).toBeUndefined();
      expect(refs.root.keyId).toMatch(/^p11:[0-9a-f]{32}$/);
      expect(refs['issuing-1'].keyId).toMatch(/^p11:[0-9a-f]{32}$/);
      fs.writeFileSync(pem.root, toPem('CERTIFICATE', instance.cas.find((c) => c.id === 'root')!.certDer));
      fs.writeFileSync(pem.issuing, toPem('CERTIFICATE', instance.cas.find((c) => c.id === 'issuing-1')!.certDer));
    } finally {
      await instance.close();
    }
    await expect(openssl('verify', '-CAfile', pem.root, pem.issuing)).resolves.toMatch(/: OK$/m);
  });

  test('key list says where each key lives', async () => {
    const r = await run('key', cliKey, ['list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as { ca: string; where: string }[];
    expect(rows.find((k) => k.ca === 'root')!.where).toBe('pkcs11 token "trellis-root", offline');
    expect(rows.find((k) => k.ca === 'issuing-1')!.where).toBe('pkcs11 token "trellis-ca", online');
  });

  test('pkcs11-tool: each CA private key is in its token, sensitive and never extractable', async () => {
    const instance = await openInstance(data);
    const keyIds = Object.fromEntries(instance.cas.map((c) => [c.id, (JSON.parse(c.keyRef) as { keyId: string }).keyId]));
    await instance.close();
    for (const [token, ca] of [[caToken, 'issuing-1'], [rootToken, 'root']] as const) {
      const keys = await privateKeys(token);
      expect(keys.map((k) => k.fields.label)).toEqual([keyIds[ca]]);
      const access = keys[0]!.fields.Access!;
      expect(access).toMatch(/\bsensitive\b/);
      expect(access).toMatch(/always sensitive/);
      expect(access).toMatch(/never extractable/);
      expect(keys[0]!.fields.Usage).toBe('sign');
    }
  });

  test('issue with the token key: openssl verify accepts the chain', async () => {
    const { csrPath } = await makeCsr(tmp.dir, 'leaf', '/CN=hsm.example.test', { sans: 'DNS:hsm.example.test' });
    const noPin = await run('issue', cliIssue, ['--profile', 'server', '--csr', csrPath, '--out', tmp.file('nopin.pem')]);
    expect(noPin.code).not.toBe(0);
    expect(noPin.stderr).toContain('TRELLIS_PKCS11_PIN');
    const wrong = await run('issue', cliIssue, ['--profile', 'server', '--csr', csrPath, '--out', tmp.file('wrongpin.pem')], { TRELLIS_PKCS11_PIN: 'not-the-pin' });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).not.toContain('not-the-pin');
    const r = await run('issue', cliIssue, ['--profile', 'server', '--csr', csrPath, '--out', pem.leaf], withPin());
    expect(r.code, r.stderr).toBe(0);
    await expect(openssl('verify', '-CAfile', pem.root, '-untrusted', pem.issuing, pem.leaf)).resolves.toMatch(/: OK$/m);
  });

  test('crl publish signs with the token key: openssl checks each CRL and the chain under -crl_check_all', async () => {
    const out = tmp.file('crl');
    const r = await run('crl', cliCrl, ['publish', '--out', out, '--json'], withPin());
    expect(r.code, r.stderr).toBe(0);
    const written = JSON.parse(r.stdout) as { ca: string; scope: string; file: string }[];
    const issuingCrls = written.filter((w) => w.ca === 'issuing-1');
    expect(issuingCrls.length).toBeGreaterThan(0);
    for (const w of issuingCrls) await expect(openssl('crl', '-in', w.file, '-inform', 'DER', '-CAfile', pem.issuing, '-noout')).resolves.toMatch(/verify OK/);
    // The root's CRL (ARL) was signed by the root token at init.
    const arl = written.find((w) => w.ca === 'root');
    expect(arl).toBeDefined();
    await expect(openssl('crl', '-in', arl!.file, '-inform', 'DER', '-CAfile', pem.root, '-noout')).resolves.toMatch(/verify OK/);
    // OpenSSL picks the leaf's shard among the issuing CA's CRLs by its distribution point.
    const crlFiles = written.flatMap((w) => ['-CRLfile', w.file.replace(/\.crl$/, '.pem')]);
    await expect(openssl('verify', '-crl_check_all', '-CAfile', pem.root, '-untrusted', pem.issuing, ...crlFiles, pem.leaf)).resolves.toMatch(/: OK$/m);
  });

  test('ceremony issuing: the new key goes into the token, signed by the root token (its PIN, no root passphrase); --keystore software and unknown tokens', async () => {
    const r = await run('ceremony', cliCeremony, ['issuing', '--id', 'issuing-2', '--cn', 'Trellis Issuing CA 2', '--json', '--pkcs11-pin-file', pinFile, '--pkcs11-root-pin-file', rootPinFile]);
    expect(r.code, r.stderr).toBe(0);
    const soft = await run('ceremony', cliCeremony, ['issuing', '--id', 'issuing-soft', '--cn', 'Trellis Software Issuing CA', '--keystore', 'software'], { TRELLIS_PKCS11_ROOT_PIN: rootToken.pin });
    expect(soft.code, soft.stderr).toBe(0);
    const unknown = await run('ceremony', cliCeremony, ['issuing', '--id', 'issuing-x', '--cn', 'X', '--pkcs11-token', 'no-such-token'], { ...withPin(), TRELLIS_PKCS11_ROOT_PIN: rootToken.pin });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('PKCS#11 token "no-such-token" is not configured in trellis.json');
    const instance = await openInstance(data);
    try {
      const refOf = (id: string) => JSON.parse(instance.cas.find((c) => c.id === id)!.keyRef);
      expect(refOf('issuing-2')).toMatchObject({ type: 'pkcs11', token: 'trellis-ca' });
      expect(refOf('issuing-soft')).toMatchObject({ type: 'software' });
      expect(instance.cas.some((c) => c.id === 'issuing-x')).toBe(false);
      expect((await privateKeys(caToken)).map((k) => k.fields.label)).toContain(refOf('issuing-2').keyId);
      fs.writeFileSync(tmp.file('issuing-2.pem'), toPem('CERTIFICATE', instance.cas.find((c) => c.id === 'issuing-2')!.certDer));
    } finally {
      await instance.close();
    }
    await expect(openssl('verify', '-CAfile', pem.root, tmp.file('issuing-2.pem'))).resolves.toMatch(/: OK$/m);
  });

  describe('served', () => {
    let server: Serving;
    beforeAll(async () => {
      server = await serve({ dataDir: data, port: 0, passphrase, pkcs11Pin: Buffer.from(caToken.pin), log: silentLogger });
    });
    afterAll(async () => {
      await server?.close();
    });

    test('openssl ocsp: the delegated responder answers good for the token-issued certificate', async () => {
      const r = await opensslRun(['ocsp', '-issuer', pem.issuing, '-cert', pem.leaf, '-CAfile', pem.root, '-url', `${server.url}/ocsp`, '-no_nonce']);
      expect(r.stdout + r.stderr).toMatch(/Response verify OK/);
      expect(r.stdout).toMatch(/: good$/m);
    });

    test('the token loses its login under serve (C_CloseAllSessions): the next issuance logs in again and signs; openssl verifies both leaves', async () => {
      const bearer = (await createToken(server.instance.store.tokens, 'issuer', 'hsm relogin test')).secret;
      const { csrPem } = await makeCsr(tmp.dir, 'relogin', '/CN=relogin.example.test', { sans: 'DNS:relogin.example.test' });
      const issue = async (name: string) => {
        const res = await fetch(`${server.url}/api/v1/certificates`, {
          method: 'POST',
          headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
          body: JSON.stringify({ profile: 'server', csr: csrPem }),
        });
        const text = await res.text();
        expect(res.status, text).toBe(201);
        fs.writeFileSync(tmp.file(name), text);
        return tmp.file(name);
      };
      const before = await issue('relogin-before.pem');
      // serve runs in this process: a second handle on the module ends its sessions and login, as an HSM restart would.
      otherModuleUser(caToken).closeAllSessions();
      const after = await issue('relogin-after.pem');
      for (const leaf of [before, after]) await expect(openssl('verify', '-CAfile', pem.root, '-untrusted', leaf, leaf)).resolves.toMatch(/: OK$/m);
    });

    test('serve without the token PIN refuses to start', async () => {
      await expect(serve({ dataDir: data, port: 0, passphrase, log: silentLogger })).rejects.toThrow(/PKCS#11 PIN/);
    });
  });

  test('serve --workers 2 (compiled CLI): each worker gets the PIN from the primary and logs in; the PINs leave the environment', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const bin = path.join(import.meta.dirname, '../../bin/trellis.js');
    const env: NodeJS.ProcessEnv = { ...process.env, TRELLIS_PASSPHRASE: passphrase, TRELLIS_PKCS11_PIN: caToken.pin, TRELLIS_PKCS11_ROOT_PIN: rootToken.pin };
    delete env.TRELLIS_ROOT_PASSPHRASE;
    const server = spawn(process.execPath, [bin, 'serve', '--data', data, '--port', String(port), '--workers', '2'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    server.stdout!.on('data', (d) => (output += d));
    server.stderr!.on('data', (d) => (output += d));
    try {
      const t0 = Date.now();
      while ((output.match(/"msg":"serving"/g) ?? []).length < 2) {
        if (Date.now() - t0 > 60_000 || server.exitCode !== null) throw new Error(`serve --workers 2 did not start:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(output).toContain('TRELLIS_PKCS11_ROOT_PIN is set in the environment of serve, which never uses it');
      expect(output).not.toContain(caToken.pin);
      expect(output).not.toContain(rootToken.pin);
      // The workers were started after the primary scrubbed its environment: neither PIN is in theirs.
      const workers = fs.readFileSync(`/proc/${server.pid}/task/${server.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      expect(workers.length).toBeGreaterThanOrEqual(2);
      for (const w of workers) {
        const environ = fs.readFileSync(`/proc/${w}/environ`, 'utf8');
        expect(environ).toContain('PATH=');
        expect(environ).not.toMatch(/TRELLIS_PKCS11_(ROOT_)?PIN=|TRELLIS_PASSPHRASE=/);
      }
      // Several requests, so both workers are likely to answer; each must have logged in to sign.
      for (let i = 0; i < 4; i++) {
        const r = await opensslRun(['ocsp', '-issuer', pem.issuing, '-cert', pem.leaf, '-CAfile', pem.root, '-url', `http://127.0.0.1:${port}/ocsp`]);
        expect(r.stdout + r.stderr).toMatch(/Response verify OK/);
        expect(r.stdout).toMatch(/: good$/m);
      }
    } finally {
      if (server.exitCode === null) {
        server.kill('SIGTERM');
        await new Promise((r) => server.once('exit', r));
      }
    }
  });

  test('key destroy deletes the issuing CA key from the token; the CA no longer signs', async () => {
    const deactivated = await run('key', cliKey, ['deactivate', '--ca', 'issuing-1'], withPin());
    expect(deactivated.code, deactivated.stderr).toBe(0);
    const wrongPin = await run('key', cliKey, ['destroy', '--ca', 'issuing-1'], { TRELLIS_PKCS11_PIN: 'not-the-pin' });
    expect(wrongPin.code).not.toBe(0);
    const instance = await openInstance(data);
    const keyId = (JSON.parse(instance.cas.find((c) => c.id === 'issuing-1')!.keyRef) as { keyId: string }).keyId;
    await instance.close();
    const labels = async () => parseObjectList(await pkcs11Tool(caToken, '--list-objects')).filter((o) => /^(Private|Public) Key Object/.test(o.kind)).map((o) => o.fields.label);
    expect((await labels()).filter((l) => l === keyId)).toHaveLength(2);
    const r = await run('key', cliKey, ['destroy', '--ca', 'issuing-1', '--pkcs11-pin-file', pinFile]);
    expect(r.code, r.stderr).toBe(0);
    // Neither half of the key is left; issuing-2's key and the token's secret-sealing key (EAB keys, the ACME nonce key) stay.
    expect(await labels()).not.toContain(keyId);
    expect(await privateKeys(caToken)).toHaveLength(1);
    const objects = parseObjectList(await pkcs11Tool(caToken, '--list-objects'));
    expect(objects.filter((o) => o.kind.startsWith('Secret Key Object')).map((o) => o.fields.label)).toEqual(['trellis-secret-sealer']);
    // The root token is untouched.
    expect(await privateKeys(rootToken)).toHaveLength(1);
    const { csrPath } = await makeCsr(tmp.dir, 'after', '/CN=after.example.test', { sans: 'DNS:after.example.test' });
    const after = await run('issue', cliIssue, ['--profile', 'server', '--csr', csrPath, '--ca', 'issuing-1', '--out', tmp.file('after.pem')], withPin());
    expect(after.code).not.toBe(0);
    expect(fs.existsSync(tmp.file('after.pem'))).toBe(false);
  });
});
