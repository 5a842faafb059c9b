/**
 * The encrypted key envelope of the software keystore (JSON text, versioned).
 *
 * Version 2, written by this code:
 *
 * ```
 * { "v": 2, "keyId": "k-…", "algorithm": "ecdsa-p256",
 *   "kdf":  { "alg": "scrypt", "N": 131072, "r": 8, "p": 1, "salt": b64(16) },
 *   "check": b64(16),   HMAC-SHA256(checkKey, KDF header)[0..16]: a passphrase verifier
 *   "wrap": { "alg": "A256GCM", "iv": b64(12), "dek": b64(32), "tag": b64(16) },
 *   "data": { "alg": "A256GCM", "iv": b64(12), "ciphertext": b64, "tag": b64(16) },
 *   "digest": b64(32) } SHA-256 over every other field, in a fixed order
 * ```
 *
 * master = scrypt(passphrase, salt, 32, N, r, p); wrapKey and checkKey are
 * HKDF-SHA256(master, info) subkeys (RFC 5869), so no key serves two
 * primitives. The DEK (32 random bytes, one per key) encrypts the PKCS#8 DER;
 * wrapKey encrypts the DEK (NIST SP 800-38D GCM, 96-bit random IVs, 128-bit
 * tags). Both layers take the header (version, key id, algorithm, KDF
 * parameters and salt) as additional authenticated data, so an envelope copied
 * under another id, or relabelled, does not open. The check value covers only
 * the KDF inputs: it reveals no more than the wrapped DEK already does (both let
 * an attacker test a guessed passphrase), and it is the same for every key
 * sharing a salt.
 *
 * How a failure is reported: the digest is unkeyed, so it proves nothing
 * against a forger, but it catches any edited or corrupt field before scrypt
 * runs and names it `keyIntegrity`. The check value then tells a wrong
 * passphrase (`badPassphrase`) from a modified wrap or data layer
 * (`keyIntegrity`). A forger who also recomputes the digest still fails at a
 * GCM tag; only the error type may then read `badPassphrase`.
 *
 * Version 1 (the first keystore: no copy of id/algorithm, no digest, the
 * scrypt output used directly) is still read; a salt or N edited in a v1
 * envelope reads as `badPassphrase`.
 *
 * The same v2 format holds the instance's secret-sealing key (see
 * secret-sealer.ts): algorithm `secret-aes-256`, and the data layer encrypts
 * its 32 raw octets instead of a PKCS#8 key.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { PkiError } from '../errors/pki-error.js';
import { keyAlgorithms, type KeyAlgorithm } from './signing-key.js';

/** Algorithm of the envelope holding the secret-sealing key: 32 random octets for AES-256-GCM, never a signing key. */
export const secretKeyAlgorithm = 'secret-aes-256' as const;
/** What an envelope may hold: a signing key of {@link keyAlgorithms}, or the secret-sealing key. */
export type EnvelopeAlgorithm = KeyAlgorithm | typeof secretKeyAlgorithm;
const envelopeAlgorithms = [...keyAlgorithms, secretKeyAlgorithm] as const;

/** scrypt cost parameters (RFC 7914 §2): CPU/memory cost N (a power of two), block size r, parallelism p. */
export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/**
 * Default cost for new envelopes: N=2^17, r=8, p=1 (128 MiB, ~0.4 s on one
 * core; OWASP's password storage minimum for scrypt). Envelopes keep the
 * parameters they were made with.
 */
export const defaultScrypt: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };

// Bounds for parameters read from storage or configuration: an edited
// envelope must not make scrypt allocate gigabytes.
const maxScryptMemory = 2 ** 30;

/** True when `p` is within the bounds this keystore derives with (N a power of two ≥ 2^10, ≤ 1 GiB). */
export function scryptParamsOk(p: ScryptParams): boolean {
  return (
    Number.isSafeInteger(p.N) && Number.isSafeInteger(p.r) && Number.isSafeInteger(p.p) &&
    p.N >= 2 ** 10 && (p.N & (p.N - 1)) === 0 && p.r >= 1 && p.r <= 32 && p.p >= 1 && p.p <= 16 &&
    128 * p.N * p.r <= maxScryptMemory
  );
}

