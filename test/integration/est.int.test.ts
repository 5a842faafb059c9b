/**
 * EST (RFC 7030) on `serve --tls` with a device simulator: enrollment with
 * the one-time secret, with a factory identity (IDevID) over mutual TLS,
 * server-side key generation, re-enrollment with the current certificate,
 * and every refusal; then the same with stock curl and openssl.
 */
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as issueCommand from '../../src/cmd/commands/issue.js';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { pemBlocks } from '../../src/pki/pem.js';
import { secretHashOf } from '../../src/ra/devices/enroll.js';
import type { DeviceRecord } from '../../src/ra/devices/ports.js';
import { RevocationAuthority } from '../../src/ra/revoke.js';
import { runInProcess } from '../helpers/cli-in-process.js';
import { certsOfPkcs7, deviceCsr, estClient, makeFactoryCa, makeIdevid, type Factory } from '../helpers/device.js';
import { interopAvailable } from '../helpers/interop.js';
import { openssl } from '../helpers/openssl.js';
import { testPassphrase, testPki, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
let server: Serving;
let factory: Factory;
let stranger: Factory;
let port: number;
let baseUrl: string;

const certsOnly = 'application/pkcs7-mime; smime-type=certs-only';

async function register(id: string, o: { secret?: string; status?: DeviceRecord['status']; reprovision?: DeviceRecord['reprovision'] } = {}) {
  await pki.instance.store.devices.insert(
    { id, status: o.status ?? 'registered', profile: 'device', issuerId: null, reprovision: o.reprovision ?? 'never', attributes: {}, secretHash: o.secret ? secretHashOf(o.secret) : null, eabKeyId: null },
    new Date(),
  );
}

const client = (cred?: { certPath: string; keyPath: string }) =>
  estClient({ baseUrl, servername: 'localhost', ca: pki.rootPem, ...(cred ? { cert: fs.readFileSync(cred.certPath, 'utf8'), key: cred.keyPath } : {}) });

/** The one certificate of a certs-only answer, checked by OpenSSL, written to a file. */
async function leafOf(b64: string, name: string): Promise<{ pem: string; path: string; x509: X509Certificate }> {
  const certs = await certsOfPkcs7(pki.dir, b64);
  expect(certs).toHaveLength(1);
  const path = `${pki.dir}/${name}.pem`;
  fs.writeFileSync(path, certs[0]!);
  await expect(openssl('verify', '-CAfile', pki.rootPemPath, '-untrusted', pki.issuingPemPath, '-purpose', 'sslclient', path)).resolves.toMatch(/: OK$/m);
  return { pem: certs[0]!, path, x509: new X509Certificate(certs[0]!) };
}

beforeAll(async () => {
  pki = await testPki({ baseUrl: 'https://localhost:8443' });
  factory = await makeFactoryCa(pki.dir, 'acme-factory');
  stranger = await makeFactoryCa(pki.dir, 'unknown-factory');
  const der = pemBlocks(factory.certPem)[0]!.der;
  const x = new X509Certificate(der);
  await pki.instance.store.manufacturerCas.insert({ name: 'acme-factory', certDer: der, subject: x.subject, sha256: createHash('sha256').update(der).digest('hex'), notAfter: new Date(x.validTo) }, new Date());
  server = await serve({ dataDir: pki.dataDir, host: '127.0.0.1', port: 0, tls: true, passphrase: testPassphrase, log: silentLogger, accessLog: false });
  port = Number(new URL(server.url).port);
  baseUrl = `https://127.0.0.1:${port}`;
}, 120_000);
afterAll(async () => {
  await server?.close();
  await pki?.close();
});

describe('EST distribution', () => {
  test('cacerts: certs-only CMS in base64 with the issuing CA and the root', async () => {
    const r = await client().cacerts();
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(certsOnly);
    expect(r.headers['content-transfer-encoding']).toBe('base64');
    const certs = await certsOfPkcs7(pki.dir, r.text);
    expect(certs.map((c) => c.replace(/\s+/g, ''))).toEqual([pki.issuingPem, pki.rootPem].map((c) => c.replace(/\s+/g, '')));
    // The label form answers the same; a profile without est does not.
    expect((await client().cacerts('device')).status).toBe(200);
    const server404 = await client().cacerts('server');
    expect(server404.status).toBe(404);
    expect(server404.headers['content-type']).toMatch(/^text\/plain/);
  });

  test('csrattrs: the device id attribute and the key algorithms of the profile', async () => {
    const r = await client().csrattrs();
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/csrattrs');
    const file = `${pki.dir}/csrattrs.der`;
    fs.writeFileSync(file, Buffer.from(r.text, 'base64'));
    const parsed = await openssl('asn1parse', '-inform', 'DER', '-in', file);
    expect(parsed).toMatch(/OBJECT\s+:serialNumber/);
    expect(parsed).toMatch(/OBJECT\s+:id-ecPublicKey/);
    expect(parsed).toMatch(/OBJECT\s+:prime256v1/);
    expect(parsed).toMatch(/OBJECT\s+:ecdsa-with-SHA256/);
  });
});

describe('simpleenroll with the enrollment secret', () => {
  test('enrolls once; the certificate names the device; the secret cannot be used again', async () => {
    await register('est-sec-1', { secret: 'first-secret-1' });
    const csr = await deviceCsr(pki.dir, 'est-sec-1');
    const r = await client().simpleenroll(csr.csrB64, { user: { id: 'est-sec-1', secret: 'first-secret-1' } });
    expect(r.status, r.text).toBe(200);
    expect(r.headers['content-type']).toBe(certsOnly);
    const leaf = await leafOf(r.text, 'est-sec-1');
    expect(leaf.x509.subject).toMatch(/serialNumber=est-sec-1/);
    expect(leaf.x509.subjectAltName).toBe('URI:urn:dev:trellis:est-sec-1');
    expect((await pki.instance.store.devices.find('est-sec-1'))?.status).toBe('active');
    const again = await client().simpleenroll((await deviceCsr(pki.dir, 'est-sec-1')).csrB64, { user: { id: 'est-sec-1', secret: 'first-secret-1' } });
    expect(again.status).toBe(401);
    expect(again.headers['www-authenticate']).toBe('Basic realm="trellis-est"');
  });

  test('no credential: 401 with the Basic challenge; a wrong secret: 401', async () => {
    await register('est-sec-2', { secret: 'second-secret' });
    const csr = await deviceCsr(pki.dir, 'est-sec-2');
    const none = await client().simpleenroll(csr.csrB64);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Basic realm="trellis-est"');
    expect(none.headers['content-type']).toMatch(/^text\/plain/);
    const wrong = await client().simpleenroll(csr.csrB64, { user: { id: 'est-sec-2', secret: 'nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.text).toBe('device id or enrollment secret is wrong\n');
  });

  test('a CSR for another device and a disabled device: 403 with the reason', async () => {
    await register('est-sec-3', { secret: 'third-secret' });
    const other = await client().simpleenroll((await deviceCsr(pki.dir, 'est-other')).csrB64, { user: { id: 'est-sec-3', secret: 'third-secret' } });
    expect(other.status).toBe(403);
    expect(other.text).toBe('the CSR names device "est-other" but the credential is for device "est-sec-3"\n');
    await register('est-dis', { secret: 'disabled-secret', status: 'disabled' });
    const dis = await client().simpleenroll((await deviceCsr(pki.dir, 'est-dis')).csrB64, { user: { id: 'est-dis', secret: 'disabled-secret' } });
    expect(dis.status).toBe(403);
    expect(dis.text).toBe('device "est-dis" is disabled\n');
  });

  test('bad bodies: wrong media type 415, not base64 400, not a CSR 400', async () => {
    await register('est-bad', { secret: 'bad-secret' });
    const user = { id: 'est-bad', secret: 'bad-secret' };
    const https = await import('node:https');
    const raw = (body: string, type: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = https.request(`${baseUrl}/.well-known/est/simpleenroll`, { method: 'POST', ca: pki.rootPem, servername: 'localhost', agent: false, headers: { 'content-type': type, authorization: `Basic ${Buffer.from(`${user.id}:${user.secret}`).toString('base64')}` } }, (res) => {
          let t = '';
          res.on('data', (c) => (t += c));
          res.on('end', () => resolve({ status: res.statusCode!, text: t }));
        });
        req.on('error', reject);
        req.end(body);
      });
    expect((await raw('abc', 'application/json')).status).toBe(415);
    expect(await raw('!!!', 'application/pkcs10')).toEqual({ status: 400, text: 'the body is not base64 (send the base64 DER of a PKCS#10 CSR)\n' });
    expect((await raw(Buffer.from('not a csr').toString('base64'), 'application/pkcs10')).status).toBe(400);
    expect((await raw('A'.repeat(70_000), 'application/pkcs10')).status).toBe(413);
    // None of these used the secret; each refusal is audited (without it).
    expect((await pki.instance.store.devices.find('est-bad'))?.secretHash).toBe(secretHashOf('bad-secret'));
    const events = (await pki.instance.store.audit.range(0, 100_000)).filter((e) => e.type === 'device.enroll_refused' && e.actor === 'device:est-bad');
    expect(events.map((e) => (JSON.parse(e.data) as { error: string }).error)).toEqual(['unsupportedMediaType', 'badCSR', 'badCSR', 'payloadTooLarge']);
    expect(JSON.stringify(events)).not.toContain('bad-secret');
    // GET on an enroll resource: 405 with Allow.
    const get = await fetchGet('/.well-known/est/simpleenroll');
    expect(get.status).toBe(405);
    expect(get.allow).toBe('POST');
  });
});

describe('simpleenroll with a factory identity over mutual TLS', () => {
  test('enrolls the device its IDevID names; policy never refuses a second enrollment', async () => {
    await register('est-fac-1');
    const idevid = await makeIdevid(pki.dir, factory, 'est-fac-1');
    const r = await client(idevid).simpleenroll((await deviceCsr(pki.dir, 'est-fac-1')).csrB64);
    expect(r.status, r.text).toBe(200);
    await leafOf(r.text, 'est-fac-1');
    const again = await client(idevid).simpleenroll((await deviceCsr(pki.dir, 'est-fac-1')).csrB64);
    expect(again.status).toBe(403);
    expect(again.text).toMatch(/already holds a valid certificate .* reprovisioning policy is never/);
  });

  test('an IDevID from an unknown manufacturer: 401; naming another device than the CSR: 403', async () => {
    await register('est-fac-2');
    const foreign = await makeIdevid(pki.dir, stranger, 'est-fac-2');
    const r = await client(foreign).simpleenroll((await deviceCsr(pki.dir, 'est-fac-2')).csrB64);
    expect(r.status).toBe(401);
    expect(r.text).toBe('factory identity refused: the client certificate does not chain to a trusted CA\n');
    const ours = await makeIdevid(pki.dir, factory, 'est-fac-2', { name: 'idevid-est-fac-2-ours' });
    const mismatch = await client(ours).simpleenroll((await deviceCsr(pki.dir, 'est-fac-9')).csrB64);
    expect(mismatch.status).toBe(403);
  });
});

describe('serverkeygen', () => {
  test('answers multipart/mixed with the PKCS#8 key and the certificate for that key', async () => {
    await register('est-keygen', { secret: 'keygen-secret' });
    const r = await client().serverkeygen((await deviceCsr(pki.dir, 'est-keygen')).csrB64, { user: { id: 'est-keygen', secret: 'keygen-secret' } });
    expect(r.status, r.text).toBe(200);
    const boundary = /^multipart\/mixed; boundary=(\S+)$/.exec(String(r.headers['content-type']))![1]!;
    const parts = r.text.split(`--${boundary}`).slice(1, -1).map((p) => {
      const [head, body] = p.replace(/^\r\n/, '').split('\r\n\r\n') as [string, string];
      return { head, body: body.replace(/\s+/g, '') };
    });
    expect(parts.map((p) => /Content-Type: (.+)/.exec(p.head)![1]!.trim())).toEqual(['application/pkcs8', certsOnly]);
    expect(parts.every((p) => /Content-Transfer-Encoding: base64/.test(p.head))).toBe(true);
    const key = createPrivateKey({ key: Buffer.from(parts[0]!.body, 'base64'), format: 'der', type: 'pkcs8' });
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const leaf = await leafOf(parts[1]!.body, 'est-keygen');
    expect(leaf.x509.publicKey.export({ type: 'spki', format: 'der' })).toEqual(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  });
});

describe('simplereenroll over mutual TLS', () => {
  test('renews with the current certificate; the old one is superseded (reset); a revoked certificate is refused', async () => {
    await register('est-re-1', { secret: 'renew-secret', reprovision: 'reset' });
    const csr1 = await deviceCsr(pki.dir, 'est-re-1');
    const first = await client().simpleenroll(csr1.csrB64, { user: { id: 'est-re-1', secret: 'renew-secret' } });
    expect(first.status, first.text).toBe(200);
    const cur = await leafOf(first.text, 'est-re-1-a');
    const csr2 = await deviceCsr(pki.dir, 'est-re-1');
    const renewed = await client({ certPath: cur.path, keyPath: csr1.keyPath }).simplereenroll(csr2.csrB64);
    expect(renewed.status, renewed.text).toBe(200);
    const next = await leafOf(renewed.text, 'est-re-1-b');
    expect(next.x509.serialNumber).not.toBe(cur.x509.serialNumber);
    // reset: the certificate it replaced is revoked as superseded, and cannot renew again.
    const old = await client({ certPath: cur.path, keyPath: csr1.keyPath }).simplereenroll((await deviceCsr(pki.dir, 'est-re-1')).csrB64);
    expect(old.status).toBe(403);
    expect(old.text).toMatch(/is revoked\n$/);
    // An operator revokes the current one: refused too.
    const ra = new RevocationAuthority({ certificates: pki.instance.store.certificates, audit: pki.instance.audit, clock: pki.instance.clock });
    await ra.revoke({ serialHex: next.x509.serialNumber, reason: 'keyCompromise', by: 'test', via: 'cli' });
    const revoked = await client({ certPath: next.path, keyPath: csr2.keyPath }).simplereenroll((await deviceCsr(pki.dir, 'est-re-1')).csrB64);
    expect(revoked.status).toBe(403);
    expect(revoked.text).toMatch(/is revoked\n$/);
  });

  test('without a client certificate: 401; a disabled device: 403', async () => {
    const none = await client().simplereenroll((await deviceCsr(pki.dir, 'est-re-2')).csrB64);
    expect(none.status).toBe(401);
    await register('est-re-2', { secret: 'renew-2' });
    const csr = await deviceCsr(pki.dir, 'est-re-2');
    const cur = await leafOf((await client().simpleenroll(csr.csrB64, { user: { id: 'est-re-2', secret: 'renew-2' } })).text, 'est-re-2');
    expect(await pki.instance.store.devices.setStatus('est-re-2', ['active'], 'disabled', new Date())).toBe(true);
    const r = await client({ certPath: cur.path, keyPath: csr.keyPath }).simplereenroll((await deviceCsr(pki.dir, 'est-re-2')).csrB64);
    expect(r.status).toBe(403);
    expect(r.text).toBe('device "est-re-2" is disabled\n');
  });
});

const fetchGet = async (p: string) => {
  const https = await import('node:https');
  return new Promise<{ status: number; allow: string | undefined }>((resolve, reject) => {
    https.get(`${baseUrl}${p}`, { ca: pki.rootPem, servername: 'localhost', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, allow: res.headers.allow }));
    }).on('error', reject);
  });
};

const sh = (cmd: string) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile('sh', ['-c', cmd], { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
  );
const haveCurl = () => interopAvailable(fs.existsSync('/usr/bin/curl') || fs.existsSync('/usr/local/bin/curl'), 'curl', 'install curl');

describe.runIf(haveCurl())('EST with curl and openssl', () => {
  test('curl --user enrolls; curl --cert/--key re-enrolls; openssl reads both answers', async () => {
    await register('est-curl', { secret: 'curl-secret' });
    const csr = await deviceCsr(pki.dir, 'est-curl');
    const resolve = `--resolve localhost:${port}:127.0.0.1 --cacert ${pki.rootPemPath}`;
    const url = `https://localhost:${port}/.well-known/est`;
    const out = `${pki.dir}/curl-enroll.p7.b64`;
    const r = await sh(`curl -sS --fail ${resolve} --user est-curl:curl-secret --data-binary @${csr.b64Path} -H 'Content-Type: application/pkcs10' -o ${out} ${url}/simpleenroll && openssl base64 -d -in ${out} | openssl pkcs7 -inform DER -print_certs -out ${pki.dir}/curl-leaf.pem`);
    expect(r.code, r.stderr).toBe(0);
    await expect(openssl('verify', '-CAfile', pki.rootPemPath, '-untrusted', pki.issuingPemPath, `${pki.dir}/curl-leaf.pem`)).resolves.toMatch(/: OK$/m);
    const csr2 = await deviceCsr(pki.dir, 'est-curl');
    const re = await sh(`curl -sS --fail ${resolve} --cert ${pki.dir}/curl-leaf.pem --key ${csr.keyPath} --data-binary @${csr2.b64Path} -H 'Content-Type: application/pkcs10' ${url}/simplereenroll | openssl base64 -d | openssl pkcs7 -inform DER -print_certs`);
    expect(re.code, re.stderr).toBe(0);
    expect(re.stdout).toMatch(/subject=serialNumber = est-curl/);
    const denied = await sh(`curl -sS -o /dev/null -w '%{http_code}' ${resolve} --data-binary @${csr2.b64Path} -H 'Content-Type: application/pkcs10' ${url}/simpleenroll`);
    expect(denied.stdout).toBe('401');
    const cacerts = await sh(`curl -sS --fail ${resolve} ${url}/cacerts | openssl base64 -d | openssl pkcs7 -inform DER -print_certs -noout`);
    expect(cacerts.code, cacerts.stderr).toBe(0);
  });
});

describe('EST over plain HTTP', () => {
  test('cacerts answers; enrollment is refused before any credential is read', async () => {
    const plain = await serve({ dataDir: pki.dataDir, host: '127.0.0.1', port: 0, passphrase: testPassphrase, log: silentLogger, accessLog: false });
    try {
      expect((await fetch(`${plain.url}/.well-known/est/cacerts`)).status).toBe(200);
      await register('est-plain', { secret: 'plain-secret' });
      const csr = await deviceCsr(pki.dir, 'est-plain');
      const r = await fetch(`${plain.url}/.well-known/est/simpleenroll`, { method: 'POST', body: csr.csrB64, headers: { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from('est-plain:plain-secret').toString('base64')}` } });
      expect(r.status).toBe(403);
      expect(await r.text()).toBe('EST enrollment needs TLS (trellis serve --tls)\n');
      expect((await pki.instance.store.devices.find('est-plain'))?.secretHash).toBe(secretHashOf('plain-secret'));
    } finally {
      await plain.close();
    }
  });
});

describe('trellis issue --generate-key --p12', () => {
  test('writes a 0600 PKCS#12 that openssl pkcs12 reads without -legacy; never overwrites; the key is nowhere else', async () => {
    const { cliFor } = await import('../helpers/cli.js');
    const cli = cliFor(pki.dataDir, testPassphrase);
    const passFile = `${pki.dir}/p12.pass`;
    fs.writeFileSync(passFile, 'p12 passphrase for the device\n', { mode: 0o600 });
    const p12 = `${pki.dir}/dev-cli.p12`;
    const r = await cli(['issue', '--profile', 'device', '--generate-key', '--subject', 'serialNumber=dev-cli-1', '--p12', p12, '--p12-passphrase-file', passFile, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.statSync(p12).mode & 0o777).toBe(0o600);
    expect(r.stdout + r.stderr).not.toMatch(/PRIVATE KEY/);
    const info = await openssl('pkcs12', '-info', '-noout', '-in', p12, '-passin', `file:${passFile}`);
    expect(info).toMatch(/MAC: sha256/);
    expect(info).toMatch(/Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, .*PRF hmacWithSHA256/);
    expect(info).toMatch(/PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, .*PRF hmacWithSHA256/);
    const pems = await openssl('pkcs12', '-in', p12, '-passin', `file:${passFile}`, '-nodes');
    expect(pems).toMatch(/subject=serialNumber = dev-cli-1/);
    expect(pems).toMatch(/-----BEGIN PRIVATE KEY-----/);
    // The refusals run the same command in this process (no Node start each).
    const inProcess = (args: string[]) => runInProcess('issue', issueCommand, args.slice(1), { TRELLIS_DATA: pki.dataDir, TRELLIS_PASSPHRASE: testPassphrase });
    const again = await inProcess(['issue', '--profile', 'device', '--generate-key', '--subject', 'serialNumber=dev-cli-1', '--p12', p12, '--p12-passphrase-file', passFile]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already exists/);
    const noFile = await inProcess(['issue', '--profile', 'device', '--generate-key', '--subject', 'serialNumber=dev-cli-2', '--p12-passphrase-file', passFile]);
    expect(noFile.code).not.toBe(0);
    expect(noFile.stderr).toMatch(/--generate-key needs --p12 FILE/);
  });
});
