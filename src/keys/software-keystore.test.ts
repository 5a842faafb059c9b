import { createHash, generateKeyPairSync, scryptSync, verify, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, test } from 'vitest';
import { refusal } from '../../test/helpers/errors.js';
import { PkiError } from '../errors/pki-error.js';
import { generatePrivateKey, hashFor } from './algorithms.js';
import { sealEnvelope } from './envelope.js';
import type { KeyBlobRecord, KeyBlobRepository } from './ports.js';
import { keyAlgorithms } from './signing-key.js';
import { SoftwareKeystore } from './software-keystore.js';

/** In-memory blob repository (the real one lives in src/store); counts writes. */
function memoryBlobs(): KeyBlobRepository & { rows: Map<string, KeyBlobRecord>; writes: number } {
  const rows = new Map<string, KeyBlobRecord>();
  const repo = {
    rows,
    writes: 0,
    async insert(b: { id: string; algorithm: string; envelope: string }) {
      if (rows.has(b.id)) throw new PkiError('conflict', `key "${b.id}" already exists`);
      repo.writes += 1;
      rows.set(b.id, { ...b, state: 'active', createdAt: new Date(0) });
    },
    async find(id: string) {
      const r = rows.get(id);
      return r ? { ...r } : null;
    },
    async setState(id: string, state: string) {
      repo.writes += 1;
      rows.get(id)!.state = state;
    },
    async destroy(id: string) {
      repo.writes += 1;
      Object.assign(rows.get(id)!, { envelope: '', state: 'destroyed' });
    },
  };
  return repo;
}

const fast = { N: 2 ** 10, r: 8, p: 1 };
const pass = 'correct horse battery staple';
const keystore = (blobs: KeyBlobRepository, passphrase: string | Buffer = pass) => new SoftwareKeystore({ blobs, passphrase, scrypt: fast });
const tbs = Buffer.from('to be signed');
const verifies = (key: { algorithm: (typeof keyAlgorithms)[number]; spkiDer: Buffer }, sig: Buffer) =>
  verify(hashFor(key.algorithm), tbs, { key: key.spkiDer, format: 'der', type: 'spki', dsaEncoding: 'der' }, sig);

describe('SoftwareKeystore: generate and load', () => {
  test.each(keyAlgorithms)('round trip: %s generated, stored encrypted, reloaded, signs verifiably', async (alg) => {
    const blobs = memoryBlobs();
    const key = await keystore(blobs).generate(alg);
    expect(key.keyId).toMatch(/^k-[0-9a-f]{32}$/);
    expect(blobs.rows.get(key.keyId)!.algorithm).toBe(alg);
    const loaded = await keystore(blobs).load(key.keyId);
    expect(loaded.algorithm).toBe(alg);
    expect(loaded.spkiDer.equals(key.spkiDer)).toBe(true);
    expect(verifies(key, await loaded.sign(tbs))).toBe(true);
  });

  test('generate never overwrites an existing id: the repository conflict propagates', async () => {
    const blobs = memoryBlobs();
    const ks = keystore(blobs);
    await ks.generate('ed25519', { id: 'same' });
    const before = blobs.rows.get('same')!.envelope;
    expect((await refusal(ks.generate('ed25519', { id: 'same' }))).type).toBe('conflict');
    expect(blobs.rows.get('same')!.envelope).toBe(before);
  });

  test('rejects: unknown id (notFound), inactive key (forbidden), bad key id, bad scrypt config', async () => {
    const blobs = memoryBlobs();
    const ks = keystore(blobs);
    expect((await refusal(ks.load('missing'))).type).toBe('notFound');
    await ks.generate('ecdsa-p256', { id: 'old' });
    await blobs.setState('old', 'retired');
    expect((await refusal(ks.load('old'))).message).toMatch(/key "old" is retired/);
    await expect(ks.verifyPassphrase('old')).resolves.toBeUndefined();
    expect((await refusal(ks.generate('ecdsa-p256', { id: '' }))).type).toBe('invalidConfig');
    expect((await refusal(ks.generate('ecdsa-p256', { id: 'a\nb' }))).type).toBe('invalidConfig');
    expect(() => new SoftwareKeystore({ blobs, passphrase: pass, scrypt: { N: 1000, r: 8, p: 1 } })).toThrow(/scrypt parameters/);
    expect(() => new SoftwareKeystore({ blobs, passphrase: pass, scrypt: { N: 2 ** 20, r: 16, p: 1 } })).toThrow(/scrypt parameters/);
  });

  test('randomness is a parameter: key ids, salts, DEKs and IVs come from it', async () => {
    let counter = 0;
    const randomBytes = (n: number) => Buffer.alloc(n, ++counter);
    const blobs = memoryBlobs();
    const key = await new SoftwareKeystore({ blobs, passphrase: pass, scrypt: fast, randomBytes }).generate('ecdsa-p256');
    expect(key.keyId).toBe(`k-${'01'.repeat(16)}`);
    expect(JSON.parse(blobs.rows.get(key.keyId)!.envelope).kdf.salt).toBe(Buffer.alloc(16, 2).toString('base64'));
  });

  test('verifyPassphrase: resolves for the right passphrase, badPassphrase otherwise', async () => {
    const blobs = memoryBlobs();
    await keystore(blobs).generate('ecdsa-p256', { id: 'k1' });
    await expect(keystore(blobs).verifyPassphrase('k1')).resolves.toBeUndefined();
    expect((await refusal(keystore(blobs, 'nope').verifyPassphrase('k1'))).type).toBe('badPassphrase');
  });

  test('importPkcs8: stores an existing key; refuses keys Trellis does not hold', async () => {
    const blobs = memoryBlobs();
    const ks = keystore(blobs);
    const pkcs8 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'der' });
    const imported = await ks.importPkcs8(pkcs8, { id: 'recovered' });
    expect(imported.algorithm).toBe('ecdsa-p384');
    const loaded = await keystore(blobs).load('recovered');
    expect(verifies(loaded, await loaded.sign(tbs))).toBe(true);
    expect((await refusal(ks.importPkcs8(pkcs8, { algorithm: 'ecdsa-p256' }))).type).toBe('badPublicKey');
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'der' });
    expect((await refusal(ks.importPkcs8(rsa1024))).message).toMatch(/RSA-1024 with e=65537/);
    expect((await refusal(ks.importPkcs8(Buffer.from('not a key')))).type).toBe('malformed');
  });
});