/** node:crypto scrypt options for `p`, with `maxmem` just above what they need (128·r·(N+p+2) bytes). */
export function scryptOptions(p: ScryptParams): { N: number; r: number; p: number; maxmem: number } {
  return { N: p.N, r: p.r, p: p.p, maxmem: 128 * p.r * (p.N + p.p + 2) + 2 ** 20 };
}

type Layer = 'check' | 'wrap' | 'data';

/** One AES-256-GCM box. */
interface Sealed {
  readonly iv: Buffer;
  readonly ct: Buffer;
  readonly tag: Buffer;
}

/** A parsed envelope of either version: everything `unwrapDek` and `decryptKey` need. */
export interface ParsedEnvelope {
  readonly version: 1 | 2;
  readonly keyId: string;
  readonly algorithm: EnvelopeAlgorithm;
  readonly kdf: ScryptParams & { readonly salt: Buffer };
  readonly check: Buffer;
  readonly wrap: Sealed;
  readonly data: Sealed;
}

// Canonical base64 only: Buffer.from() silently skips junk, so the text must
// re-encode to itself.
const b64 = (bytes?: number) =>
  z.string().refine((s) => {
    const b = Buffer.from(s, 'base64');
    return b.toString('base64') === s && (bytes === undefined || b.length === bytes);
  });
const kdfFields = { alg: z.literal('scrypt'), N: z.number(), r: z.number(), p: z.number(), salt: b64(16) };

const v2Schema = z
  .object({
    v: z.literal(2),
    keyId: z.string(),
    algorithm: z.enum(envelopeAlgorithms),
    kdf: z.object(kdfFields).strict(),
    check: b64(16),
    wrap: z.object({ alg: z.literal('A256GCM'), iv: b64(12), dek: b64(32), tag: b64(16) }).strict(),
    data: z.object({ alg: z.literal('A256GCM'), iv: b64(12), ciphertext: b64(), tag: b64(16) }).strict(),
    digest: b64(32),
  })
  .strict();
type EnvelopeV2 = z.infer<typeof v2Schema>;

const v1Schema = z
  .object({
    v: z.literal(1),
    kdf: z.object({ ...kdfFields, check: b64(16) }).strict(),
    wrap: z.object({ alg: z.literal('A256GCM'), iv: b64(12), tag: b64(16), dek: b64(32) }).strict(),
    data: z.object({ alg: z.literal('A256GCM'), iv: b64(12), tag: b64(16), ciphertext: b64() }).strict(),
  })
  .strict();

/** The header every v2 layer authenticates: JSON, so no field can bleed into the next. */
function headerV2(e: Pick<ParsedEnvelope, 'keyId' | 'algorithm' | 'kdf'>, layer: Layer): Buffer {
  const { N, r, p, salt } = e.kdf;
  const kdf = ['scrypt', N, r, p, salt.toString('base64')];
  // The check value verifies the passphrase for these KDF inputs only, so a
  // relabelled envelope passes it and then fails the wrap layer as keyIntegrity.
  const fields = layer === 'check' ? ['trellis-key-envelope', 2, layer, ...kdf] : ['trellis-key-envelope', 2, layer, e.keyId, e.algorithm, ...kdf];
  return Buffer.from(JSON.stringify(fields), 'utf8');
}

const headerV1 = (keyId: string, algorithm: string, layer: Layer) => Buffer.from(`trellis-key-v1\n${layer}\n${keyId}\n${algorithm}`, 'utf8');

function aad(e: ParsedEnvelope, layer: Layer): Buffer {
  return e.version === 2 ? headerV2(e, layer) : headerV1(e.keyId, e.algorithm, layer);
}

/** The v2 wrap or check subkey of a scrypt master key; v1 used the master key itself. */
function subkey(version: 1 | 2, master: Buffer, use: 'wrap' | 'check'): Buffer {
  return version === 1 ? master : Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `trellis-key-envelope v2 ${use}`, 32));
}

function checkValue(e: ParsedEnvelope, master: Buffer): Buffer {
  return createHmac('sha256', subkey(e.version, master, 'check')).update(aad(e, 'check')).digest().subarray(0, 16);
}

