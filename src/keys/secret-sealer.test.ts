import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, test } from 'vitest';
import { PkiError } from '../errors/pki-error.js';
import type { KeyBlobRecord, KeyBlobRepository } from './ports.js';
import { secretSealingKeyId } from './secret-sealer.js';
import { SoftwareKeystore } from './software-keystore.js';

/** In-memory blob repository (the real one lives in src/store). */
function memoryBlobs(): KeyBlobRepository & { rows: Map<string, KeyBlobRecord> } {
  const rows = new Map<string, KeyBlobRecord>();
  return {
    rows,
    async insert(b) {
      if (rows.has(b.id)) throw new PkiError('conflict', `key "${b.id}" already exists`);
      rows.set(b.id, { ...b, state: 'active', createdAt: new Date(0) });
    },
    async find(id) {
      const r = rows.get(id);
      return r ? { ...r } : null;
    },
    async setState(id, state) {
      rows.get(id)!.state = state;
    },
    async destroy(id) {
      Object.assign(rows.get(id)!, { envelope: '', state: 'destroyed' });
    },
  };
}

const fast = { N: 2 ** 10, r: 8, p: 1 };
const pass = 'correct horse battery staple';
const keystore = (blobs: KeyBlobRepository, passphrase = pass) => new SoftwareKeystore({ blobs, passphrase, scrypt: fast });

/** An instance with one CA key, and a keystore that has opened it (as serve has after unlocking its issuing CAs). */
async function unlocked(blobs = memoryBlobs()) {
  const { keyId } = await keystore(blobs).generate('ecdsa-p256');
  const ks = keystore(blobs);
  await ks.load(keyId);
  return { blobs, ks, keyId };
}

async function refusal(p: Promise<unknown> | (() => unknown)): Promise<PkiError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (err instanceof PkiError) return err;
    throw err;
  }
  throw new Error('expected a PkiError');
}

describe('secret-sealing key', () => {
  test('created on first use as an envelope beside the CA keys, under the salt of the key already opened', async () => {
    const { blobs, ks, keyId } = await unlocked();
    await ks.openSecretSealer();
    const row = blobs.rows.get(secretSealingKeyId)!;
    expect(row.algorithm).toBe('secret-aes-256');
    expect(JSON.parse(row.envelope).kdf.salt).toBe(JSON.parse(blobs.rows.get(keyId)!.envelope).kdf.salt);
    expect(ks.derivations).toBe(1);
  });

  test('rejects: creating it before the passphrase opened any key (a mistyped passphrase never makes a sealing key); nothing stored', async () => {
    const blobs = memoryBlobs();
    await keystore(blobs).generate('ecdsa-p256');
    const e = await refusal(keystore(blobs, 'a mistyped passphrase').openSecretSealer());
    expect(e.type).toBe('forbidden');
    expect(blobs.rows.has(secretSealingKeyId)).toBe(false);
  });

  test('rejects: opening it with a wrong passphrase (badPassphrase)', async () => {
    const { blobs, ks } = await unlocked();
    await ks.openSecretSealer();
    expect((await refusal(keystore(blobs, 'a mistyped passphrase').openSecretSealer())).type).toBe('badPassphrase');
  });

  test('every process opens the same key: a secret sealed by one keystore opens in another (a second worker, the CLI)', async () => {
    const { blobs, ks } = await unlocked();
    const sealed = (await ks.openSecretSealer()).seal('acme-eab-hmac', 'kid-1', Buffer.from('hmac key'));
    const other = await keystore(blobs).openSecretSealer();
    expect(other.open('acme-eab-hmac', 'kid-1', sealed).toString()).toBe('hmac key');
  });

  test('two keystores creating it at once end up with the one stored first', async () => {
    const blobs = memoryBlobs();
    const { keyId } = await keystore(blobs).generate('ecdsa-p256');
    const [a, b] = [keystore(blobs), keystore(blobs)];
    await Promise.all([a.load(keyId), b.load(keyId)]);
    const [sa, sb] = await Promise.all([a.openSecretSealer(), b.openSecretSealer()]);
    expect(sb.open('instance-secret', 'n', sa.seal('instance-secret', 'n', Buffer.from('x'))).toString()).toBe('x');
  });

  test('keeps working after forgetPassphrase: a sealer opened before, and one opened after under the cached master key', async () => {
    const { blobs, ks } = await unlocked();
    const before = await ks.openSecretSealer();
    ks.forgetPassphrase();
    const sealed = before.seal('instance-secret', 'acme-nonce-hmac', Buffer.from('nonce key'));
    const after = await ks.openSecretSealer();
    expect(after.open('instance-secret', 'acme-nonce-hmac', sealed).toString()).toBe('nonce key');
    // A fresh process that created the key after forgetting: under the verified master key, no passphrase needed.
    const fresh = await unlocked(memoryBlobs());
    fresh.ks.forgetPassphrase();
    await expect(fresh.ks.openSecretSealer()).resolves.toBeDefined();
    expect(blobs.rows.has(secretSealingKeyId)).toBe(true);
  });

  test('is not a signing key: load refuses it', async () => {
    const { ks } = await unlocked();
    await ks.openSecretSealer();
    expect((await refusal(ks.load(secretSealingKeyId))).type).toBe('forbidden');
  });

  test('rejects: a sealing key envelope relabelled as another algorithm, or edited (keyIntegrity)', async () => {
    const { blobs, ks } = await unlocked();
    await ks.openSecretSealer();
    const row = blobs.rows.get(secretSealingKeyId)!;
    blobs.rows.set(secretSealingKeyId, { ...row, algorithm: 'ecdsa-p256' });
    expect((await refusal(keystore(blobs).openSecretSealer())).type).toBe('keyIntegrity');
    const env = JSON.parse(row.envelope);
    env.data.ciphertext = Buffer.from(randomBytes(32)).toString('base64');
    blobs.rows.set(secretSealingKeyId, { ...row, envelope: JSON.stringify(env) });
    expect((await refusal(keystore(blobs).openSecretSealer())).type).toBe('keyIntegrity');
  });
});

