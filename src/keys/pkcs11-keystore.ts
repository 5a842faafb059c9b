/**
 * PKCS#11 keystore: CA keys generated inside a token (an HSM, or SoftHSM2 in
 * tests), sensitive and never extractable, found by label and id, signing
 * through the token.
 *
 * Why pkcs11js directly, rather than graphene-pk11 or node-webcrypto-p11
 * (both from the same authors, both built on pkcs11js): it is one small
 * maintained native binding and nothing else; it has synchronous calls (the
 * SecretSealer interface is synchronous) and asynchronous ones on libuv
 * worker threads (signatures that never block the event loop); and
 * node-webcrypto-p11 adds a WebCrypto shim whose key handling (its own key
 * ids, its own template defaults, one session per Crypto object) we would
 * have to work around, not use. What the libraries would have given us is
 * small and is here: the templates (pkcs11-objects.ts), the ECDSA signature
 * conversion from P1363 to DER (pkcs11-signing-key.ts), and the process-wide
 * bookkeeping of modules and logins (pkcs11-token.ts).
 *
 * Key ids: a generated key without a chosen id is `p11:<32 hex>`, 16 random
 * octets that are its CKA_ID, so the id a CA record stores is the one
 * `pkcs11-tool --id` and `pkcs11:id=` URIs take; a chosen id (e.g.
 * `pending-<ca>`) is its own UTF-8 CKA_ID. CKA_LABEL is the key id in both
 * cases, so operators see it in any PKCS#11 tool, and a key is found by both.
 */
import { randomBytes as nodeRandomBytes, verify, type KeyObject } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { PkiError } from '../errors/pki-error.js';
import { hashFor, keyAlgorithmOfPublicKey } from './algorithms.js';
import { attributes, boolOf, checkKeyId, findObjects, keyNameOf, keyPairTemplates, readPublicKey, tokenAlgorithm, ulongOf } from './pkcs11-objects.js';
import { Pkcs11SecretSealer, pkcs11SealerLabel } from './pkcs11-secret-sealer.js';
import { SessionPool } from './pkcs11-session-pool.js';
import { Pkcs11SigningKey } from './pkcs11-signing-key.js';
import { assertLoggedIn, call, openToken, safeCause, type Token } from './pkcs11-token.js';
import type { KeyAlgorithm, Keystore } from './signing-key.js';

type Handle = Buffer;

/** How a Pkcs11Keystore is built. */
export interface Pkcs11KeystoreOptions {
  /** Path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so). */
  modulePath: string;
  /** CKA_LABEL of the token (CK_TOKEN_INFO.label); exactly one token must have it. */
  tokenLabel: string;
  /**
   * The user PIN; copied at once, and the copy is cleared after login (or on
   * close). The login keeps it sealed in memory to log in again after a lost
   * login (pkcs11-pin-seal.ts), and wipes it when the last keystore on the
   * token closes. Never logged, never in an error.
   */
  pin: Buffer;
  /** Sessions for concurrent signatures (default 4, at most 64). */
  sessions?: number;
  /** CSPRNG for key ids and GCM IVs (default node:crypto randomBytes). Keys themselves come from the token. */
  randomBytes?: (size: number) => Buffer;
}

export { pkcs11SealerLabel };

/**
 * Generates, finds, signs with and destroys CA keys in one PKCS#11 token.
 *
 * The constructor does not touch the token: the first call loads the module
 * and logs in (`badPassphrase` for a wrong PIN). A failed login is final:
 * the keystore repeats that error without trying the token again, so a
 * retry loop cannot lock the PIN. Call {@link login} to check the PIN early.
 * When the token loses the login later, signatures and key look-ups log in
 * again once and retry once (SessionPool.runRecovering); a PIN the token
 * refuses then is final too.
 */
export class Pkcs11Keystore implements Keystore {
  readonly #opts: Omit<Pkcs11KeystoreOptions, 'pin'>;
  readonly #random: (size: number) => Buffer;
  #pin: Buffer | null;
  #token: Token | null = null;
  #pool: SessionPool | null = null;
  #sealer: Pkcs11SecretSealer | null = null;
  #sealerOpening: Promise<Pkcs11SecretSealer> | null = null;
  #failed: PkiError | null = null;
  #closed = false;

