/**
 * The device-attest-01 challenge (draft-ietf-acme-device-attest): the client
 * answers with `attObj`, a base64url CBOR WebAuthn attestation object
 * (`fmt`, `attStmt`, `authData`). Supported: fmt `packed` with `x5c`, as a
 * device's factory identity makes it: `sig` is the IDevID key's signature over
 * `authData || clientDataHash`, where clientDataHash is SHA-256 of the
 * challenge's key authorization (so an attestation made for one challenge
 * token never verifies for another); the x5c chain must end at a registered
 * manufacturer CA (the same check EST makes, `chainTo`) and its leaf must
 * name the ordered device id. The attested key is the credential public key
 * in `authData` (COSE); finalize refuses a CSR with any other key.
 */
import { createHash, createPublicKey, verify as verifySignature, X509Certificate, type KeyObject } from 'node:crypto';
import { decode, decodeFirst } from 'cborg';
import { PkiError } from '../../errors/pki-error.js';
import { chainTo, idevidDeviceId } from '../devices/enroll.js';

export interface DeviceAttestInput {
  /** The challenge response's `attObj` member, as sent. */
  attObj: unknown;
  /** RFC 8555 §8.1: token "." base64url(account key thumbprint). */
  keyAuthorization: string;
  /** The `permanent-identifier` value of the authorization. */
  deviceId: string;
  /** Registered manufacturer CAs (DER). */
  manufacturerCas: readonly { name: string; certDer: Buffer }[];
  now: Date;
}

export interface DeviceAttestation {
  deviceId: string;
  /** SubjectPublicKeyInfo (DER) of the attested key: the key the certificate must be for. */
  attestedSpkiDer: Buffer;
  /** Name of the manufacturer CA the attestation chain ends at. */
  manufacturer: string;
}

const maxAttObjBytes = 16 * 1024;
const bad = (detail: string, cause?: unknown) => new PkiError('badAttestationStatement', detail, cause === undefined ? undefined : { cause });

/** COSE algorithm identifiers (RFC 9053) for the attestation signature, as Node verifies them. */
const coseAlgs = new Map<number, { hash: string | null; name: string }>([
  [-7, { hash: 'sha256', name: 'ES256' }],
  [-35, { hash: 'sha384', name: 'ES384' }],
  [-36, { hash: 'sha512', name: 'ES512' }],
  [-257, { hash: 'sha256', name: 'RS256' }],
  [-8, { hash: null, name: 'EdDSA' }],
]);

/** COSE EC2 curves (RFC 9053 §7.1) as JWK names. */
const coseCurves = new Map<number, { crv: string; size: number }>([
  [1, { crv: 'P-256', size: 32 }],
  [2, { crv: 'P-384', size: 48 }],
  [3, { crv: 'P-521', size: 66 }],
]);

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

/** Decodes the base64url text of `attObj`; not text or not base64url is `malformed`. */
function attObjBytes(raw: unknown): Buffer {
  if (typeof raw !== 'string' || raw.length === 0) throw new PkiError('malformed', 'device-attest-01 needs "attObj": the base64url CBOR attestation object');
  if (!/^[A-Za-z0-9_-]+$/.test(raw)) throw new PkiError('malformed', '"attObj" is not base64url');
  const bytes = Buffer.from(raw, 'base64url');
  if (bytes.length > maxAttObjBytes) throw new PkiError('malformed', `"attObj" is larger than ${maxAttObjBytes} bytes`);
  return bytes;
}

/** A COSE_Key (RFC 9052 §7) as a Node public key: EC2 (P-256/384/521) or OKP Ed25519. */
function coseKey(map: unknown): KeyObject {
  if (!(map instanceof Map)) throw bad('the credential public key in authData is not a COSE key (CBOR map)');
  const kty = map.get(1);
  try {
    if (kty === 2) {
      const curve = coseCurves.get(map.get(-1) as number);
      const x = map.get(-2);
      const y = map.get(-3);
      if (!curve || !isBytes(x) || !isBytes(y) || x.length !== curve.size || y.length !== curve.size) throw bad('the attested COSE EC2 key has an unsupported curve or bad coordinates');
      return createPublicKey({ key: { kty: 'EC', crv: curve.crv, x: Buffer.from(x).toString('base64url'), y: Buffer.from(y).toString('base64url') }, format: 'jwk' });
    }
    if (kty === 1) {
      const x = map.get(-2);
      if (map.get(-1) !== 6 || !isBytes(x) || x.length !== 32) throw bad('the attested COSE OKP key is not Ed25519');
      return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(x).toString('base64url') }, format: 'jwk' });
    }
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw bad('the attested COSE key is not a valid public key', err);
  }
  throw bad(`the attested COSE key type ${String(kty)} is not supported (EC2, OKP)`);
}