describe('SoftwareKeystore: one scrypt per passphrase and salt', () => {
  test('keys generated together share a salt; unlocking all of them derives once', async () => {
    const blobs = memoryBlobs();
    const gen = keystore(blobs);
    const ids = [];
    for (const alg of ['ecdsa-p256', 'ecdsa-p384', 'ed25519'] as const) ids.push((await gen.generate(alg)).keyId);
    expect(gen.derivations).toBe(1);
    const ks = keystore(blobs);
    await Promise.all(ids.map((id) => ks.load(id)));
    await ks.load(ids[0]!);
    expect(ks.derivations).toBe(1);
  });

  test('a new key reuses the salt of a key the keystore has opened', async () => {
    const blobs = memoryBlobs();
    await keystore(blobs).generate('ecdsa-p256', { id: 'root' });
    const ks = keystore(blobs);
    await ks.load('root');
    await ks.generate('ecdsa-p256', { id: 'responder' });
    const salt = (id: string) => JSON.parse(blobs.rows.get(id)!.envelope).kdf.salt;
    expect(salt('responder')).toBe(salt('root'));
    expect(ks.derivations).toBe(1);
  });

  test('forgetPassphrase keeps cached keys usable and refuses new salts; close refuses everything', async () => {
    const blobs = memoryBlobs();
    await keystore(blobs).generate('ecdsa-p256', { id: 'a' });
    await keystore(blobs).generate('ecdsa-p256', { id: 'other-salt' });
    const ks = keystore(blobs);
    const a = await ks.load('a');
    ks.forgetPassphrase();
    await expect(ks.load('a')).resolves.toBeTruthy();
    await expect(ks.generate('ed25519', { id: 'later' })).resolves.toBeTruthy();
    expect((await refusal(ks.load('other-salt'))).type).toBe('forbidden');
    ks.close();
    expect((await refusal(ks.load('a'))).type).toBe('forbidden');
    expect((await refusal(ks.generate('ed25519'))).type).toBe('forbidden');
    expect(verifies(a, await a.sign(tbs))).toBe(true);
    expect(inspect(ks)).toBe('SoftwareKeystore(closed)');
  });

  test('default scrypt parameters work (N=2^17, r=8, p=1)', async () => {
    const blobs = memoryBlobs();
    const key = await new SoftwareKeystore({ blobs, passphrase: pass }).generate('ecdsa-p256');
    expect(JSON.parse(blobs.rows.get(key.keyId)!.envelope).kdf).toMatchObject({ N: 131072, r: 8, p: 1 });
    const ks = new SoftwareKeystore({ blobs, passphrase: pass });
    const loaded = await ks.load(key.keyId);
    expect(verifies(loaded, await loaded.sign(tbs))).toBe(true);
    expect(ks.derivations).toBe(1);
  });
});

