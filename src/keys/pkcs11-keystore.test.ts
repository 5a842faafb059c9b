import { randomBytes, verify } from 'node:crypto';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { haveSoftHsm, parseObjectList, pkcs11Tool, removeSoftHsm, softHsmToken, type SoftHsmToken } from '../../test/helpers/softhsm.js';
import { PkiError } from '../errors/pki-error.js';
import { hashFor } from './algorithms.js';
import { Pkcs11Keystore } from './pkcs11-keystore.js';
import { isSealedSecret } from './secret-sealer.js';
import type { KeyAlgorithm, SigningKey } from './signing-key.js';

const available = haveSoftHsm();

/** node:crypto (OpenSSL) is the judge: the signature must verify with the key's SPKI. */
const verifies = (key: SigningKey, data: Buffer, signature: Buffer) => verify(hashFor(key.algorithm), data, { key: key.spkiDer, format: 'der', type: 'spki', dsaEncoding: 'der' }, signature);

/** The PkiError `fn` rejects with. */
async function rejection(fn: () => Promise<unknown>): Promise<PkiError> {
  const err = await fn().then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(PkiError);
  return err as PkiError;
}

/** Every message and cause message of an error chain, and its inspection. */
function everythingSaid(err: unknown): string {
  const parts: string[] = [inspect(err, { depth: 10 })];
  for (let e: unknown = err; e instanceof Error; e = e.cause) parts.push(e.message, e.stack ?? '');
  return parts.join('\n');
}