/**
 * WebAuthn authenticator data (§6.1): rpIdHash(32) flags(1) signCount(4),
 * then, with flag AT (0x40), aaguid(16) credentialIdLength(2) credentialId
 * credentialPublicKey (COSE, CBOR). Returns the attested key.
 */
function attestedKey(authData: Uint8Array): KeyObject {
  if (authData.length < 37) throw bad('authData is shorter than 37 bytes');
  const flags = authData[32]!;
  if ((flags & 0x40) === 0) throw bad('authData carries no attested credential data (flag AT is not set)');
  let at = 37 + 16;
  if (authData.length < at + 2) throw bad('authData ends inside the attested credential data');
  const idLen = (authData[at]! << 8) | authData[at + 1]!;
  at += 2 + idLen;
  if (authData.length <= at) throw bad('authData ends before the credential public key');
  let key: unknown;
  try {
    [key] = decodeFirst(authData.subarray(at), { useMaps: true });
  } catch (err) {
    throw bad('the credential public key in authData is not valid CBOR', err);
  }
  return coseKey(key);
}

/**
 * Verifies a device-attest-01 response for `deviceId`. Every refusal is a
 * PkiError: `malformed` when `attObj` is not base64url text,
 * `badAttestationStatement` for everything about the statement itself
 * (CBOR, format, signature, chain, device id).
 */
export function verifyDeviceAttestation(input: DeviceAttestInput): DeviceAttestation {
  const bytes = attObjBytes(input.attObj);
  let obj: unknown;
  try {
    obj = decode(bytes);
  } catch (err) {
    throw bad(`attObj is not valid CBOR: ${(err as Error).message.slice(0, 120)}`, err);
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj) || isBytes(obj)) throw bad('attObj is not a CBOR map');
  const { fmt, attStmt, authData } = obj as Record<string, unknown>;
  if (typeof fmt !== 'string') throw bad('attObj has no "fmt"');
  if (fmt !== 'packed') throw bad(`attestation format "${fmt.slice(0, 32)}" is not supported (packed)`);
  if (!attStmt || typeof attStmt !== 'object' || Array.isArray(attStmt)) throw bad('attObj has no "attStmt" map');
  if (!isBytes(authData)) throw bad('attObj has no "authData" byte string');
  const { alg, sig, x5c } = attStmt as Record<string, unknown>;
  const algorithm = typeof alg === 'number' ? coseAlgs.get(alg) : undefined;
  if (!algorithm) throw bad(`attStmt "alg" ${String(alg)} is not supported (ES256, ES384, ES512, RS256, EdDSA)`);
  if (!isBytes(sig)) throw bad('attStmt has no "sig" byte string');
  // Self attestation (no x5c) proves nothing about the device's identity.
  if (!Array.isArray(x5c) || x5c.length === 0 || !x5c.every(isBytes)) throw bad('attStmt has no "x5c" certificate chain (self attestation is not accepted)');
  const chain = x5c.map((c) => Buffer.from(c));

  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(chain[0]!);
  } catch (err) {
    throw bad('the first x5c certificate is not a certificate', err);
  }
  // draft-ietf-acme-device-attest: clientDataHash is the SHA-256 of the key authorization.
  const clientDataHash = createHash('sha256').update(input.keyAuthorization, 'utf8').digest();
  const signed = Buffer.concat([authData, clientDataHash]);
  let ok: boolean;
  try {
    ok = verifySignature(algorithm.hash, signed, leaf.publicKey, Buffer.from(sig));
  } catch {
    ok = false;
  }
  if (!ok) throw bad(`the attestation signature (${algorithm.name}) does not verify with the x5c certificate's key for this challenge's key authorization`);

  let r: ReturnType<typeof chainTo>;
  try {
    r = chainTo(chain, input.manufacturerCas.map((c) => c.certDer), input.now);
  } catch (err) {
    throw bad('an x5c certificate is not a certificate', err);
  }
  if ('reason' in r) throw bad(`the attestation chain is refused: ${r.reason}${input.manufacturerCas.length ? '' : ' (no manufacturer CA is registered)'}`);
  const named = idevidDeviceId(chain[0]!);
  if (named !== input.deviceId) throw bad(`the attestation certificate names device "${(named ?? 'none').slice(0, 64)}", not "${input.deviceId}"`);

  const key = attestedKey(authData);
  return { deviceId: input.deviceId, attestedSpkiDer: key.export({ type: 'spki', format: 'der' }), manufacturer: input.manufacturerCas[r.anchor]!.name };
}
