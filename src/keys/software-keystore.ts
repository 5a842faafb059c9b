/**
 * Software keystore with envelope encryption (NIST SP 800-57 key wrapping):
 * each CA private key (PKCS#8 DER) is encrypted with AES-256-GCM under its own
 * random data-encryption key (DEK); the DEK is wrapped with AES-256-GCM under a
 * key-encryption key (KEK) derived from the passphrase with scrypt, whose
 * parameters are stored with the envelope. The key id and algorithm are bound
 * as additional authenticated data in both layers, so an envelope moved to
 * another id, or any modified field, fails to open. Key bytes never appear in
 * an error, a log line or an exception cause.
 */
import { createCipheriv, createDecipheriv, createHmac, createPrivateKey, generateKeyPairSync, randomBytes, scrypt as scryptCb, timingSafeEqual, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { z } from 'zod';
import { PkiError } from '../errors/pki-error.js';
import { NodeSigningKey } from './node-signing-key.js';
import type { KeyBlobRepository } from './ports.js';
import { keyAlgorithms, type KeyAlgorithm, type Keystore, type SigningKey } from './signing-key.js';

const scrypt = promisify(scryptCb) as (pw: Buffer, salt: Buffer, len: number, opts: object) => Promise<Buffer>;

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** Default cost: N=2^17, r=8 (128 MiB, ~0.3 s here): OWASP's scrypt minimum is N=2^17. */
export const defaultScrypt: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };

const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);
const envelopeSchema = z
  .object({
    v: z.literal(1),
    kdf: z.object({ alg: z.literal('scrypt'), N: z.number().int().min(2 ** 10).max(2 ** 22), r: z.number().int().min(1).max(32), p: z.number().int().min(1).max(16), salt: b64, check: b64 }).strict(),
    wrap: z.object({ alg: z.literal('A256GCM'), iv: b64, tag: b64, dek: b64 }).strict(),
    data: z.object({ alg: z.literal('A256GCM'), iv: b64, tag: b64, ciphertext: b64 }).strict(),
  })
  .strict();
type Envelope = z.infer<typeof envelopeSchema>;

function generate(algorithm: KeyAlgorithm): KeyObject {
  switch (algorithm) {
    case 'ecdsa-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'ecdsa-p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096':
      return generateKeyPairSync('rsa', { modulusLength: Number(algorithm.slice(4)), publicExponent: 0x10001 }).privateKey;
    case 'ed25519':
      return generateKeyPairSync('ed25519').privateKey;
  }
}

const aad = (keyId: string, algorithm: string, layer: string) => Buffer.from(`trellis-key-v1\n${layer}\n${keyId}\n${algorithm}`, 'utf8');

/** Tells a wrong passphrase from a modified envelope: HMAC of the key id under the KEK (reveals nothing about the KEK). */
const kekCheck = (kek: Buffer, keyId: string, algorithm: string) => createHmac('sha256', kek).update(aad(keyId, algorithm, 'check')).digest().subarray(0, 16);

function seal(key: Buffer, plaintext: Buffer, additional: Buffer): { iv: string; tag: string; ct: string } {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(additional);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return { iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), ct: ct.toString('base64') };
}

function open(key: Buffer, box: { iv: string; tag: string; ct: string }, additional: Buffer): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(box.iv, 'base64'));
  d.setAAD(additional);
  d.setAuthTag(Buffer.from(box.tag, 'base64'));
  return Buffer.concat([d.update(Buffer.from(box.ct, 'base64')), d.final()]);
}

export interface SoftwareKeystoreOptions {
  blobs: KeyBlobRepository;
  passphrase: string | Buffer;
  /** scrypt cost for new envelopes (existing ones keep theirs). */
  scrypt?: ScryptParams;
}

/**
 * The passphrase is held in memory for the keystore's life (a server unlocks
 * its CAs at start; ceremonies are short processes). Derived KEKs are cached
 * per (salt, parameters) so one unlock does not pay scrypt twice.
 */
export class SoftwareKeystore implements Keystore {
  readonly #blobs: KeyBlobRepository;
  readonly #passphrase: Buffer;
  readonly #params: ScryptParams;
  readonly #keks = new Map<string, Promise<Buffer>>();