describe.skipIf(!available)('Pkcs11Keystore on SoftHSM2', () => {
  let token: SoftHsmToken;
  let spare: SoftHsmToken;
  const open: Pkcs11Keystore[] = [];
  const keystore = (t: SoftHsmToken = token, pin = t.pinBuffer()) => {
    const ks = new Pkcs11Keystore({ modulePath: t.modulePath, tokenLabel: t.label, pin });
    open.push(ks);
    return ks;
  };

  beforeAll(() => {
    // Every token first: SoftHSM2 reads its token directory at C_Initialize.
    token = softHsmToken('trellis-test');
    spare = softHsmToken('trellis-pin-test');
  });
  afterAll(async () => {
    for (const ks of open) await ks.close();
    removeSoftHsm();
  });

  test('wrong PIN: badPassphrase without the PIN anywhere, and the token is not asked again', async () => {
    const wrong = 'not-the-pin-93017';
    const ks = keystore(spare, Buffer.from(wrong));
    const err = await rejection(() => ks.generate('ecdsa-p256'));
    expect(err.type).toBe('badPassphrase');
    expect(err.message).toBe('wrong PIN for PKCS#11 token "trellis-pin-test"');
    expect(everythingSaid(err)).not.toContain(wrong);
    expect(everythingSaid(err)).not.toContain(spare.pin);
    expect(await rejection(() => ks.load('p11:00'))).toBe(err);
    await ks.close();
    // The right PIN still logs in: nothing was locked.
    await keystore(spare).login();
  });

  test('wrong PIN while the token is logged in by another keystore: still badPassphrase', async () => {
    const good = keystore();
    await good.login();
    const wrong = 'another-wrong-pin-55';
    const err = await rejection(() => keystore(token, Buffer.from(wrong)).load('p11:00'));
    expect(err.type).toBe('badPassphrase');
    expect(everythingSaid(err)).not.toContain(wrong);
    expect(inspect(good)).not.toContain(token.pin);
    expect(JSON.stringify(good)).not.toContain(token.pin);
  });

  const algorithms: KeyAlgorithm[] = ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'ed25519'];
  test.each(algorithms)('%s: generated in the token, signs, OpenSSL verifies; a new keystore loads it and signs', async (algorithm) => {
    const ks = keystore();
    const key = await ks.generate(algorithm);
    expect(key.keyId).toMatch(/^p11:[0-9a-f]{32}$/);
    expect(key.algorithm).toBe(algorithm);
    expect(key.spkiDer.equals(key.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    const data = randomBytes(1000);
    const signature = await key.sign(data);
    expect(verifies(key, data, signature)).toBe(true);
    expect(verifies(key, Buffer.concat([data, Buffer.from([0])]), signature)).toBe(false);
    if (algorithm.startsWith('ecdsa')) expect(signature[0]).toBe(0x30); // DER ECDSA-Sig-Value, not r || s

    // Another keystore of this process (its own sessions), then one after every keystore closed (a fresh C_Initialize).
    const again = await keystore().load(key.keyId);
    expect(again.spkiDer.equals(key.spkiDer)).toBe(true);
    expect(verifies(again, data, await again.sign(data))).toBe(true);
  }, 60_000);

  test('a key reopens after every keystore of the process closed (module finalized and initialized again)', async () => {
    const first = keystore();
    const key = await first.generate('ecdsa-p256', { id: 'pending-issuing-1' });
    expect(key.keyId).toBe('pending-issuing-1');
    for (const ks of open.splice(0)) await ks.close();
    const reopened = await keystore().load('pending-issuing-1');
    const data = Buffer.from('after C_Finalize');
    expect(verifies(reopened, data, await reopened.sign(data))).toBe(true);
    expect((await rejection(() => key.sign(data))).type).toBe('forbidden');
  });

  test.each([4, 1])('200 concurrent signatures on one key all verify (%i pooled sessions, never shared)', async (sessions) => {
    const ks = new Pkcs11Keystore({ modulePath: token.modulePath, tokenLabel: token.label, pin: token.pinBuffer(), sessions });
    open.push(ks);
    const key = await ks.generate('ecdsa-p256');
    const data = Array.from({ length: 200 }, (_, i) => Buffer.from(`message ${i}`));
    const signatures = await Promise.all(data.map((d) => key.sign(d)));
    expect(signatures.every((s, i) => verifies(key, data[i]!, s))).toBe(true);
  });

  test('pkcs11-tool lists the private key as sensitive and never extractable, with the key id as label and CKA_ID', async () => {
    const key = await keystore().generate('ecdsa-p384');
    const objects = parseObjectList(await pkcs11Tool(token, '--list-objects'));
    const mine = objects.filter((o) => o.fields.label === key.keyId);
    expect(mine.map((o) => o.kind).sort()).toEqual(['Private Key Object; EC', 'Public Key Object; EC  EC_POINT 384 bits']);
    const priv = mine.find((o) => o.kind.startsWith('Private'))!;
    expect(priv.fields.ID).toBe(key.keyId.slice('p11:'.length));
    expect(priv.fields.Usage).toBe('sign');
    expect(priv.fields.Access).toMatch(/\bsensitive\b/);
    expect(priv.fields.Access).toMatch(/always sensitive/);
    expect(priv.fields.Access).toMatch(/never extractable/);
    expect(priv.fields.Access).toMatch(/\blocal\b/);
    expect(mine.find((o) => o.kind.startsWith('Public'))!.fields.Usage).toBe('verify');
  });

  test('an id already in the token is a conflict; nothing is overwritten', async () => {
    const ks = keystore();
    const key = await ks.generate('ecdsa-p256', { id: 'responder-1' });
    expect((await rejection(() => ks.generate('ecdsa-p256', { id: 'responder-1' }))).type).toBe('conflict');
    expect((await ks.load('responder-1')).spkiDer.equals(key.spkiDer)).toBe(true);
  });

  test('destroy: both objects gone from the token, load is notFound, loaded keys stop signing', async () => {
    const ks = keystore();
    const key = await ks.generate('ecdsa-p256');
    expect(await ks.exists(key.keyId)).toBe(true);
    await ks.destroy(key.keyId);
    expect(await ks.exists(key.keyId)).toBe(false);
    expect((await rejection(() => ks.load(key.keyId))).type).toBe('notFound');
    expect((await rejection(() => keystore().load(key.keyId))).type).toBe('notFound');
    expect((await rejection(() => key.sign(Buffer.from('x')))).type).toBe('notFound');
    expect((await rejection(() => ks.destroy(key.keyId))).type).toBe('notFound');
    const listed = parseObjectList(await pkcs11Tool(token, '--list-objects'));
    expect(listed.filter((o) => o.fields.label === key.keyId)).toEqual([]);
  });

  test('secret sealer: AES-256-GCM in the token, the stored format of secret-sealer.ts; edits and other rows do not open', async () => {
    const sealer = await keystore().openSecretSealer();
    const secret = randomBytes(32);
    const stored = sealer.seal('eab', 'kid-1', secret);
    expect(isSealedSecret(stored)).toBe(true);
    expect(sealer.isSealed(stored)).toBe(true);
    expect(stored.length).toBe(8 + 12 + 32 + 16);
    expect(sealer.open('eab', 'kid-1', stored).equals(secret)).toBe(true);

    const tampered = Buffer.from(stored);
    tampered[30]! ^= 1;
    expect(() => sealer.open('eab', 'kid-1', tampered)).toThrow(expect.objectContaining({ type: 'keyIntegrity' }));
    expect(() => sealer.open('eab', 'kid-2', stored)).toThrow(expect.objectContaining({ type: 'keyIntegrity' }));
    expect(() => sealer.open('nonce', 'kid-1', stored)).toThrow(expect.objectContaining({ type: 'keyIntegrity' }));
    expect(() => sealer.open('eab', 'kid-1', secret)).toThrow(expect.objectContaining({ type: 'keyIntegrity' }));
    // The session is usable after a failed open.
    expect(sealer.open('eab', 'kid-1', stored).equals(secret)).toBe(true);

    // Another keystore finds the same key rather than making a second one.
    const other = await keystore().openSecretSealer();
    expect(other.open('eab', 'kid-1', stored).equals(secret)).toBe(true);
    const listed = parseObjectList(await pkcs11Tool(token, '--list-objects')).filter((o) => o.fields.label === 'trellis-secret-sealer');
    expect(listed).toHaveLength(1);
    expect(listed[0]!.kind).toMatch(/^Secret Key Object; AES length 32/);
    expect(listed[0]!.fields.Usage).toBe('encrypt, decrypt');
    expect(listed[0]!.fields.Access).toMatch(/never extractable/);
  });

  test('a closed keystore refuses every call', async () => {
    const ks = keystore();
    const key = await ks.generate('ecdsa-p256');
    await ks.close();
    expect((await rejection(() => ks.load(key.keyId))).type).toBe('forbidden');
    expect((await rejection(() => ks.generate('ecdsa-p256'))).type).toBe('forbidden');
    expect((await rejection(() => key.sign(Buffer.from('x')))).type).toBe('forbidden');
    expect(inspect(ks)).toBe('Pkcs11Keystore(trellis-test, closed)');
  });
});
