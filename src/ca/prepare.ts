/**
 * Step 2 of issuance: build the TBS once, wrap it with a throwaway signature,
 * and lint that exact certificate. The token it returns carries those bytes
 * to the signer and works once, for one issuer.
 */
import { generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import type { Clock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import type { KeyAlgorithm } from '../keys/signing-key.js';
import { assertLintClean } from '../lint/index.js';
import { parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { readBitString, readOne, children } from '../pki/der.js';
import type { GeneralName } from '../pki/general-name.js';
import { encodeName, type NameAttribute } from '../pki/name.js';
import type { PublicKeyInfo } from '../pki/public-key.js';
import type { Profile } from '../profiles/types.js';
import { hashFor } from '../keys/algorithms.js';
import { keyGenParams } from './algorithms.js';
import type { ExtensionTemplate } from './extensions.js';
import { crlShardOf, newSerial, type RandomSource } from './serial.js';
import { encodeCertificate, encodeTbs } from './tbs.js';
import type { RequestedVia } from './ports.js';

/** A request the registration authority has already checked; the CA checks it again. */
export interface IssueRequest {
  profile: Profile;
  subject: Partial<Record<NameAttribute, string>>;
  sans: GeneralName[];
  spkiDer: Buffer;
  keyInfo: PublicKeyInfo;
  /** Requested lifetime; clipped to the profile maximum and the issuer's notAfter. */
  validitySeconds?: number;
  requestedVia: RequestedVia;
  requestedBy: string | null;
  /** Keystore id when Trellis keeps the subject's private key (its OCSP responder and TLS server). */
  keyId?: string;
  /** The registered device this certificate is issued to (device registry, issue 10). */
  deviceId?: string;
}

/** The signer side of a preparation: who signs and with what. */
export interface PrepareSigner {
  id: string;
  algorithm: KeyAlgorithm;
  signatureAlgorithm: Buffer;
  /** Issuer Name DER (for a self-signed certificate: the new subject). */
  nameDer: Buffer | null;
  /** The issuer certificate for lints; null when self-signed. */
  cert: ParsedCertificate | null;
  /** The CA certificates above the issuer, up to the root when known, for lints over the whole chain (name constraints). */
  chain?: readonly ParsedCertificate[];
  notAfter: Date | null;
  crlShards: number;
}

/** One-shot capability to sign exactly `tbsDer` with the issuer `issuerId`. */
export class IssuanceToken {
  #used = false;
  constructor(
    readonly issuerId: string,
    readonly tbsDer: Buffer,
  ) {}

  /** Returns the TBS once; a second use or another issuer is refused. */
  take(issuerId: string): Buffer {
    if (this.#used) throw new PkiError('serverInternal', 'issuance token already used');
    if (issuerId !== this.issuerId) throw new PkiError('serverInternal', 'issuance token belongs to another issuer');
    this.#used = true;
    return this.tbsDer;
  }
}

export interface Prepared {
  token: IssuanceToken;
  serialHex: string;
  lintCertDer: Buffer;
  lintCert: ParsedCertificate;
  notBefore: Date;
  notAfter: Date;
  crlShard: number;
}

const lintKeys = new Map<KeyAlgorithm, KeyObject>();
/** A per-process throwaway key of the issuer's algorithm: the lint certificate is a real certificate, just not trusted. */
function lintKey(algorithm: KeyAlgorithm): KeyObject {
  let k = lintKeys.get(algorithm);
  if (!k) {
    const { type, options } = keyGenParams(algorithm);
    k = generateKeyPairSync(type as 'ec', options as { namedCurve: string }).privateKey;
    lintKeys.set(algorithm, k);
  }
  return k;
}

const floorSeconds = (ms: number) => Math.floor(ms / 1000) * 1000;

/**
 * Validity: notBefore = now - backdate; notAfter = notBefore + lifetime - 1 s
 * (CA/B BR §6.3.2 counts both ends), never after the issuer's notAfter.
 */
export function validityFor(profile: Profile, now: Date, requestedSeconds: number | undefined, issuerNotAfter: Date | null): { notBefore: Date; notAfter: Date } {
  const lifetime = Math.min(requestedSeconds ?? profile.validity.defaultSeconds, profile.validity.maxSeconds);
  if (!(lifetime > 0)) throw new PkiError('malformed', 'requested validity must be positive');
  const notBefore = new Date(floorSeconds(now.getTime() - profile.validity.backdateSeconds * 1000));
  let notAfter = new Date(notBefore.getTime() + (lifetime - 1) * 1000);
  if (issuerNotAfter && notAfter > issuerNotAfter) notAfter = new Date(floorSeconds(issuerNotAfter.getTime()));
  return { notBefore, notAfter };
}

export function prepare(signer: PrepareSigner, template: ExtensionTemplate, req: IssueRequest, clock: Clock, random: RandomSource): Prepared {
  // Step 1: a fresh serial; the database refuses it if it was ever used by this issuer.
  const { serial, serialHex } = newSerial(random);
  const { notBefore, notAfter } = validityFor(req.profile, clock.now(), req.validitySeconds, signer.notAfter);
  const crlShard = crlShardOf(serialHex, signer.crlShards);
  const subjectName = encodeName(req.subject);
  const subjectPublicKey = readBitString(children(readOne(req.spkiDer))[1]!).bytes;
  const tbsDer = encodeTbs({
    serial,
    signatureAlgorithm: signer.signatureAlgorithm,
    issuerName: signer.nameDer ?? subjectName,
    notBefore,
    notAfter,
    subjectName,
    spkiDer: req.spkiDer,
    extensions: template.build(subjectPublicKey, req.sans, Object.keys(req.subject).length === 0, crlShard),
  });
  // Step 2: lint the exact bytes that will be signed.
  const lintSig = nodeSign(hashFor(signer.algorithm), tbsDer, { key: lintKey(signer.algorithm), dsaEncoding: 'der' });
  const lintCertDer = encodeCertificate(tbsDer, signer.signatureAlgorithm, lintSig);
  const lintCert = parseCertificate(lintCertDer);
  assertLintClean({ cert: lintCert, issuer: signer.cert, ...(signer.chain ? { chain: signer.chain } : {}) });
  return { token: new IssuanceToken(signer.id, tbsDer), serialHex, lintCertDer, lintCert, notBefore, notAfter, crlShard };
}