// The v2 digest recomputed as a forger would (it is unkeyed); pins the field order.
function redigest(e: any): void {
  const fields = [e.v, e.keyId, e.algorithm, e.kdf.alg, e.kdf.N, e.kdf.r, e.kdf.p, e.kdf.salt, e.check, e.wrap.alg, e.wrap.iv, e.wrap.dek, e.wrap.tag, e.data.alg, e.data.iv, e.data.ciphertext, e.data.tag];
  e.digest = createHash('sha256').update(JSON.stringify(fields)).digest('base64');
}
const flip = (b64: string) => {
  const b = Buffer.from(b64, 'base64');
  b[0]! ^= 1;
  return b.toString('base64');
};

describe('SoftwareKeystore: integrity of the envelope', () => {
  test('rejects: wrong passphrase → badPassphrase, and nothing is written', async () => {
    const blobs = memoryBlobs();
    await keystore(blobs).generate('ecdsa-p256', { id: 'k1' });
    const before = JSON.stringify([...blobs.rows]);
    const writes = blobs.writes;
    const err = await refusal(keystore(blobs, 'not the passphrase').load('k1'));
    expect(err.type).toBe('badPassphrase');
    expect(err.message).toBe('wrong passphrase for key "k1"');
    expect(JSON.stringify([...blobs.rows])).toBe(before);
    expect(blobs.writes).toBe(writes);
  });

  // Every field, edited as corruption would (digest stale) and as a forger
  // would (digest recomputed). Only a forged KDF input can pass for a wrong
  // passphrase: without the passphrase nothing tells the two apart.
  test.each<[string, (e: any) => void, string, string]>([
    ['data ciphertext', (e) => (e.data.ciphertext = flip(e.data.ciphertext)), 'keyIntegrity', 'keyIntegrity'],
    ['data tag', (e) => (e.data.tag = flip(e.data.tag)), 'keyIntegrity', 'keyIntegrity'],
    ['data iv', (e) => (e.data.iv = flip(e.data.iv)), 'keyIntegrity', 'keyIntegrity'],
    ['wrapped DEK', (e) => (e.wrap.dek = flip(e.wrap.dek)), 'keyIntegrity', 'keyIntegrity'],
    ['wrap tag', (e) => (e.wrap.tag = flip(e.wrap.tag)), 'keyIntegrity', 'keyIntegrity'],
    ['wrap iv', (e) => (e.wrap.iv = flip(e.wrap.iv)), 'keyIntegrity', 'keyIntegrity'],
    ['wrap tag truncated to 4 bytes', (e) => (e.wrap.tag = Buffer.from(e.wrap.tag, 'base64').subarray(0, 4).toString('base64')), 'keyIntegrity', 'keyIntegrity'],
    ['check value', (e) => (e.check = flip(e.check)), 'keyIntegrity', 'badPassphrase'],
    ['salt', (e) => (e.kdf.salt = flip(e.kdf.salt)), 'keyIntegrity', 'badPassphrase'],
    ['scrypt N', (e) => (e.kdf.N = 2 ** 11), 'keyIntegrity', 'badPassphrase'],
    ['scrypt r', (e) => (e.kdf.r = 4), 'keyIntegrity', 'badPassphrase'],
    ['scrypt N out of bounds (2^24)', (e) => (e.kdf.N = 2 ** 24), 'keyIntegrity', 'keyIntegrity'],
    ['key id inside the envelope', (e) => (e.keyId = 'k2'), 'keyIntegrity', 'keyIntegrity'],
    ['algorithm inside the envelope', (e) => (e.algorithm = 'ecdsa-p384'), 'keyIntegrity', 'keyIntegrity'],
    ['unknown field', (e) => (e.extra = 1), 'keyIntegrity', 'keyIntegrity'],
    ['version', (e) => (e.v = 3), 'keyIntegrity', 'keyIntegrity'],
    ['non-canonical base64', (e) => (e.data.iv = `${e.data.iv}\n`), 'keyIntegrity', 'keyIntegrity'],
  ])('rejects: edited %s', async (_field, edit, asCorrupt, asForged) => {
    for (const [forged, type] of [[false, asCorrupt], [true, asForged]] as const) {
      const blobs = memoryBlobs();
      await keystore(blobs).generate('ecdsa-p256', { id: 'k1' });
      const row = blobs.rows.get('k1')!;
      const env = JSON.parse(row.envelope);
      edit(env);
      if (forged) redigest(env);
      row.envelope = JSON.stringify(env);
      const writes = blobs.writes;
      const err = await refusal(keystore(blobs).load('k1'));
      expect([forged, err.type]).toEqual([forged, type]);
      expect(blobs.writes).toBe(writes);
    }
  });

  test('rejects: an envelope copied under another id, or relabelled to it, is keyIntegrity', async () => {
    const blobs = memoryBlobs();
    await keystore(blobs).generate('ecdsa-p256', { id: 'k1' });
    blobs.rows.set('k2', { ...blobs.rows.get('k1')!, id: 'k2' });
    expect((await refusal(keystore(blobs).load('k2'))).message).toMatch(/belongs to key "k1"/);
    // A forger also rewrites the id inside and the digest: AAD still binds the original id.
    const env = JSON.parse(blobs.rows.get('k1')!.envelope);
    env.keyId = 'k2';
    redigest(env);
    blobs.rows.get('k2')!.envelope = JSON.stringify(env);
    expect((await refusal(keystore(blobs).load('k2'))).message).toMatch(/wrapped data key does not authenticate/);
  });

  test('rejects: algorithm changed in the row', async () => {
    const blobs = memoryBlobs();
    await keystore(blobs).generate('ecdsa-p256', { id: 'k1' });
    blobs.rows.get('k1')!.algorithm = 'ecdsa-p384';
    expect((await refusal(keystore(blobs).load('k1'))).type).toBe('keyIntegrity');
    blobs.rows.get('k1')!.algorithm = 'dsa-1024';
    expect((await refusal(keystore(blobs).load('k1'))).type).toBe('keyIntegrity');
  });

  test.each([
    ['bytes that are not PKCS#8', () => Buffer.from('not a key at all'), /not PKCS#8/],
    ['a P-384 key in an envelope labelled P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'der' }), /not an ecdsa-p256 private key/],
  ])('rejects: a genuine envelope around %s', async (_name, content, message) => {
    const blobs = memoryBlobs();
    const salt = Buffer.alloc(16, 7);
    const master = scryptSync(pass, salt, 32, { ...fast });
    const envelope = sealEnvelope({ keyId: 'k1', algorithm: 'ecdsa-p256', pkcs8: content(), master, salt, params: fast, randomBytes: (n) => Buffer.alloc(n, 9) });
    await blobs.insert({ id: 'k1', algorithm: 'ecdsa-p256', envelope });
    const err = await refusal(keystore(blobs).load('k1'));
    expect(err.type).toBe('keyIntegrity');
    expect(err.message).toMatch(message);
  });
});

describe('SoftwareKeystore: the private key never leaves in clear', () => {
  /** Every encoding of `secret` that could leak: hex, base64 at each alignment, base64url. */
  function encodings(secret: Buffer): string[] {
    const out = [secret.toString('hex')];
    for (let i = 0; i < 3; i++) {
      const b64 = secret.subarray(i).toString('base64');
      out.push(b64.slice(0, Math.floor((b64.length - 4) / 4) * 4));
      out.push(secret.subarray(i).toString('base64url').slice(0, 20));
    }
    return out;
  }
  const causes = (err: unknown): string => {
    let text = '';
    for (let e: any = err; e; e = e.cause) text += `${e.message}\n${e.stack}\n${inspect(e, { depth: 10 })}\n`;
    return text;
  };

  test('the envelope, errors and inspection hold neither the PKCS#8 nor the private scalar', async () => {
    const privateKey: KeyObject = await generatePrivateKey('ecdsa-p256');
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
    const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
    const blobs = memoryBlobs();
    const key = await keystore(blobs).importPkcs8(pkcs8, { id: 'ca-key' });
    const envelope = blobs.rows.get('ca-key')!.envelope;

    const errors: PkiError[] = [await refusal(keystore(blobs, 'wrong').load('ca-key'))];
    const env = JSON.parse(envelope);
    env.data.tag = flip(env.data.tag);
    redigest(env);
    blobs.rows.set('tampered', { ...blobs.rows.get('ca-key')!, id: 'tampered', envelope: JSON.stringify({ ...env, keyId: 'tampered' }) });
    errors.push(await refusal(keystore(blobs).load('tampered')));
    errors.push(await refusal(keystore(blobs).importPkcs8(pkcs8, { algorithm: 'ed25519' })));

    const texts = { envelope, errors: errors.map(causes).join('\n'), key: `${inspect(key, { depth: 10 })}${JSON.stringify(key)}` };
    for (const [where, text] of Object.entries(texts)) {
      for (const secret of [pkcs8, d]) {
        for (const enc of encodings(secret)) expect(text.includes(enc), `${where} contains key bytes`).toBe(false);
      }
      expect(text).not.toMatch(/PRIVATE KEY/);
    }
    // The decoded fields are ciphertext, not the key.
    const fields = [env.kdf.salt, env.check, env.wrap.iv, env.wrap.dek, env.wrap.tag, env.data.iv, env.data.ciphertext, env.data.tag].map((f: string) => Buffer.from(f, 'base64'));
    for (const f of fields) {
      expect(f.includes(d)).toBe(false);
      expect(f.includes(pkcs8.subarray(0, 16))).toBe(false);
    }
    // And the loaded key still is this key.
    expect((await keystore(blobs).load('ca-key')).spkiDer.equals(key.spkiDer)).toBe(true);
  });
});

describe('SoftwareKeystore: version 1 envelopes (first keystore format)', () => {
  // Made by the v1 code (commit 445963e) with `pass` and N=2^10.
  const v1 = {
    id: 'legacy-v1',
    algorithm: 'ecdsa-p256',
    envelope:
      '{"v":1,"kdf":{"alg":"scrypt","N":1024,"r":8,"p":1,"salt":"cV/1TnIu6mumnK8RCOZWCQ==","check":"ll8Dby+9PjP3HKOrueENMQ=="},"wrap":{"alg":"A256GCM","iv":"Ph6EHkDkaIPd9NvL","tag":"iZnXR+TCijGuYVD2UZPQQQ==","dek":"G8moFf4x+5NIIR/shHrAKILi71coDVTDnYL/FDWGt1o="},"data":{"alg":"A256GCM","iv":"QFUQFpkTsa+uC2yg","tag":"MIR3OQN6nhKsBy+Slch9AA==","ciphertext":"IKEA3Pozpvs05XQU+YnuPzs/583ZGUT0vg9SSjHyhvKCEOYZPv6BZ2gqB4gsCjHQcF2LbgM5dPuXNjfpbJbxuOPKcFwy0Vq9c2Zk/2hqNaICRGFtO3z1TuIx6lHTjne7yAMuw/QHGs71SLu43aECvBc9U5Rtv3y17SnVwvZ1F6J+ZSkkmUnu9lZR"}}',
    spki: 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE5+sGCf7Fw3v8ISOoe4G6Aeed87MVdLfUlfFZI/ob4xZgFoVe2fxQJ+J8zOz3bvElNdzFsek+FEggxMahZ+xBTg==',
  };
  const withV1 = async (envelope = v1.envelope, id = v1.id) => {
    const blobs = memoryBlobs();
    await blobs.insert({ id, algorithm: v1.algorithm, envelope });
    return blobs;
  };

  test('still loads and signs; new keys of the same keystore are v2 under the same salt', async () => {
    const blobs = await withV1();
    const ks = keystore(blobs);
    const key = await ks.load(v1.id);
    expect(key.spkiDer.toString('base64')).toBe(v1.spki);
    expect(verifies(key, await key.sign(tbs))).toBe(true);
    const next = await ks.generate('ecdsa-p256', { id: 'next' });
    const env = JSON.parse(blobs.rows.get('next')!.envelope);
    expect([env.v, env.kdf.salt, ks.derivations]).toEqual([2, 'cV/1TnIu6mumnK8RCOZWCQ==', 1]);
    expect((await keystore(blobs).load('next')).spkiDer.equals(next.spkiDer)).toBe(true);
  });

  test('rejects: wrong passphrase, edited layers, a copy under another id', async () => {
    expect((await refusal(keystore(await withV1(), 'wrong').load(v1.id))).type).toBe('badPassphrase');
    const env = JSON.parse(v1.envelope);
    env.data.ciphertext = flip(env.data.ciphertext);
    expect((await refusal(keystore(await withV1(JSON.stringify(env))).load(v1.id))).type).toBe('keyIntegrity');
    // v1 has no id of its own and its check covers the id: a moved v1 envelope reads as a wrong passphrase.
    expect((await refusal(keystore(await withV1(v1.envelope, 'elsewhere')).load('elsewhere'))).type).toBe('badPassphrase');
  });
});