  constructor(opts: SoftwareKeystoreOptions) {
    this.#blobs = opts.blobs;
    this.#passphrase = Buffer.from(opts.passphrase);
    this.#params = opts.scrypt ?? defaultScrypt;
  }

  #kek(salt: Buffer, p: ScryptParams): Promise<Buffer> {
    const k = `${salt.toString('base64')}:${p.N}:${p.r}:${p.p}`;
    let kek = this.#keks.get(k);
    if (!kek) {
      kek = scrypt(this.#passphrase, salt, 32, { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 1024 * 1024 });
      this.#keks.set(k, kek);
    }
    return kek;
  }

  async generate(algorithm: KeyAlgorithm, opts: { id?: string } = {}): Promise<SigningKey> {
    const keyId = opts.id ?? `k-${randomBytes(16).toString('hex')}`;
    const privateKey = generate(algorithm);
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
    try {
      const dek = randomBytes(32);
      const salt = randomBytes(16);
      const kek = await this.#kek(salt, this.#params);
      const data = seal(dek, pkcs8, aad(keyId, algorithm, 'data'));
      const wrap = seal(kek, dek, aad(keyId, algorithm, 'wrap'));
      dek.fill(0);
      const envelope: Envelope = {
        v: 1,
        kdf: { alg: 'scrypt', ...this.#params, salt: salt.toString('base64'), check: kekCheck(kek, keyId, algorithm).toString('base64') },
        wrap: { alg: 'A256GCM', iv: wrap.iv, tag: wrap.tag, dek: wrap.ct },
        data: { alg: 'A256GCM', iv: data.iv, tag: data.tag, ciphertext: data.ct },
      };
      await this.#blobs.insert({ id: keyId, algorithm, envelope: JSON.stringify(envelope) });
    } finally {
      pkcs8.fill(0);
    }
    return new NodeSigningKey(keyId, algorithm, privateKey);
  }

  async load(keyId: string): Promise<SigningKey> {
    const blob = await this.#blobs.find(keyId);
    if (!blob) throw new PkiError('notFound', `no key "${keyId}" in the keystore`);
    if (blob.state !== 'active') throw new PkiError('forbidden', `key "${keyId}" is ${blob.state}`);
    if (!(keyAlgorithms as readonly string[]).includes(blob.algorithm)) throw new PkiError('keyIntegrity', `key "${keyId}" has an unknown algorithm`);
    const algorithm = blob.algorithm as KeyAlgorithm;
    let env: Envelope;
    try {
      env = envelopeSchema.parse(JSON.parse(blob.envelope));
    } catch (err) {
      throw new PkiError('keyIntegrity', `key "${keyId}": envelope is damaged`, { cause: err instanceof z.ZodError ? new Error('envelope schema mismatch') : undefined });
    }
    const kek = await this.#kek(Buffer.from(env.kdf.salt, 'base64'), env.kdf);
    const check = Buffer.from(env.kdf.check, 'base64');
    const expected = kekCheck(kek, keyId, algorithm);
    if (check.length !== expected.length || !timingSafeEqual(check, expected)) {
      throw new PkiError('badPassphrase', `wrong passphrase for key "${keyId}"`);
    }
    let dek: Buffer;
    try {
      dek = open(kek, { iv: env.wrap.iv, tag: env.wrap.tag, ct: env.wrap.dek }, aad(keyId, algorithm, 'wrap'));
    } catch {
      // The passphrase is right (the check matched), so the wrapped DEK was modified.
      throw new PkiError('keyIntegrity', `key "${keyId}": wrapped data key was modified`);
    }
    let pkcs8: Buffer;
    try {
      pkcs8 = open(dek, { iv: env.data.iv, tag: env.data.tag, ct: env.data.ciphertext }, aad(keyId, algorithm, 'data'));
    } catch {
      // The passphrase opened the DEK, so the data layer itself was modified.
      throw new PkiError('keyIntegrity', `key "${keyId}": encrypted key was modified`);
    } finally {
      dek.fill(0);
    }
    try {
      const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
      return new NodeSigningKey(keyId, algorithm, privateKey);
    } catch {
      throw new PkiError('keyIntegrity', `key "${keyId}": decrypted key is not a valid PKCS#8 key`);
    } finally {
      pkcs8.fill(0);
    }
  }
}
