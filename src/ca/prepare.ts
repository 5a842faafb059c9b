/**
 * Step 2 of issuance: build the TBS once, wrap it with an empty signature
 * value, and lint that exact certificate. The token it returns carries those
 * bytes to the signer and works once, for one issuer.
 */
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
  /**
   * 'committed': the certificate is handed back once its completion has
   * committed rather than once that commit is on disk, for a caller that
   * holds its answer until the store's writes are on disk (the ACME router
   * does, for every POST). Absent: once on disk.
   */
  completionSettles?: 'committed';
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

/**
 * The signature value of the certificate that is linted: empty. No rule reads
 * a signature (the signing key's output is not known before signing, and the
 * outer signatureAlgorithm is the real one), so signing the TBS with a
 * throwaway key only cost a second signature per certificate. The lint certificate is a well-formed
 * Certificate whose signature never verifies; it is what the intent row keeps.
 */
export const lintSignature: Buffer = Buffer.alloc(0);

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
  // Step 2: lint the exact bytes that will be signed (wrapped, not signed).
  const lintCertDer = encodeCertificate(tbsDer, signer.signatureAlgorithm, lintSignature);
  const lintCert = parseCertificate(lintCertDer);
  assertLintClean({ cert: lintCert, issuer: signer.cert, ...(signer.chain ? { chain: signer.chain } : {}) });
  return { token: new IssuanceToken(signer.id, tbsDer), serialHex, lintCertDer, lintCert, notBefore, notAfter, crlShard };
}
