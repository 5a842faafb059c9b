import { verify } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, test } from 'vitest';
import { PkiError } from '../errors/pki-error.js';
import { refusal } from '../../test/helpers/errors.js';
import type { KeyBlobRecord, KeyBlobRepository } from './ports.js';
import { SoftwareKeystore } from './software-keystore.js';
import { keyAlgorithms } from './signing-key.js';
import { hashFor } from './node-signing-key.js';

/** In-memory blob repository (the real one lives in src/store). */
function memoryBlobs(): KeyBlobRepository & { rows: Map<string, KeyBlobRecord> } {
  const rows = new Map<string, KeyBlobRecord>();
  return {
    rows,
    async insert(b) {
      if (rows.has(b.id)) throw new PkiError('conflict', `key ${b.id} exists`);
      rows.set(b.id, { ...b, state: 'active', createdAt: new Date(0) });
    },
    async find(id) {
      const r = rows.get(id);
      return r ? { ...r } : null;
    },
    async setState(id, state) {
      rows.get(id)!.state = state;
    },
  };
}

const fast = { N: 2 ** 10, r: 8, p: 1 };
const pass = 'correct horse battery staple';

describe('SoftwareKeystore', () => {
  test.each(keyAlgorithms)('round trip: %s generated, stored encrypted, reloaded, signs verifiably', async (alg) => {
    const blobs = memoryBlobs();
    const ks = new SoftwareKeystore({ blobs, passphrase: pass, scrypt: fast });
    const key = await ks.generate(alg);
    const loaded = await new SoftwareKeystore({ blobs, passphrase: pass, scrypt: fast }).load(key.keyId);
    expect(loaded.spkiDer.equals(key.spkiDer)).toBe(true);
    const msg = Buffer.from('to be signed');
    const sig = await loaded.sign(msg);
    expect(verify(hashFor(alg), msg, { key: loaded.publicKey, dsaEncoding: 'der' }, sig)).toBe(true);
  });

  test('the envelope, errors and inspection never contain the private key', async () => {
    const blobs = memoryBlobs();
    const ks = new SoftwareKeystore({ blobs, passphrase: pass, scrypt: fast });
    const key = await ks.generate('ecdsa-p256', { id: 'ca-key' });
    const envelope = blobs.rows.get('ca-key')!.envelope;
    expect(envelope).not.toMatch(/PRIVATE KEY/);
    expect(inspect(key)).toBe('NodeSigningKey(ca-key, ecdsa-p256)');
    expect(JSON.stringify(key)).toBe('{"keyId":"ca-key","algorithm":"ecdsa-p256"}');
    const err = await refusal(new SoftwareKeystore({ blobs, passphrase: 'wrong passphrase', scrypt: fast }).load('ca-key'));
    const all = `${err.message}\n${err.stack}\n${String(err.cause ?? '')}`;
    expect(all).not.toMatch(/PRIVATE KEY|MIG/);
  });

  test('rejects: wrong passphrase → badPassphrase, and nothing changes', async () => {
    const blobs = memoryBlobs();
    await new SoftwareKeystore({ blobs, passphrase: pass, scrypt: fast }).generate('ecdsa-p256', { id: 'k1' });
    const before = JSON.stringify([...blobs.rows]);
    const err = await refusal(new SoftwareKeystore({ blobs, passphrase: 'not the passphrase', scrypt: fast }).load('k1'));
    expect(err.type).toBe('badPassphrase');
    expect(err.message).toMatch(/wrong passphrase for key "k1"/);
    expect(JSON.stringify([...blobs.rows])).toBe(before);
  });

  const flip = (b64: string) => {
    const b = Buffer.from(b64, 'base64');
    b[0]! ^= 1;
    return b.toString('base64');
  };
  test.each<[string, (e: any) => void, string]>([
    ['ciphertext', (e) => (e.data.ciphertext = flip(e.data.ciphertext)), 'keyIntegrity'],
    ['data tag', (e) => (e.data.tag = flip(e.data.tag)), 'keyIntegrity'],
    ['data iv', (e) => (e.data.iv = flip(e.data.iv)), 'keyIntegrity'],
    ['wrapped DEK', (e) => (e.wrap.dek = flip(e.wrap.dek)), 'keyIntegrity'],
    ['wrap tag', (e) => (e.wrap.tag = flip(e.wrap.tag)), 'keyIntegrity'],
    ['salt', (e) => (e.kdf.salt = flip(e.kdf.salt)), 'badPassphrase'],
    ['scrypt N', (e) => (e.kdf.N = 2 ** 11), 'badPassphrase'],
    ['unknown field', (e) => (e.extra = 1), 'keyIntegrity'],
  ])('rejects: tampered %s', async (_field, tamper, type) => {
    const blobs = memoryBlobs();
    await new SoftwareKeystore({ blobs, passphrase: pass, scrypt: fast }).generate('ecdsa-p256', { id: 'k1' });
    const row = blobs.rows.get('k1')!;
    const env = JSON.parse(row.envelope);
    tamper(env);
    row.envelope = JSON.stringify(env);
    const err = await refusal(new SoftwareKeystore({ blobs, passphrase: pass, scrypt: fast }).load('k1'));
    expect(err.type).toBe(type);
  });

  test('rejects: an envelope moved to another key id (id is bound as AAD)', async () => {
    const blobs = memoryBlobs();
    await new SoftwareKeystore({ blobs, passphrase: pass, scrypt: fast }).generate('ecdsa-p256', { id: 'k1' });
    blobs.rows.set('k2', { ...blobs.rows.get('k1')!, id: 'k2' });
    const err = await refusal(new SoftwareKeystore({ blobs, passphrase: pass, scrypt: fast }).load('k2'));
    expect(['badPassphrase', 'keyIntegrity']).toContain(err.type);
  });

  test('rejects: algorithm label changed in storage', async () => {
    const blobs = memoryBlobs();
    await new SoftwareKeystore({ blobs, passphrase: pass, scrypt: fast }).generate('ecdsa-p256', { id: 'k1' });
    blobs.rows.get('k1')!.algorithm = 'ecdsa-p384';
    expect((await refusal(new SoftwareKeystore({ blobs, passphrase: pass, scrypt: fast }).load('k1'))).type).toMatch(/badPassphrase|keyIntegrity/);
  });

  test('generate never overwrites an existing id; unknown ids are notFound', async () => {
    const blobs = memoryBlobs();
    const ks = new SoftwareKeystore({ blobs, passphrase: pass, scrypt: fast });
    await ks.generate('ed25519', { id: 'same' });
    expect((await refusal(ks.generate('ed25519', { id: 'same' }))).type).toBe('conflict');
    expect((await refusal(ks.load('missing'))).type).toBe('notFound');
  });

  test('default scrypt parameters work (N=2^17)', async () => {
    const blobs = memoryBlobs();
    const key = await new SoftwareKeystore({ blobs, passphrase: pass }).generate('ecdsa-p256');
    expect(JSON.parse(blobs.rows.get(key.keyId)!.envelope).kdf).toMatchObject({ N: 131072, r: 8, p: 1 });
    await expect(new SoftwareKeystore({ blobs, passphrase: pass }).load(key.keyId)).resolves.toBeTruthy();
  });
});