  constructor(opts: Pkcs11KeystoreOptions) {
    if (!opts.modulePath || !opts.tokenLabel) throw new PkiError('invalidConfig', 'a PKCS#11 keystore needs a module path and a token label');
    this.#opts = { modulePath: opts.modulePath, tokenLabel: opts.tokenLabel, sessions: opts.sessions ?? 4 };
    this.#random = opts.randomBytes ?? nodeRandomBytes;
    this.#pin = Buffer.from(opts.pin);
  }

  /** Loads the module and logs in, once; later calls return at once (or repeat the first failure). */
  async login(): Promise<void> {
    this.#session();
  }

  /**
   * Generates a key pair of `algorithm` inside the token, named `opts.id` (or
   * a random `p11:<32 hex>`), and returns it ready to sign. An id already
   * used by an object of the token is a `conflict` (checked before the key
   * is made: PKCS#11 has no unique constraint, so two processes choosing the
   * same id at the same moment are not told apart); an algorithm whose
   * mechanisms the token lacks is `invalidConfig`.
   */
  async generate(algorithm: KeyAlgorithm, opts: { id?: string } = {}): Promise<Pkcs11SigningKey> {
    const pool = this.#session();
    const keyId = opts.id ?? `p11:${this.#random(16).toString('hex')}`;
    checkKeyId(keyId);
    const t = tokenAlgorithm(algorithm);
    const token = this.#token!;
    const mechanisms = call('C_GetMechanismList', () => token.pkcs11.C_GetMechanismList(token.slot));
    for (const m of [t.generate, t.sign]) {
      if (!mechanisms.includes(m)) throw new PkiError('invalidConfig', `PKCS#11 token "${token.label}" does not offer mechanism 0x${m.toString(16)}, needed for ${algorithm}`);
    }
    await pool.runRecovering(async (session) => {
      assertLoggedIn(token.pkcs11, session, token.label);
      const [byLabel, byId] = keyNameOf(keyId);
      if (findObjects(token.pkcs11, session, [byLabel!]).length > 0 || findObjects(token.pkcs11, session, [byId!]).length > 0) {
        throw new PkiError('conflict', `key "${keyId}" already exists in PKCS#11 token "${token.label}"`);
      }
      const templates = keyPairTemplates(t, keyId);
      try {
        await token.pkcs11.C_GenerateKeyPairAsync(session, { mechanism: t.generate }, templates.publicKey, templates.privateKey);
      } catch (err) {
        throw new PkiError('serverInternal', `generating ${algorithm} key "${keyId}" in PKCS#11 token "${token.label}" failed`, { cause: safeCause(err) });
      }
    });
    return this.load(keyId);
  }