describe('sealed secrets', () => {
  test('round trip; the stored bytes carry the versioned header and not the secret', async () => {
    const sealer = await (await unlocked()).ks.openSecretSealer();
    const secret = randomBytes(32);
    const sealed = sealer.seal('acme-eab-hmac', 'kid-abc', secret);
    expect(sealed.subarray(0, 8).toString('latin1')).toBe('TRLSSEC\x01');
    expect(sealed.length).toBe(8 + 12 + 32 + 16);
    expect(sealed.includes(secret)).toBe(false);
    expect(sealer.isSealed(sealed)).toBe(true);
    expect(sealer.isSealed(secret)).toBe(false);
    expect(sealer.open('acme-eab-hmac', 'kid-abc', sealed).equals(secret)).toBe(true);
    // Fresh IVs: the same secret seals differently each time.
    expect(sealer.seal('acme-eab-hmac', 'kid-abc', secret).equals(sealed)).toBe(false);
  });

  test.each([
    ['copied to another row (another EAB key id)', (s: Buffer) => ({ purpose: 'acme-eab-hmac', id: 'kid-other', stored: s })],
    ['used for another purpose (an instance secret of the same name)', (s: Buffer) => ({ purpose: 'instance-secret', id: 'kid-abc', stored: s })],
    ['one ciphertext octet changed', (s: Buffer) => ({ purpose: 'acme-eab-hmac', id: 'kid-abc', stored: Buffer.from(s.map((b, i) => (i === 25 ? b ^ 1 : b))) })],
    ['the tag cut short', (s: Buffer) => ({ purpose: 'acme-eab-hmac', id: 'kid-abc', stored: s.subarray(0, s.length - 4) })],
    ['no header (a value stored in clear)', () => ({ purpose: 'acme-eab-hmac', id: 'kid-abc', stored: randomBytes(32) })],
  ])('rejects: a sealed secret %s (keyIntegrity)', async (_, change) => {
    const sealer = await (await unlocked()).ks.openSecretSealer();
    const { purpose, id, stored } = change(sealer.seal('acme-eab-hmac', 'kid-abc', randomBytes(32)));
    const e = await refusal(() => sealer.open(purpose, id, stored));
    expect(e.type).toBe('keyIntegrity');
  });

  test('another instance (another sealing key) cannot open it', async () => {
    const a = await (await unlocked()).ks.openSecretSealer();
    const b = await (await unlocked()).ks.openSecretSealer();
    expect((await refusal(() => b.open('instance-secret', 'n', a.seal('instance-secret', 'n', Buffer.from('x'))))).type).toBe('keyIntegrity');
  });

  test('the sealer never prints its key', async () => {
    const sealer = await (await unlocked()).ks.openSecretSealer();
    expect(inspect(sealer)).toBe(`SecretSealer(${secretSealingKeyId})`);
    expect(JSON.stringify(sealer)).toBe(`{"secretSealer":"${secretSealingKeyId}"}`);
  });
});
