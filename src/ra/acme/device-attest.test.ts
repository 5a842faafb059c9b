import { createHash, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { encode } from 'cborg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PkiError } from '../../errors/pki-error.js';
import { pemBlocks } from '../../pki/pem.js';
import { makeFactoryCa, makeIdevid, type DeviceCredential, type Factory } from '../../../test/helpers/device.js';
import { tempDir } from '../../../test/helpers/openssl.js';
import { verifyDeviceAttestation, type DeviceAttestInput } from './device-attest.js';

const der = (pem: string) => pemBlocks(pem)[0]!.der;
let tmp: ReturnType<typeof tempDir>;
let factory: Factory;
let stranger: Factory;
let idevid: DeviceCredential;
let idevidKey: KeyObject;
const deviceKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const keyAuth = 'token-one.thumbprint';

/** A COSE EC2 P-256 key (RFC 9052) from a Node public key. */
function cose(pub: KeyObject): Map<number, unknown> {
  const jwk = pub.export({ format: 'jwk' });
  return new Map<number, unknown>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')]]);
}

/** WebAuthn authenticator data with attested credential data (flag AT). */
function authData(pub: KeyObject): Uint8Array {
  const credId = Buffer.from('cred-1');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(credId.length);
  return new Uint8Array(Buffer.concat([createHash('sha256').update('trellis').digest(), Buffer.from([0x41]), Buffer.alloc(4), Buffer.alloc(16), len, credId, Buffer.from(encode(cose(pub)))]));
}

/** A packed attestation object signed by `signer` over authData || SHA-256(key authorization). */
function attObj(o: { signer?: KeyObject; chain?: Buffer[]; keyAuthorization?: string; fmt?: string; attested?: KeyObject } = {}): string {
  const ad = authData(o.attested ?? deviceKey.publicKey);
  const sig = sign('sha256', Buffer.concat([ad, createHash('sha256').update(o.keyAuthorization ?? keyAuth).digest()]), o.signer ?? idevidKey);
  const x5c = (o.chain ?? [der(idevid.certPem)]).map((c) => new Uint8Array(c));
  return Buffer.from(encode({ fmt: o.fmt ?? 'packed', attStmt: { alg: -7, sig: new Uint8Array(sig), x5c }, authData: ad })).toString('base64url');
}

const input = (over: Partial<DeviceAttestInput> = {}): DeviceAttestInput => ({
  attObj: attObj(),
  keyAuthorization: keyAuth,
  deviceId: 'dev-0001',
  manufacturerCas: [{ name: 'acme-factory', certDer: der(factory.certPem) }],
  now: new Date(),
  ...over,
});

function refusal(f: () => unknown): { type: string; message: string } {
  try {
    f();
  } catch (err) {
    if (err instanceof PkiError) return { type: err.type, message: err.message };
    throw err;
  }
  throw new Error('expected a refusal');
}

beforeAll(async () => {
  tmp = tempDir('device-attest-');
  factory = await makeFactoryCa(tmp.dir, 'factory');
  stranger = await makeFactoryCa(tmp.dir, 'stranger');
  idevid = await makeIdevid(tmp.dir, factory, 'dev-0001');
  idevidKey = createPrivateKey(fs.readFileSync(idevid.keyPath));
});
afterAll(() => tmp.cleanup());

describe('verifyDeviceAttestation (packed, x5c)', () => {
  test('accepts a statement signed by the IDevID for this key authorization and returns the attested key', () => {
    const r = verifyDeviceAttestation(input());
    expect(r.deviceId).toBe('dev-0001');
    expect(r.manufacturer).toBe('acme-factory');
    expect(r.attestedSpkiDer.equals(deviceKey.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
  });

  test('attObj that is not base64url text is malformed; bytes that are not CBOR are badAttestationStatement', () => {
    expect(refusal(() => verifyDeviceAttestation(input({ attObj: 42 }))).type).toBe('malformed');
    expect(refusal(() => verifyDeviceAttestation(input({ attObj: 'not base64url!' }))).type).toBe('malformed');
    const r = refusal(() => verifyDeviceAttestation(input({ attObj: Buffer.from([0xbf, 0x61]).toString('base64url') })));
    expect(r.type).toBe('badAttestationStatement');
    expect(r.message).toMatch(/not valid CBOR/);
  });

  test('a format other than packed, or no x5c, is refused', () => {
    expect(refusal(() => verifyDeviceAttestation(input({ attObj: attObj({ fmt: 'tpm' }) }))).message).toMatch(/format "tpm" is not supported/);
    expect(refusal(() => verifyDeviceAttestation(input({ attObj: attObj({ chain: [] }) }))).message).toMatch(/no "x5c"/);
  });

  test('a replayed attestation (made for another challenge token) does not verify', () => {
    const r = refusal(() => verifyDeviceAttestation(input({ keyAuthorization: 'token-two.thumbprint' })));
    expect(r.type).toBe('badAttestationStatement');
    expect(r.message).toMatch(/signature .* does not verify/);
  });

  test('a statement not signed by the x5c key is refused', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(refusal(() => verifyDeviceAttestation(input({ attObj: attObj({ signer: other }) }))).message).toMatch(/does not verify/);
  });

  test('a chain to an unknown CA is refused', async () => {
    const foreign = await makeIdevid(tmp.dir, stranger, 'dev-0001', { name: 'foreign-dev-0001' });
    const key = createPrivateKey(fs.readFileSync(foreign.keyPath));
    const r = refusal(() => verifyDeviceAttestation(input({ attObj: attObj({ signer: key, chain: [der(foreign.certPem)] }) })));
    expect(r.type).toBe('badAttestationStatement');
    expect(r.message).toMatch(/chain is refused: .*does not chain to a trusted CA/);
    expect(refusal(() => verifyDeviceAttestation(input({ manufacturerCas: [] }))).message).toMatch(/no manufacturer CA is registered/);
  });

  test('an IDevID naming another device is refused', () => {
    const r = refusal(() => verifyDeviceAttestation(input({ deviceId: 'dev-0002' })));
    expect(r.type).toBe('badAttestationStatement');
    expect(r.message).toMatch(/names device "dev-0001", not "dev-0002"/);
  });

  test('authData without attested credential data is refused', () => {
    const ad = new Uint8Array(37);
    const sig = sign('sha256', Buffer.concat([ad, createHash('sha256').update(keyAuth).digest()]), idevidKey);
    const obj = Buffer.from(encode({ fmt: 'packed', attStmt: { alg: -7, sig: new Uint8Array(sig), x5c: [new Uint8Array(der(idevid.certPem))] }, authData: ad })).toString('base64url');
    expect(refusal(() => verifyDeviceAttestation(input({ attObj: obj }))).message).toMatch(/flag AT is not set/);
  });
});