  /**
   * The key `keyId` of the token, ready to sign: its private key (found by
   * CKA_LABEL and CKA_ID) must be sensitive, non-extractable and able to
   * sign, its public key object must be there, and a test signature must
   * verify with it (`keyIntegrity` otherwise). `notFound` without the key.
   */
  async load(keyId: string): Promise<Pkcs11SigningKey> {
    const pool = this.#session();
    checkKeyId(keyId);
    const token = this.#token!;
    const what = `key "${keyId}" of PKCS#11 token "${token.label}"`;
    const { handle, publicKey, generation } = await pool.runRecovering((session, generation) => ({ ...this.#signingKeyObjects(session, keyId, what), generation }));
    const algorithm = keyAlgorithmOfPublicKey(publicKey);
    if (typeof algorithm !== 'string') throw new PkiError('badPublicKey', `${what} is not an algorithm Trellis holds`);
    const spkiDer = publicKey.export({ type: 'spki', format: 'der' });
    const locate = (session: Handle): Handle => {
      const found = this.#signingKeyObjects(session, keyId, what);
      if (!found.publicKey.export({ type: 'spki', format: 'der' }).equals(spkiDer)) throw new PkiError('keyIntegrity', `${what}: found again after the login was restored, it is not the key loaded before`);
      return found.handle;
    };
    const key = new Pkcs11SigningKey(keyId, algorithm, publicKey, tokenAlgorithm(algorithm), { handle, generation, locate }, pool);
    // The public object could belong to another key with the same name: one signature proves the pair.
    const challenge = this.#random(32);
    const signature = await key.sign(challenge);
    if (!verify(hashFor(algorithm), challenge, { key: publicKey, dsaEncoding: 'der' }, signature)) throw new PkiError('keyIntegrity', `${what}: its public key object does not match the private key`);
    return key;
  }

  /** The private key `keyId` (sensitive, non-extractable, able to sign) and its public key object read back; `notFound` or `keyIntegrity` otherwise. */
  #signingKeyObjects(session: Handle, keyId: string, what: string): { handle: Handle; publicKey: KeyObject } {
    const token = this.#token!;
    const [privateKey, publicObject] = this.#pair(session, keyId);
    if (!privateKey) throw new PkiError('notFound', `no ${what}`);
    if (!publicObject) throw new PkiError('keyIntegrity', `${what} has no public key object`);
    const [sensitive, extractable, canSign] = attributes(token.pkcs11, session, privateKey, [pkcs11js.CKA_SENSITIVE, pkcs11js.CKA_EXTRACTABLE, pkcs11js.CKA_SIGN]);
    if (!boolOf(sensitive!) || boolOf(extractable!) || !boolOf(canSign!)) throw new PkiError('keyIntegrity', `${what} is not a sensitive, non-extractable signing key`);
    return { handle: privateKey, publicKey: readPublicKey(token.pkcs11, session, publicObject, what) };
  }

  /** True when the token holds a private or public key named `keyId`. */
  async exists(keyId: string): Promise<boolean> {
    checkKeyId(keyId);
    return this.#session().runRecovering((session) => this.#pair(session, keyId).some((h) => h !== undefined));
  }

  /**
   * Destroys both halves of key `keyId` in the token (C_DestroyObject): no
   * PIN or backup of this keystore brings it back. `notFound` when neither
   * half is there. SigningKeys already loaded fail with `notFound` after.
   */
  async destroy(keyId: string): Promise<void> {
    checkKeyId(keyId);
    const pool = this.#session();
    const token = this.#token!;
    await pool.runRecovering((session) => {
      const found = this.#pair(session, keyId).filter((h): h is Handle => h !== undefined);
      if (found.length === 0) throw new PkiError('notFound', `no key "${keyId}" in PKCS#11 token "${token.label}"`);
      for (const h of found) call('C_DestroyObject', () => token.pkcs11.C_DestroyObject(session, h));
    });
  }

  /**
   * The instance's secret sealer: an AES-256 key in the token labelled
   * {@link pkcs11SealerLabel} (sensitive, non-extractable, encrypt and
   * decrypt only), created on first use. Each key's CKA_ID starts with its
   * creation time in milliseconds: when two processes create one at once,
   * both use the oldest and the other is destroyed (a process that reads the
   * token before the other's key is visible keeps its own; the window is one
   * C_GenerateKey).
   */
  openSecretSealer(): Promise<Pkcs11SecretSealer> {
    if (!this.#sealerOpening) {
      this.#sealerOpening = this.#openSecretSealer();
      // A failure is not kept: the next call tries again.
      this.#sealerOpening.catch(() => (this.#sealerOpening = null));
    }
    return this.#sealerOpening;
  }

  async #openSecretSealer(): Promise<Pkcs11SecretSealer> {
    const pool = this.#session();
    const token = this.#token!;
    const key = await pool.runRecovering(async (session, generation) => {
      const existing = this.#sealerKeys(session);
      if (existing.length > 0) return { ...existing[0]!, generation };
      const id = Buffer.concat([uint64(Date.now()), this.#random(8)]);
      let mine: Handle;
      try {
        mine = await token.pkcs11.C_GenerateKeyAsync(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
          { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
          { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
          { type: pkcs11js.CKA_TOKEN, value: true },
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: true },
          { type: pkcs11js.CKA_EXTRACTABLE, value: false },
          { type: pkcs11js.CKA_ENCRYPT, value: true },
          { type: pkcs11js.CKA_DECRYPT, value: true },
          { type: pkcs11js.CKA_WRAP, value: false },
          { type: pkcs11js.CKA_UNWRAP, value: false },
          { type: pkcs11js.CKA_SIGN, value: false },
          { type: pkcs11js.CKA_VERIFY, value: false },
          { type: pkcs11js.CKA_DERIVE, value: false },
          { type: pkcs11js.CKA_LABEL, value: pkcs11SealerLabel },
          { type: pkcs11js.CKA_ID, value: id },
        ]);
      } catch (err) {
        throw new PkiError('serverInternal', `generating the secret-sealing key in PKCS#11 token "${token.label}" failed`, { cause: safeCause(err) });
      }
      const oldest = this.#sealerKeys(session)[0]!;
      if (!oldest.id.equals(id)) call('C_DestroyObject', () => token.pkcs11.C_DestroyObject(session, mine));
      return { ...oldest, generation };
    });
    if (this.#closed) throw new PkiError('forbidden', 'the PKCS#11 keystore is closed');
    this.#sealer = new Pkcs11SecretSealer(token, token.openSession(), key, `p11:${key.id.toString('hex')}`, this.#random);
    return this.#sealer;
  }

  /**
   * Waits for signatures in progress, closes this keystore's sessions, and
   * releases the token (the last keystore of the process on it logs out and
   * finalizes the module); clears the PIN. Every call after is `forbidden`,
   * and so is signing with keys it loaded.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pin?.fill(0);
    this.#pin = null;
    try {
      this.#sealer?.close();
      await this.#pool?.close();
    } finally {
      this.#token?.release();
    }
  }

  /** Never print the PIN: util.inspect and JSON see only the shape. */
  toJSON(): object {
    return { keystore: 'pkcs11', module: this.#opts.modulePath, token: this.#opts.tokenLabel, closed: this.#closed };
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Pkcs11Keystore(${this.#opts.tokenLabel}, ${this.#closed ? 'closed' : this.#token ? 'logged in' : 'not logged in'})`;
  }

  /** The session pool, after logging in on first use. */
  #session(): SessionPool {
    if (this.#closed) throw new PkiError('forbidden', 'the PKCS#11 keystore is closed');
    if (this.#failed) throw this.#failed;
    // The token refused the PIN when logging in again: final for every keystore on it.
    if (this.#token?.failure) throw this.#token.failure;
    if (this.#pool) return this.#pool;
    try {
      this.#token = openToken({ modulePath: this.#opts.modulePath, tokenLabel: this.#opts.tokenLabel, pin: this.#pin! });
    } catch (err) {
      this.#failed = err instanceof PkiError ? err : new PkiError('serverInternal', 'opening the PKCS#11 token failed', { cause: safeCause(err) });
      throw this.#failed;
    } finally {
      // The login holds the PIN from here on, sealed (pkcs11-token.ts); this copy is not needed again.
      this.#pin?.fill(0);
      this.#pin = null;
    }
    this.#pool = new SessionPool(this.#token, this.#opts.sessions!);
    return this.#pool;
  }

  /** [private key, public key] named `keyId` (either may be missing); `keyIntegrity` when a name is ambiguous. */
  #pair(session: Handle, keyId: string): [Handle | undefined, Handle | undefined] {
    const token = this.#token!;
    assertLoggedIn(token.pkcs11, session, token.label);
    const out = [pkcs11js.CKO_PRIVATE_KEY, pkcs11js.CKO_PUBLIC_KEY].map((cls) => {
      const found = findObjects(token.pkcs11, session, [{ type: pkcs11js.CKA_CLASS, value: cls }, ...keyNameOf(keyId)]);
      if (found.length > 1) throw new PkiError('keyIntegrity', `${found.length} objects of PKCS#11 token "${token.label}" are named "${keyId}"`);
      return found[0];
    });
    return [out[0], out[1]];
  }

  /** Secret-sealing keys of the token, oldest (lowest CKA_ID) first. */
  #sealerKeys(session: Handle): { handle: Handle; id: Buffer }[] {
    const token = this.#token!;
    assertLoggedIn(token.pkcs11, session, token.label);
    const found = findObjects(token.pkcs11, session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_LABEL, value: pkcs11SealerLabel },
    ]);
    return found
      .map((handle) => {
        const [id, len, extractable] = attributes(token.pkcs11, session, handle, [pkcs11js.CKA_ID, pkcs11js.CKA_VALUE_LEN, pkcs11js.CKA_EXTRACTABLE]);
        if (ulongOf(len!) !== 32 || boolOf(extractable!)) throw new PkiError('keyIntegrity', `the secret-sealing key of PKCS#11 token "${token.label}" is not a non-extractable AES-256 key`);
        return { handle, id: id! };
      })
      .sort((a, b) => Buffer.compare(a.id, b.id));
  }
}

const uint64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
