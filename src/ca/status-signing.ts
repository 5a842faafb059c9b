/**
 * How the CA signs what tells relying parties about its certificates: CRLs
 * with the CA's own key, OCSP responses with its delegated responder's key
 * (or its own, RFC 6960 §4.2.2.2). Each signature goes through the same gate:
 *   1. the CA key's state must permit the use (a deactivated key still signs
 *      CRLs and OCSP, a suspended or compromised one nothing);
 *   2. the bytes to sign are linted, against expectations whose CA-derived
 *      parts (issuer name, key identifier, algorithm, responder and issuer
 *      hashes) the CA fills in itself: it trusts no caller for those;
 *   3. CRLs only: the intent is recorded (`crl.signing`, with the TBS digest)
 *      before the signature exists; the publisher audits `crl.published` once
 *      the CRL is stored. OCSP responses are not recorded one by one: they
 *      are signed by a short-lived responder key whose certificate the CA
 *      issued and audited, and a per-response event would put a database
 *      write on every OCSP answer;
 *   4. RSA signatures are verified before release (RSA-CRT faults).
 * A lint failure signs nothing and is audited (`crl.lint_failed` each time,
 * `ocsp.lint_failed` at most once a minute per CA, with the count suppressed).
 */
import { createHash, verify as nodeVerify } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import { hashFor } from '../keys/algorithms.js';
import type { SigningKey } from '../keys/signing-key.js';
import { lintCrl, type CrlExpectations } from '../lint/crl.js';
import { lintFindingsOf, throwOnErrors } from '../lint/index.js';
import { lintOcspResponseData, type OcspExpectations } from '../lint/ocsp.js';
import { sha256Hex } from '../pki/certificate.js';
import type { Issuer } from './issuer.js';
import type { KeyStateGuard } from './key-guard.js';

export interface StatusSigningDeps {
  audit: AuditLog;
  clock: Clock;
  keyStates: KeyStateGuard;
}

/** What a delegated responder (or the CA itself) signs OCSP responses with. */
export interface ResponderKey {
  /** SHA-1 of the responder certificate's subjectPublicKey (ResponderID byKey). */
  keyHash: Buffer;
  signatureAlgorithm: Buffer;
  certDer: Buffer;
  key: SigningKey;
}

/** Signs `data`, and verifies an RSA signature before it leaves the CA. */
async function signChecked(key: SigningKey, data: Buffer, what: string): Promise<Buffer> {
  const signature = await key.sign(data);
  if (key.algorithm.startsWith('rsa') && !nodeVerify(hashFor(key.algorithm), data, key.publicKey, signature)) throw new PkiError('serverInternal', `${what}: signature does not verify`);
  return signature;
}

/** CRL TBS of `issuer`: state, lint, intent, signature. */
export async function signCrlTbs(deps: StatusSigningDeps, issuer: Issuer, key: SigningKey, tbs: Buffer, expect: CrlExpectations): Promise<Buffer> {
  await deps.keyStates.assert(issuer.id, 'crl');
  const own: CrlExpectations = { ...expect, issuerDer: issuer.cert.subjectDer, signatureAlgorithm: issuer.signatureAlgorithm, keyIdentifier: issuer.keyIdentifier };
  const crlNumber = expect.crlNumber.toString();
  try {
    throwOnErrors(lintCrl(tbs, own), `CRL lint failed (CRL number ${crlNumber})`);
  } catch (err) {
    const findings = lintFindingsOf(err);
    if (findings) await deps.audit.record('crl.lint_failed', 'trellis', { ca: issuer.id, crlNumber, lint: findings.map((f) => f.id), error: (err as Error).message });
    throw err;
  }
  await deps.audit.record('crl.signing', 'trellis', { ca: issuer.id, crlNumber, ...(expect.baseCrlNumber !== undefined ? { baseCrlNumber: expect.baseCrlNumber.toString() } : {}), tbsSha256: sha256Hex(tbs) });
  return signChecked(key, tbs, `CRL ${crlNumber} of CA "${issuer.id}"`);
}

const sha1Oid = '1.3.14.3.2.26';
const sha256Oid = '2.16.840.1.101.3.4.2.1';

/** The CertID issuer hashes of a CA (RFC 6960 §4.1.1), for SHA-1 and SHA-256. */
function issuerHashesOf(issuer: Issuer): OcspExpectations['issuerHashes'] {
  const of = (alg: string) => ({ issuerNameHash: createHash(alg).update(issuer.cert.subjectDer).digest(), issuerKeyHash: createHash(alg).update(issuer.cert.subjectPublicKey).digest() });
  return { [sha1Oid]: of('sha1'), [sha256Oid]: of('sha256') };
}

/** OCSP ResponseData of `issuer`'s responder: state, lint (failures audited, rate-limited), signature. */
export class OcspSigning {
  readonly #hashes = new WeakMap<Issuer, OcspExpectations['issuerHashes']>();
  /** Per CA: when a lint failure was last audited, and how many since were not. */
  readonly #lintAudited = new Map<string, { atMs: number; suppressed: number }>();

  constructor(private readonly deps: StatusSigningDeps) {}

  async sign(issuer: Issuer, responder: ResponderKey, tbs: Buffer, expect: OcspExpectations): Promise<Buffer> {
    await this.deps.keyStates.assert(issuer.id, 'ocsp');
    let hashes = this.#hashes.get(issuer);
    if (!hashes) this.#hashes.set(issuer, (hashes = issuerHashesOf(issuer)));
    try {
      throwOnErrors(lintOcspResponseData(tbs, { ...expect, responderKeyHash: responder.keyHash, issuerHashes: hashes }), 'OCSP response lint failed');
    } catch (err) {
      const findings = lintFindingsOf(err);
      if (findings) await this.#auditLintFailure(issuer.id, expect, findings.map((f) => f.id), (err as Error).message);
      throw err;
    }
    return signChecked(responder.key, tbs, `OCSP response of CA "${issuer.id}"`);
  }

  async #auditLintFailure(caId: string, expect: OcspExpectations, lint: string[], error: string): Promise<void> {
    const nowMs = this.deps.clock.now().getTime();
    const last = this.#lintAudited.get(caId);
    if (last && nowMs - last.atMs < 60_000) {
      last.suppressed++;
      return;
    }
    this.#lintAudited.set(caId, { atMs: nowMs, suppressed: 0 });
    await this.deps.audit.record('ocsp.lint_failed', 'trellis', { ca: caId, serials: expect.singles.map((x) => x.serialHex), lint, error, suppressedBefore: last?.suppressed ?? 0 });
  }
}
