/**
 * ACME for devices (issue 10, draft-ietf-acme-device-attest): the device
 * directory `/acme/device/directory` takes `permanent-identifier` orders
 * from accounts made with the device's own EAB key (`trellis device register
 * --eab`), proven by device-attest-01 with a WebAuthn `packed` attestation
 * that the device's factory identity (IDevID) signs over the attested key.
 * A device simulator does it all; OpenSSL verifies the certificate; every
 * refusal has its test.
 */
import { createHash, createPrivateKey, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { encode } from 'cborg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serve, type Serving } from '../../src/cmd/server.js';
import { silentLogger } from '../../src/http/log.js';
import { pemBlocks } from '../../src/pki/pem.js';
import { AcmeClient, assertOk, buildCsr, keyAuthorization, type AcmeOrder } from '../helpers/acme-client.js';
import { startAcmeServer, type AcmeTestServer } from '../helpers/acme-server.js';
import { cliFor } from '../helpers/cli.js';
import { makeFactoryCa, makeIdevid, type DeviceCredential, type Factory } from '../helpers/device.js';
import { freePort } from '../helpers/lego.js';
import { openssl } from '../helpers/openssl.js';
import { testPassphrase } from '../helpers/test-pki.js';

let acme: AcmeTestServer;
let trellis: ReturnType<typeof cliFor>;
let factory: Factory;
let stranger: Factory;
const der = (pem: string) => pemBlocks(pem)[0]!.der;

// ---- the device simulator ----------------------------------------------------

/** A device: its id, factory identity (IDevID key and certificate) and EAB credentials from registration. */
interface SimDevice {
  id: string;
  idevid: DeviceCredential;
  idevidKey: KeyObject;
  eab: { keyId: string; hmacKey: string };
}

/** WebAuthn authenticator data (§6.1) with attested credential data: the device key as a COSE EC2 P-256 key. */
function authData(attested: KeyObject): Uint8Array {
  const jwk = attested.export({ format: 'jwk' });
  const coseKey = encode(new Map<number, unknown>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')]]));
  const credId = Buffer.from('trellis-device-key');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(credId.length);
  return new Uint8Array(Buffer.concat([createHash('sha256').update('trellis').digest(), Buffer.from([0x41]), Buffer.alloc(4), Buffer.alloc(16), len, credId, Buffer.from(coseKey)]));
}

/** A packed attestation object: the IDevID key signs authData || SHA-256(key authorization); x5c is the IDevID. */
function attestation(o: { signer: KeyObject; x5c: Buffer[]; keyAuth: string; attested: KeyObject }): string {
  const ad = authData(o.attested);
  const sig = sign('sha256', Buffer.concat([ad, createHash('sha256').update(o.keyAuth).digest()]), o.signer);
  return Buffer.from(encode({ fmt: 'packed', attStmt: { alg: -7, sig: new Uint8Array(sig), x5c: o.x5c.map((c) => new Uint8Array(c)) }, authData: ad })).toString('base64url');
}

/** Registers a device with `trellis device register --eab --json [args…]` and makes its IDevID at `maker`. */
async function registerDevice(id: string, maker = factory, args: string[] = []): Promise<SimDevice> {
  const r = await trellis(['device', 'register', '--id', id, '--eab', '--json', ...args]);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as { id: string; secret: string; eab: { keyId: string; hmacKey: string; directory: string } };
  expect(out.eab.directory).toBe('device');
  const idevid = await makeIdevid(acme.pki.dir, maker, id, { name: `idevid-${id}-${maker.name}` });
  return { id, idevid, idevidKey: createPrivateKey(fs.readFileSync(idevid.keyPath)), eab: out.eab };
}

/** A client of the device directory with an account bound to `eab`. */
async function deviceClient(eab: SimDevice['eab']): Promise<AcmeClient> {
  const c = await acme.client({ profile: 'device', accountUrl: 'none' });
  c.accountUrl = undefined;
  assertOk(await c.newAccount({ termsOfServiceAgreed: true, eab: { kid: eab.keyId, hmacKey: eab.hmacKey } }), 'newAccount with EAB', [201]);
  return c;
}

const deviceId = (value: string) => ({ type: 'permanent-identifier', value });

/** newOrder for the device's id; returns the order, its URL and the device-attest-01 challenge. */
async function orderFor(c: AcmeClient, id: string) {
  const res = await c.newOrder({ identifiers: [deviceId(id)] });
  const order = assertOk(res, 'newOrder', [201]);
  const [authz] = await c.getAuthorizations(order);
  expect(authz!.identifier).toEqual(deviceId(id));
  expect(authz!.challenges.map((ch) => ch.type)).toEqual(['device-attest-01']);
  return { order, orderUrl: res.location!, challenge: authz!.challenges[0]!, authzUrl: order.authorizations[0]! };
}

/** Answers device-attest-01 with an attestation of `attested` by the device's IDevID (or other parts for refusals). */
async function attest(c: AcmeClient, challenge: { url: string; token: string }, dev: SimDevice, attested: KeyObject, over: Partial<Parameters<typeof attestation>[0]> = {}) {
  const attObj = attestation({ signer: dev.idevidKey, x5c: [der(dev.idevid.certPem)], keyAuth: keyAuthorization(challenge.token, c.key), attested, ...over });
  return { attObj, res: await c.respondToChallenge(challenge.url, { attObj }) };
}

const newDeviceKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

beforeAll(async () => {
  acme = await startAcmeServer();
  trellis = cliFor(acme.pki.dataDir, testPassphrase);
  factory = await makeFactoryCa(acme.pki.dir, 'widget-factory');
  stranger = await makeFactoryCa(acme.pki.dir, 'unknown-factory');
  const t = await trellis(['device', 'trust-manufacturer', '--ca', factory.certPath, '--name', 'widgets']);
  expect(t.code, t.stderr).toBe(0);
}, 120_000);
afterAll(async () => {
  await acme?.close();
});

describe('device directory', () => {
  test('/acme/device/directory exists and requires external account binding; an account without EAB is refused', async () => {
    const c = await acme.client({ profile: 'device', accountUrl: 'none' });
    c.accountUrl = undefined;
    expect(c.directory.meta?.externalAccountRequired).toBe(true);
    const r = await c.newAccount({ termsOfServiceAgreed: true });
    expect(r.status).toBe(400);
    expect(r.problem?.type).toBe('urn:ietf:params:acme:error:externalAccountRequired');
  });
});

describe('ACME with EAB and device-attest-01', () => {
  test('a device orders its id, attests a new key with its IDevID, finalizes with that key and gets a certificate OpenSSL verifies', async () => {
    const dev = await registerDevice('dev-acme-0001');
    const c = await deviceClient(dev.eab);
    const { order, orderUrl, challenge, authzUrl } = await orderFor(c, dev.id);
    const key = newDeviceKey();
    const { res } = await attest(c, challenge, dev, key.publicKey);
    expect(res.status, res.text).toBe(200);
    expect(assertOk(await c.pollAuthorization(authzUrl), 'authorization').status).toBe('valid');
    expect(assertOk(await c.pollOrder(orderUrl), 'order').status).toBe('ready');
    const csr = buildCsr({ identifiers: [], key: key.privateKey, commonName: dev.id });
    assertOk(await c.finalize(order.finalize, csr.csrDer), 'finalize');
    const done = assertOk(await c.pollOrder(orderUrl, { until: ['valid', 'invalid'] }), 'order') as AcmeOrder;
    expect(done.status).toBe('valid');
    const cert = await c.downloadCertificate(done.certificate!);
    const x = new X509Certificate(cert.leafDer);
    expect(x.subject).toMatch(new RegExp(`serialNumber=${dev.id}`));
    expect(x.subjectAltName).toBe(`URI:urn:dev:trellis:${dev.id}`);
    expect(x.publicKey.export({ type: 'spki', format: 'der' }).equals(key.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    const path = `${acme.pki.dir}/${dev.id}.pem`;
    fs.writeFileSync(path, cert.pem);
    await expect(openssl('verify', '-CAfile', acme.pki.rootPemPath, '-untrusted', acme.pki.issuingPemPath, '-purpose', 'sslclient', path)).resolves.toMatch(/: OK$/m);
    // The certificate is the device's in the registry: the device is active, and retiring it revokes this certificate.
    const shown = await trellis(['device', 'show', '--id', dev.id, '--json']);
    expect(JSON.parse(shown.stdout).status).toBe('active');
    const retired = await trellis(['device', 'retire', '--id', dev.id, '--json']);
    expect(retired.code, retired.stderr).toBe(0);
    expect((JSON.parse(retired.stdout) as { revoked: { serialHex: string }[] }).revoked.map((r) => r.serialHex.toLowerCase())).toEqual([x.serialNumber.toLowerCase()]);
  });
});

describe('refusals', () => {
  test("a device's EAB key orders only that device's id", async () => {
    const a = await registerDevice('dev-acme-0002');
    await registerDevice('dev-acme-0003');
    const c = await deviceClient(a.eab);
    const r = await c.newOrder({ identifiers: [deviceId('dev-acme-0003')] });
    expect(r.status).toBe(401);
    expect(r.problem?.type).toBe('urn:ietf:params:acme:error:unauthorized');
    const unknown = await c.newOrder({ identifiers: [deviceId('dev-unregistered')] });
    expect(unknown.problem?.type).toBe('urn:ietf:params:acme:error:rejectedIdentifier');
    const bad = await c.newOrder({ identifiers: [deviceId('no spaces allowed')] });
    expect(bad.problem?.type).toBe('urn:ietf:params:acme:error:rejectedIdentifier');
    const dns = await c.newOrder({ identifiers: ['device.example'] });
    expect(dns.problem?.type).toBe('urn:ietf:params:acme:error:unsupportedIdentifier');
  });

  test('a disabled device cannot order', async () => {
    const dev = await registerDevice('dev-acme-0004');
    const c = await deviceClient(dev.eab);
    expect((await trellis(['device', 'disable', '--id', dev.id])).code).toBe(0);
    const r = await c.newOrder({ identifiers: [deviceId(dev.id)] });
    expect(r.problem?.type).toBe('urn:ietf:params:acme:error:rejectedIdentifier');
    expect(r.problem?.detail).toMatch(/disabled/);
  });

  test('no attObj is malformed (the challenge stays pending); bytes that are not CBOR invalidate it with badAttestationStatement', async () => {
    const dev = await registerDevice('dev-acme-0005');
    const c = await deviceClient(dev.eab);
    const { challenge, authzUrl } = await orderFor(c, dev.id);
    const none = await c.respondToChallenge(challenge.url, {});
    expect(none.status).toBe(400);
    expect(none.problem?.type).toBe('urn:ietf:params:acme:error:malformed');
    const junk = await c.respondToChallenge(challenge.url, { attObj: Buffer.from([0xbf, 0x61, 0x00]).toString('base64url') });
    expect(junk.json?.status).toBe('invalid');
    expect(junk.json?.error?.type).toBe('urn:ietf:params:acme:error:badAttestationStatement');
    expect(assertOk(await c.getAuthorization(authzUrl)).status).toBe('invalid');
  });

  test('an attestation chain to an unknown manufacturer CA is refused', async () => {
    const dev = await registerDevice('dev-acme-0006');
    const foreign = await makeIdevid(acme.pki.dir, stranger, dev.id, { name: `foreign-${dev.id}` });
    const c = await deviceClient(dev.eab);
    const { challenge } = await orderFor(c, dev.id);
    const { res } = await attest(c, challenge, dev, newDeviceKey().publicKey, { signer: createPrivateKey(fs.readFileSync(foreign.keyPath)), x5c: [der(foreign.certPem)] });
    expect(res.json?.status).toBe('invalid');
    expect(res.json?.error?.type).toBe('urn:ietf:params:acme:error:badAttestationStatement');
    expect(res.json?.error?.detail).toMatch(/does not chain to a trusted CA/);
  });

  test('an IDevID of another device is refused', async () => {
    const dev = await registerDevice('dev-acme-0007');
    const other = await registerDevice('dev-acme-0008');
    const c = await deviceClient(dev.eab);
    const { challenge } = await orderFor(c, dev.id);
    const { res } = await attest(c, challenge, other, newDeviceKey().publicKey);
    expect(res.json?.error?.type).toBe('urn:ietf:params:acme:error:badAttestationStatement');
    expect(res.json?.error?.detail).toMatch(/names device "dev-acme-0008", not "dev-acme-0007"/);
  });

  test('a replayed attestation (the same attObj on another challenge) is refused: the token binds it', async () => {
    const dev = await registerDevice('dev-acme-0009');
    const c = await deviceClient(dev.eab);
    const first = await orderFor(c, dev.id);
    const key = newDeviceKey();
    const { attObj, res } = await attest(c, first.challenge, dev, key.publicKey);
    expect(res.json?.status).toBe('valid');
    const second = await orderFor(c, dev.id);
    expect(second.challenge.token).not.toBe(first.challenge.token);
    const replay = await c.respondToChallenge(second.challenge.url, { attObj });
    expect(replay.json?.status).toBe('invalid');
    expect(replay.json?.error?.type).toBe('urn:ietf:params:acme:error:badAttestationStatement');
    expect(replay.json?.error?.detail).toMatch(/does not verify/);
  });

  test('reprovisioning policy never: a device that holds a valid certificate gets no second one over ACME', async () => {
    const dev = await registerDevice('dev-acme-0011');
    const c = await deviceClient(dev.eab);
    for (const expected of [200, 403]) {
      const { order, challenge } = await orderFor(c, dev.id);
      const key = newDeviceKey();
      expect((await attest(c, challenge, dev, key.publicKey)).res.json?.status).toBe('valid');
      const r = await c.finalize(order.finalize, buildCsr({ identifiers: [], key: key.privateKey, commonName: dev.id }).csrDer);
      expect(r.status, r.text).toBe(expected);
      if (expected === 403) {
        expect(r.problem?.type).toBe('urn:ietf:params:acme:error:unauthorized');
        expect(r.problem?.detail).toMatch(/already holds a valid certificate .* reprovisioning policy is never/);
      }
    }
  });

  test('finalize refuses a CSR with a key other than the attested one, and a CSR naming another device', async () => {
    const dev = await registerDevice('dev-acme-0010');
    const c = await deviceClient(dev.eab);
    const { order, challenge } = await orderFor(c, dev.id);
    const key = newDeviceKey();
    expect((await attest(c, challenge, dev, key.publicKey)).res.json?.status).toBe('valid');
    const otherKey = buildCsr({ identifiers: [], commonName: dev.id });
    const r = await c.finalize(order.finalize, otherKey.csrDer);
    expect(r.status).toBe(400);
    expect(r.problem?.type).toBe('urn:ietf:params:acme:error:badCSR');
    expect(r.problem?.detail).toMatch(/not the key the device attestation vouched for/);
    const otherId = await c.finalize(order.finalize, buildCsr({ identifiers: [], key: key.privateKey, commonName: 'dev-acme-0002' }).csrDer);
    expect(otherId.problem?.type).toBe('urn:ietf:params:acme:error:badCSR');
    expect(otherId.problem?.detail).toMatch(/names device "dev-acme-0002"/);
  });
});

describe('reprovisioning policies reset and migrate (as over EST)', () => {
  /**
   * A second node on the same data directory and database whose profiles
   * also hold `device-v2` (the device profile with 90-day certificates), so a
   * device can migrate to it. Clients reach it with `connectTo`, keeping the
   * instance's base URL as a node behind a balancer would.
   */
  let node: Serving;
  const nodeClients: AcmeClient[] = [];
  beforeAll(async () => {
    const profiles = path.join(acme.pki.dataDir, 'profiles');
    const v1 = fs.readFileSync(path.join(profiles, 'device.yaml'), 'utf8');
    fs.writeFileSync(path.join(profiles, 'device-v2.yaml'), v1.replace(/^description: .*$/m, 'description: IoT device certificate, second generation').replace(/^validity: .*$/m, 'validity: { default: 90d, max: 90d, backdate: 1h }'));
    node = await serve({ dataDir: acme.pki.dataDir, port: await freePort(), passphrase: testPassphrase, log: silentLogger });
  }, 60_000);
  afterAll(async () => {
    for (const c of nodeClients) c.close();
    await node?.close();
  });

  /** The device's account in another directory of the second node. */
  async function onNode(c: AcmeClient, directory: string): Promise<AcmeClient> {
    const other = await AcmeClient.create({ directoryUrl: acme.directoryUrl(directory), connectTo: node.url, key: c.key, accountUrl: c.accountUrl! });
    nodeClients.push(other);
    return other;
  }

  /** One whole enrollment: order, attest a new key, finalize; returns the certificate (written to a file) and the finalize answer. */
  async function enroll(c: AcmeClient, dev: SimDevice, name: string) {
    const { order, orderUrl, challenge } = await orderFor(c, dev.id);
    const key = newDeviceKey();
    expect((await attest(c, challenge, dev, key.publicKey)).res.json?.status).toBe('valid');
    assertOk(await c.finalize(order.finalize, buildCsr({ identifiers: [], key: key.privateKey, commonName: dev.id }).csrDer), 'finalize');
    const done = assertOk(await c.pollOrder(orderUrl, { until: ['valid', 'invalid'] }), 'order') as AcmeOrder;
    expect(done.status).toBe('valid');
    const cert = await c.downloadCertificate(done.certificate!);
    const pemPath = path.join(acme.pki.dir, `${name}.pem`);
    fs.writeFileSync(pemPath, cert.pem);
    return { x: new X509Certificate(cert.leafDer), pemPath };
  }

  const ocsp = (pemPath: string) => openssl('ocsp', '-url', `${node.url}/ocsp`, '-issuer', acme.pki.issuingPemPath, '-cert', pemPath, '-CAfile', acme.pki.rootPemPath, '-no_nonce');
  /** OCSP (through OpenSSL) until it says revoked: nodes that did not revoke learn of it by polling the database (every second here). */
  async function ocspRevoked(pemPath: string): Promise<string> {
    let out = '';
    for (let i = 0; i < 50 && !/: revoked/.test(out); i++) {
      if (i) await new Promise((r) => setTimeout(r, 200));
      out = await ocsp(pemPath);
    }
    return out;
  }
  const stored = (x: X509Certificate) => node.instance.store.certificates.findBySerialAnyIssuer(x.serialNumber.toLowerCase().replace(/^(00)+/, ''));

  test('reset: a second certificate is issued and the first is revoked as superseded by the device (store and OCSP)', async () => {
    const dev = await registerDevice('dev-acme-0020', factory, ['--reprovision', 'reset']);
    const c = await deviceClient(dev.eab);
    const first = await enroll(c, dev, 'reset-first');
    await expect(ocsp(first.pemPath)).resolves.toMatch(/: good/);
    const second = await enroll(await onNode(c, 'device'), dev, 'reset-second');
    expect(second.x.serialNumber).not.toBe(first.x.serialNumber);
    const [old] = await stored(first.x);
    expect(old).toMatchObject({ status: 'revoked', revocationReason: 4, revokedBy: `device:${dev.id}`, deviceId: dev.id });
    const out = await ocspRevoked(first.pemPath);
    expect(out).toMatch(/: revoked/);
    expect(out).toMatch(/Reason: superseded/);
    await expect(ocsp(second.pemPath)).resolves.toMatch(/: good/);
  });

  test('migrate: the device orders under another device profile with its own EAB account, gets that profile\'s certificate, and the registry moves it there', async () => {
    const dev = await registerDevice('dev-acme-0021', factory, ['--reprovision', 'migrate']);
    const c = await deviceClient(dev.eab);
    const first = await enroll(c, dev, 'migrate-first');
    const moved = await enroll(await onNode(c, 'device-v2'), dev, 'migrate-second');
    await expect(openssl('verify', '-CAfile', acme.pki.rootPemPath, '-untrusted', acme.pki.issuingPemPath, '-purpose', 'sslclient', moved.pemPath)).resolves.toMatch(/: OK$/m);
    // device-v2 issues for 90 days (plus the hour of backdating), device for 365.
    const days = (x: X509Certificate) => Math.round((Date.parse(x.validTo) - Date.parse(x.validFrom)) / 86400_000);
    expect([days(first.x), days(moved.x)]).toEqual([365, 90]);
    const [newer] = await stored(moved.x);
    expect(newer).toMatchObject({ profile: 'device-v2', deviceId: dev.id });
    const shown = JSON.parse((await trellis(['device', 'show', '--id', dev.id, '--json'])).stdout) as { profile: string; reprovision: string };
    expect(shown).toMatchObject({ profile: 'device-v2', reprovision: 'migrate' });
    const [old] = await stored(first.x);
    expect(old).toMatchObject({ status: 'revoked', revocationReason: 4, revokedBy: `device:${dev.id}` });
    await expect(ocspRevoked(first.pemPath)).resolves.toMatch(/Reason: superseded/);
  });

  test.each([
    ['never', 'dev-acme-0022'],
    ['reset', 'dev-acme-0023'],
  ])('rejects: policy %s under another device profile (403 unauthorized at newOrder)', async (policy, id) => {
    const dev = await registerDevice(id, factory, ['--reprovision', policy]);
    const c = await onNode(await deviceClient(dev.eab), 'device-v2');
    const r = await c.newOrder({ identifiers: [deviceId(dev.id)] });
    expect(r.status, r.text).toBe(403);
    expect(r.problem?.type).toBe('urn:ietf:params:acme:error:unauthorized');
    expect(r.problem?.detail).toMatch(/enrolls under profile "device"; another profile needs reprovisioning policy migrate/);
  });

  test("rejects: another device's EAB account in a directory its key was not made for is still only that device's", async () => {
    const a = await registerDevice('dev-acme-0024', factory, ['--reprovision', 'migrate']);
    await registerDevice('dev-acme-0025', factory, ['--reprovision', 'migrate']);
    const c = await onNode(await deviceClient(a.eab), 'device-v2');
    const r = await c.newOrder({ identifiers: [deviceId('dev-acme-0025')] });
    expect(r.status).toBe(401);
    expect(r.problem?.type).toBe('urn:ietf:params:acme:error:unauthorized');
  });
});