function digestV2(e: Omit<EnvelopeV2, 'digest'>): string {
  const fields = [e.v, e.keyId, e.algorithm, e.kdf.alg, e.kdf.N, e.kdf.r, e.kdf.p, e.kdf.salt, e.check, e.wrap.alg, e.wrap.iv, e.wrap.dek, e.wrap.tag, e.data.alg, e.data.iv, e.data.ciphertext, e.data.tag];
  return createHash('sha256').update(JSON.stringify(fields)).digest('base64');
}

function seal(key: Buffer, iv: Buffer, plaintext: Buffer, additional: Buffer): Sealed {
  const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  c.setAAD(additional);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return { iv, ct, tag: c.getAuthTag() };
}

/** Opens a GCM box, or returns null when the tag does not verify. Clears the plaintext pieces it copied. */
function open(key: Buffer, box: Sealed, additional: Buffer): Buffer | null {
  // authTagLength pins the tag to 16 bytes: a truncated tag would make forgery cheaper.
  const d = createDecipheriv('aes-256-gcm', key, box.iv, { authTagLength: 16 });
  d.setAAD(additional);
  d.setAuthTag(box.tag);
  const head = d.update(box.ct);
  try {
    const tail = d.final();
    return Buffer.concat([head, tail]);
  } catch {
    // The only failure left after the schema checks is a tag mismatch; the
    // caller reports it with the envelope's context.
    return null;
  } finally {
    head.fill(0);
  }
}

/** What `sealEnvelope` encrypts and under what. */
export interface SealInput {
  readonly keyId: string;
  readonly algorithm: EnvelopeAlgorithm;
  /** The PKCS#8 DER to protect (raw octets for the secret-sealing key); the caller clears it afterwards. */
  readonly pkcs8: Buffer;
  /** scrypt(passphrase, salt, 32, params). */
  readonly master: Buffer;
  readonly salt: Buffer;
  readonly params: ScryptParams;
  readonly randomBytes: (size: number) => Buffer;
}

/** Encrypts a PKCS#8 key into a v2 envelope (JSON text) under a fresh DEK. */
export function sealEnvelope(input: SealInput): string {
  const header = { version: 2 as const, keyId: input.keyId, algorithm: input.algorithm, kdf: { ...input.params, salt: input.salt } };
  const dek = input.randomBytes(32);
  try {
    const data = seal(dek, input.randomBytes(12), input.pkcs8, headerV2(header, 'data'));
    const wrapKey = subkey(2, input.master, 'wrap');
    const wrap = seal(wrapKey, input.randomBytes(12), dek, headerV2(header, 'wrap'));
    wrapKey.fill(0);
    const check = checkValue({ ...header, check: Buffer.alloc(0), wrap, data }, input.master);
    const body: Omit<EnvelopeV2, 'digest'> = {
      v: 2,
      keyId: input.keyId,
      algorithm: input.algorithm,
      kdf: { alg: 'scrypt', N: input.params.N, r: input.params.r, p: input.params.p, salt: input.salt.toString('base64') },
      check: check.toString('base64'),
      wrap: { alg: 'A256GCM', iv: wrap.iv.toString('base64'), dek: wrap.ct.toString('base64'), tag: wrap.tag.toString('base64') },
      data: { alg: 'A256GCM', iv: data.iv.toString('base64'), ciphertext: data.ct.toString('base64'), tag: data.tag.toString('base64') },
    };
    return JSON.stringify({ ...body, digest: digestV2(body) });
  } finally {
    dek.fill(0);
  }
}

const damaged = (keyId: string, what: string) => new PkiError('keyIntegrity', `key "${keyId}": ${what}`);
const bytes = (s: string) => Buffer.from(s, 'base64');

/**
 * Parses a stored envelope and checks everything that needs no passphrase:
 * JSON shape, version, digest, scrypt bounds, and that it belongs to this row's
 * id and algorithm. Any failure is `keyIntegrity`.
 */
