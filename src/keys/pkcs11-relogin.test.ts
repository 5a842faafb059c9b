/**
 * A lost login on a real SoftHSM2 token: another user of the module in this
 * process calls C_Logout or C_CloseAllSessions (as a restarted HSM or daemon
 * would leave things), and the keystore logs in again with the PIN it kept
 * sealed; a PIN changed meanwhile fails once, precisely, and for good.
 */
import { randomBytes, verify } from 'node:crypto';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { haveSoftHsm, otherModuleUser, removeSoftHsm, softHsmToken, type SoftHsmToken } from '../../test/helpers/softhsm.js';
import { PkiError } from '../errors/pki-error.js';
import { hashFor } from './algorithms.js';
import { Pkcs11Keystore } from './pkcs11-keystore.js';
import type { SigningKey } from './signing-key.js';

const available = haveSoftHsm();

/** node:crypto (OpenSSL) is the judge: the signature must verify with the key's SPKI. */
const verifies = (key: SigningKey, data: Buffer, signature: Buffer) => verify(hashFor(key.algorithm), data, { key: key.spkiDer, format: 'der', type: 'spki', dsaEncoding: 'der' }, signature);

/** Every message and cause message of an error chain, and its inspection. */
function everythingSaid(err: unknown): string {
  const parts: string[] = [inspect(err, { depth: 10 })];
  for (let e: unknown = err; e instanceof Error; e = e.cause) parts.push(e.message, e.stack ?? '');
  return parts.join('\n');
}

async function rejection(p: Promise<unknown>): Promise<PkiError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(PkiError);
  return err as PkiError;
}

describe.skipIf(!available)('Pkcs11Keystore after a lost login (SoftHSM2)', () => {
  let token: SoftHsmToken;
  let pinToken: SoftHsmToken;
  const open: Pkcs11Keystore[] = [];
  const keystore = (t: SoftHsmToken, opts: { sessions?: number } = {}) => {
    const ks = new Pkcs11Keystore({ modulePath: t.modulePath, tokenLabel: t.label, pin: t.pinBuffer(), ...opts });
    open.push(ks);
    return ks;
  };

  beforeAll(() => {
    // Every token first: SoftHSM2 reads its token directory at C_Initialize.
    token = softHsmToken('trellis-relogin');
    pinToken = softHsmToken('trellis-pin-change');
  });
  afterAll(async () => {
    for (const ks of open) await ks.close();
    removeSoftHsm();
  });

  test('C_Logout by another user of the module: the next signature logs in again and verifies', async () => {
    const key = await keystore(token).generate('ecdsa-p256');
    const data = randomBytes(100);
    expect(verifies(key, data, await key.sign(data))).toBe(true);
    otherModuleUser(token).logout();
    expect(verifies(key, data, await key.sign(data))).toBe(true);
    expect(verifies(key, data, await key.sign(data))).toBe(true);
  });

  test('C_CloseAllSessions: every session and the login are gone; signatures, look-ups and the secret sealer work again', async () => {
    const ks = keystore(token);
    const key = await ks.generate('rsa-2048');
    const sealer = await ks.openSecretSealer();
    const stored = sealer.seal('eab', 'kid-1', Buffer.from('secret'));
    const data = randomBytes(100);
    expect(verifies(key, data, await key.sign(data))).toBe(true);
    otherModuleUser(token).closeAllSessions();
    expect(verifies(key, data, await key.sign(data))).toBe(true);
    expect(await ks.exists(key.keyId)).toBe(true);
    expect((await ks.load(key.keyId)).spkiDer.equals(key.spkiDer)).toBe(true);

    otherModuleUser(token).closeAllSessions();
    expect(sealer.open('eab', 'kid-1', stored).toString()).toBe('secret');
    expect(sealer.open('eab', 'kid-1', sealer.seal('eab', 'kid-1', Buffer.from('again'))).toString()).toBe('again');
  });

  test('100 signatures in flight when the login goes: all verify, on two pooled sessions', async () => {
    const key = await keystore(token, { sessions: 2 }).generate('ecdsa-p384');
    const data = Array.from({ length: 100 }, (_, i) => Buffer.from(`message ${i}`));
    const signing = data.map((d) => key.sign(d));
    otherModuleUser(token).closeAllSessions();
    const signatures = await Promise.all(signing);
    expect(signatures.every((s, i) => verifies(key, data[i]!, s))).toBe(true);
  });

  test('a key destroyed meanwhile is still notFound after the login was restored', async () => {
    const ks = keystore(token);
    const key = await ks.generate('ecdsa-p256');
    await ks.destroy(key.keyId);
    otherModuleUser(token).logout();
    expect((await rejection(key.sign(Buffer.from('x')))).type).toBe('notFound');
  });

  test('the PIN changed meanwhile: one failed login, a serverInternal error naming the token, and never a second try', async () => {
    const newPin = 'changed-pin-50813';
    const ks = keystore(pinToken);
    const key = await ks.generate('ecdsa-p256');
    const data = Buffer.from('before the PIN change');
    expect(verifies(key, data, await key.sign(data))).toBe(true);
    const other = otherModuleUser(pinToken);
    other.setPin(pinToken.pin, newPin);
    other.logout();

    const err = await rejection(key.sign(data));
    expect(err.type).toBe('serverInternal');
    expect(err.message).toBe('PKCS#11 token "trellis-pin-change": the login was lost, and the token refused the PIN on logging in again (changed since start?); restart with the current PIN');
    expect((err.cause as PkiError).type).toBe('badPassphrase');
    for (const pin of [pinToken.pin, newPin]) {
      expect(everythingSaid(err)).not.toContain(pin);
      expect(inspect(ks)).not.toContain(pin);
      expect(JSON.stringify(ks)).not.toContain(pin);
    }

    // The PIN is set back: a keystore that tried again would now log in. It does not: the failure is final.
    other.login(newPin);
    other.setPin(newPin, pinToken.pin);
    other.logout();
    expect(await rejection(key.sign(data))).toBe(err);
    expect(await rejection(ks.load(key.keyId))).toBe(err);
    // A new keystore of this process on the token shares the failed login.
    expect(await rejection(keystore(pinToken).login())).toBe(err);

    // Once every keystore on the token closed, the process logs in afresh: the PIN was not locked.
    for (const k of open.splice(0)) await k.close();
    const again = await keystore(pinToken).load(key.keyId);
    expect(verifies(again, data, await again.sign(data))).toBe(true);
  });
});