export function parseEnvelope(row: { id: string; algorithm: string; envelope: string }): ParsedEnvelope {
  const keyId = row.id;
  if (!(envelopeAlgorithms as readonly string[]).includes(row.algorithm)) throw damaged(keyId, 'stored with an unknown algorithm');
  const algorithm = row.algorithm as EnvelopeAlgorithm;
  let json: unknown;
  try {
    json = JSON.parse(row.envelope);
  } catch (err) {
    throw new PkiError('keyIntegrity', `key "${keyId}": envelope is not JSON`, { cause: err });
  }
  const version = (json as { v?: unknown } | null)?.v;
  let parsed: ParsedEnvelope;
  if (version === 2) {
    const r = v2Schema.safeParse(json);
    if (!r.success) throw new PkiError('keyIntegrity', `key "${keyId}": envelope does not match the v2 format`, { cause: r.error });
    const { digest, ...body } = r.data;
    if (!timingSafeEqual(bytes(digest), bytes(digestV2(body)))) throw damaged(keyId, 'envelope digest does not match (edited or corrupt)');
    if (body.keyId !== keyId || body.algorithm !== algorithm) throw damaged(keyId, `envelope belongs to key "${body.keyId}" (${body.algorithm}), not to this ${algorithm} key`);
    const e = body;
    parsed = {
      version: 2,
      keyId,
      algorithm,
      kdf: { N: e.kdf.N, r: e.kdf.r, p: e.kdf.p, salt: bytes(e.kdf.salt) },
      check: bytes(e.check),
      wrap: { iv: bytes(e.wrap.iv), ct: bytes(e.wrap.dek), tag: bytes(e.wrap.tag) },
      data: { iv: bytes(e.data.iv), ct: bytes(e.data.ciphertext), tag: bytes(e.data.tag) },
    };
  } else if (version === 1) {
    // Version 1 predates the secret-sealing key: it only ever held signing keys.
    if (algorithm === secretKeyAlgorithm) throw damaged(keyId, 'a secret-sealing key is never in a v1 envelope');
    const r = v1Schema.safeParse(json);
    if (!r.success) throw new PkiError('keyIntegrity', `key "${keyId}": envelope does not match the v1 format`, { cause: r.error });
    const e = r.data;
    parsed = {
      version: 1,
      keyId,
      algorithm,
      kdf: { N: e.kdf.N, r: e.kdf.r, p: e.kdf.p, salt: bytes(e.kdf.salt) },
      check: bytes(e.kdf.check),
      wrap: { iv: bytes(e.wrap.iv), ct: bytes(e.wrap.dek), tag: bytes(e.wrap.tag) },
      data: { iv: bytes(e.data.iv), ct: bytes(e.data.ciphertext), tag: bytes(e.data.tag) },
    };
  } else {
    throw damaged(keyId, 'envelope has an unknown version');
  }
  if (!scryptParamsOk(parsed.kdf)) throw damaged(keyId, 'envelope has scrypt parameters out of bounds');
  return parsed;
}

/**
 * Unwraps the DEK with the scrypt master key: `badPassphrase` when the check
 * value does not match, `keyIntegrity` when it does but the wrap layer does
 * not open. The caller clears the returned DEK.
 */
export function unwrapDek(e: ParsedEnvelope, master: Buffer): Buffer {
  const expected = checkValue(e, master);
  if (!timingSafeEqual(expected, e.check)) throw new PkiError('badPassphrase', `wrong passphrase for key "${e.keyId}"`);
  const wrapKey = subkey(e.version, master, 'wrap');
  try {
    const dek = open(wrapKey, e.wrap, aad(e, 'wrap'));
    if (!dek) throw damaged(e.keyId, 'wrapped data key does not authenticate (modified)');
    return dek;
  } finally {
    if (wrapKey !== master) wrapKey.fill(0);
  }
}

/** Decrypts the PKCS#8 DER with the DEK (`keyIntegrity` when it does not authenticate). The caller clears it. */
export function decryptKey(e: ParsedEnvelope, dek: Buffer): Buffer {
  const pkcs8 = open(dek, e.data, aad(e, 'data'));
  if (!pkcs8) throw damaged(e.keyId, 'encrypted key does not authenticate (modified)');
  return pkcs8;
}
