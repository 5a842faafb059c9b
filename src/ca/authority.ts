/**
 * The signing core. Requests are gathered into small batches so that the
 * database sees one write per step per batch, while every certificate still
 * goes through the same numbered steps:
 *   1. re-check policy and reserve a serial (unique per issuer in the database),
 *   2. build the TBS once and lint it (prepare),
 *   3. record the intent (status 'pending', with the linted DER),
 *   4. sign exactly those bytes, verify the signature, check the TBS is unchanged,
 *   5. complete the record and append the audit event, in one transaction.
 */
import { verify as nodeVerify } from 'node:crypto';
import { chainHash, type AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock/clock.js';
import { isPkiError, PkiError } from '../errors/pki-error.js';
import { lintFindingsOf } from '../lint/index.js';
import { sha256Hex } from '../pki/certificate.js';
import { readTlv } from '../pki/der.js';
import { formatName } from '../pki/name.js';
import type { Profile } from '../profiles/types.js';
import { hashFor } from '../keys/algorithms.js';
import { ExtensionTemplate } from './extensions.js';
import { hasKey, keyOf, responderKeyOf, type CaUrls, type Issuer } from './issuer.js';
import type { KeyStateGuard } from './key-guard.js';
import type { SigningKey } from '../keys/signing-key.js';
import type { CrlSigner } from '../crl/build.js';
import type { CrlExpectations } from '../lint/crl.js';
import type { OcspExpectations } from '../lint/ocsp.js';
import { OcspSigning, signCrlTbs } from './status-signing.js';
import { issuerChainOf, type IssuerChain } from './chain.js';
import { checkKeyPolicy, checkNameConstraints, checkSanPolicy, checkSubjectPolicy } from './policy.js';
import type { CertificateIntent, CertificateRepository } from './ports.js';
import { prepare, type IssueRequest, type Prepared, type PrepareSigner } from './prepare.js';
import { caRecertificationRequest } from './recertify.js';
import { cryptoRandom, type RandomSource } from './serial.js';
import { encodeCertificate } from './tbs.js';

export interface IssuedCertificate {
  issuerId: string;
  serialHex: string;
  profile: string;
  certDer: Buffer;
  /** Issuer chain above the certificate (issuing CA first, root excluded). */
  chainDer: Buffer[];
  notBefore: Date;
  notAfter: Date;
}

/** How an OCSP responder signs: the ResponderID key hash, algorithm, certificate, and a sign through the CA. */
export interface OcspResponderSigner {
  keyHash: Buffer;
  signatureAlgorithm: Buffer;
  certDer: Buffer;
  sign(tbs: Buffer, expect: OcspExpectations): Promise<Buffer>;
}

export interface AuthorityDeps {
  certificates: CertificateRepository;
  audit: AuditLog;
  clock: Clock;
  urls: CaUrls;
  /** SPKIs of every CA this instance knows: a request using one of them is refused. */
  caSpkis: () => readonly Buffer[];
  /**
   * DER certificates of every CA this instance knows, roots included: the
   * chain above an issuer is found among them (its name constraints apply).
   * Without it, only the issuer and `Issuer.chainDer` (which stops below the root) count.
   */
  caCertificates?: () => readonly Buffer[];
  /** The CA keys' states: nothing is signed with a key whose state does not permit it. */
  keyStates: KeyStateGuard;
  random?: RandomSource;
  /** Largest batch per database round trip. */
  maxBatch?: number;
}

interface Pending {
  issuer: Issuer;
  req: IssueRequest;
  /** The one CA key this request may certify (a renewal or cross certificate: {@link CertificateAuthority.recertify}). */
  caKey?: Buffer;
  resolve: (c: IssuedCertificate) => void;
  reject: (e: unknown) => void;
}

/** Which CA role may sign with which profile (profile.signer). */
function assertSignerRole(issuer: Issuer, profile: Profile): void {
  const ok = profile.signer === 'issuing' ? issuer.role === 'issuing' : profile.signer === 'root' ? issuer.role === 'root' : false;
  if (!ok) throw new PkiError('badProfile', `profile "${profile.name}" cannot be signed by ${issuer.role} CA "${issuer.id}"`);
}

/**
 * Signs the prepared TBS with the issuer's key. RSA signatures are verified
 * before release: an RSA-CRT fault would otherwise publish a signature that
 * leaks the private key (Lenstra; Boulder does the same). The certificate is
 * assembled around the very TBS buffer that was linted.
 */
export async function signTbs(issuer: { id: string; key: SigningKey; signatureAlgorithm: Buffer }, prepared: Prepared): Promise<Buffer> {
  const tbsDer = prepared.token.take(issuer.id);
  const signature = await issuer.key.sign(tbsDer);
  if (issuer.key.algorithm.startsWith('rsa') && !nodeVerify(hashFor(issuer.key.algorithm), tbsDer, issuer.key.publicKey, signature)) {
    throw new PkiError('serverInternal', `signature by CA "${issuer.id}" does not verify`);
  }
  const certDer = encodeCertificate(tbsDer, issuer.signatureAlgorithm, signature);
  // The bytes that were linted are the bytes that got signed.
  const tbs = readTlv(certDer, readTlv(certDer).start);
  if (!certDer.subarray(tbs.headerStart, tbs.end).equals(prepared.lintCert.tbsDer)) throw new PkiError('serverInternal', 'signed TBS differs from the linted TBS');
  return certDer;
}

export class CertificateAuthority {
  private readonly templates = new Map<string, ExtensionTemplate>();
  /** Each loaded issuer's chain, parsed and its name constraints decoded once. */
  private readonly chains = new WeakMap<Issuer, IssuerChain>();
  /** The CAs unlocked in this process, by id (their keys stay beside them in issuer.ts). */
  private readonly held = new Map<string, Issuer>();
  private readonly ocsp: OcspSigning;
  private readonly queue: Pending[] = [];
  private scheduled = false;
  /** Batches between their first step and their last. */
  private readonly inFlight = new Set<Promise<void>>();
  private readonly random: RandomSource;
  private readonly maxBatch: number;

  constructor(private readonly deps: AuthorityDeps) {
    this.random = deps.random ?? pooledRandom(cryptoRandom);
    this.maxBatch = deps.maxBatch ?? 256;
    this.ocsp = new OcspSigning(deps);
  }

  /** The key states this CA enforces (read-only view for issuer selection). */
  get keyStates(): KeyStateGuard {
    return this.deps.keyStates;
  }

  /** Takes an unlocked CA (ca/unlock.ts) into this authority; a CA unlocked again replaces the earlier one. */
  hold(issuer: Issuer): Issuer {
    if (!hasKey(issuer)) throw new PkiError('serverInternal', `CA "${issuer.id}" is not unlocked`);
    this.held.set(issuer.id, issuer);
    return issuer;
  }

  /** The key-free description of an unlocked CA (`notFound` when it is not unlocked in this process). */
  issuer(id: string): Issuer {
    const issuer = this.held.get(id);
    if (!issuer) throw new PkiError('notFound', `CA "${id}" is not unlocked here`);
    return issuer;
  }

  /** Every CA unlocked in this process. */
  issuers(): Issuer[] {
    return [...this.held.values()];
  }

  /** Issues one certificate from a checked request with the unlocked CA `issuerId`. Resolves when it is signed and stored. */
  issue(issuerId: string, req: IssueRequest): Promise<IssuedCertificate> {
    return this.enqueue(issuerId, req);
  }

  /**
   * Certifies the key of the CA certificate `certDer` again with `issuerId`
   * (a renewal, or a cross certificate of a root rollover): same subject, key
   * and path length under the CA profile `profile` (recertify.ts). That key
   * is the only CA key let through; every other stays refused.
   */
  recertify(issuerId: string, certDer: Buffer, profile: Profile, opts: { validitySeconds?: number | undefined; actor: string }): Promise<IssuedCertificate> {
    let req: IssueRequest;
    try {
      req = caRecertificationRequest(certDer, profile, opts);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue(issuerId, req, req.spkiDer);
  }

  private enqueue(issuerId: string, req: IssueRequest, caKey?: Buffer): Promise<IssuedCertificate> {
    let issuer: Issuer;
    try {
      issuer = this.issuer(issuerId);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ issuer, req, resolve, reject, ...(caKey ? { caKey } : {}) });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.drain());
      }
    });
  }

  /**
   * Signs a CRL's TBS with the key of `issuerId` once its state permits CRLs
   * (a deactivated key still does), the TBS lints clean against `expect` and
   * the intent is recorded (ca/status-signing.ts).
   */
  async signCrl(issuerId: string, tbs: Buffer, expect: CrlExpectations): Promise<Buffer> {
    const issuer = this.issuer(issuerId);
    return signCrlTbs(this.deps, issuer, keyOf(issuer), tbs, expect);
  }

  /** The CRL-signing view of an unlocked CA, for the CRL encoder: its names, and a sign that is {@link signCrl}. */
  crlSigner(issuerId: string): CrlSigner {
    const issuer = this.issuer(issuerId);
    return {
      subjectDer: issuer.cert.subjectDer,
      keyIdentifier: issuer.keyIdentifier,
      signatureAlgorithm: issuer.signatureAlgorithm,
      sign: (tbs, expect) => this.signCrl(issuerId, tbs, expect),
    };
  }

  /**
   * The OCSP signer of the unlocked CA `issuerId` with the responder whose
   * certificate is `responderCertDer` and whose key is `key` (ca/held-keys.ts;
   * the CA's own certificate and key when it answers itself). Its sign checks
   * the CA key's state and lints the ResponseData first (ca/status-signing.ts).
   */
  ocspSigner(issuerId: string, responderCertDer: Buffer, key: SigningKey): OcspResponderSigner {
    const issuer = this.issuer(issuerId);
    const responder = responderKeyOf(responderCertDer, key);
    return {
      keyHash: responder.keyHash,
      signatureAlgorithm: responder.signatureAlgorithm,
      certDer: responderCertDer,
      sign: (tbs, expect) => this.ocsp.sign(issuer, responder, tbs, expect),
    };
  }

  /** The extension template for (issuer, profile), built once. */
  template(issuer: { id: string; keyIdentifier: Buffer }, profile: Profile): ExtensionTemplate {
    const k = `${issuer.id}\0${profile.name}`;
    let t = this.templates.get(k);
    if (!t) this.templates.set(k, (t = new ExtensionTemplate(issuer, profile, this.deps.urls)));
    return t;
  }

  /** The CA certificates above `issuer` and the name constraints of its chain, computed once per issuer. */
  chainOf(issuer: Issuer): IssuerChain {
    let c = this.chains.get(issuer);
    if (!c) this.chains.set(issuer, (c = issuerChainOf(issuer, this.deps.caCertificates?.() ?? [])));
    return c;
  }

  /**
   * Checks a request against its profile, and against the name constraints
   * of the issuer's chain when given: the CA trusts no caller. A CA's key is
   * refused unless it is `caKey` (a recertification).
   */
  checkRequest(req: IssueRequest, issuer?: Issuer, caKey?: Buffer): void {
    const caSpkis = this.deps.caSpkis();
    checkKeyPolicy(req.profile, req.keyInfo, req.spkiDer, caKey ? caSpkis.filter((s) => !s.equals(caKey)) : caSpkis);
    checkSubjectPolicy(req.profile, req.subject);
    checkSanPolicy(req.profile, req.sans);
    if (issuer) checkNameConstraints(this.chainOf(issuer).constraining, req);
  }

  /**
   * Resolves once every request already handed to {@link issue} is signed and
   * stored, or failed: the store may close after it without leaving an intent
   * pending (a server stopping while a client that gave up still has a request
   * in flight).
   */
  async settle(): Promise<void> {
    while (this.scheduled || this.inFlight.size) {
      if (this.scheduled) await new Promise((r) => setImmediate(r));
      else await Promise.all(this.inFlight);
    }
  }

  private drain(): void {
    this.scheduled = false;
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.maxBatch);
      const running = this.processBatch(batch)
        .catch((err) => batch.forEach((p) => p.reject(err)))
        .finally(() => this.inFlight.delete(running));
      this.inFlight.add(running);
    }
  }

  private async processBatch(batch: Pending[]): Promise<void> {
    const { certificates, audit, clock } = this.deps;
    // Steps 1 and 2, per request: policy, serial, TBS, lints. A failure here touches nothing.
    const ready: { p: Pending; prepared: Prepared; intent: CertificateIntent }[] = [];
    const lintFailures: { p: Pending; err: PkiError }[] = [];
    // The key's state first: a key that may not sign certificates gets no serial, intent or signature.
    const refused = new Map<string, unknown>();
    for (const id of new Set(batch.map((p) => p.issuer.id))) {
      await this.deps.keyStates.assert(id, 'certificate').catch((err: unknown) => refused.set(id, err));
    }
    for (const p of batch) {
      if (refused.has(p.issuer.id)) {
        p.reject(refused.get(p.issuer.id));
        continue;
      }
      try {
        assertSignerRole(p.issuer, p.req.profile);
        this.checkRequest(p.req, p.issuer, p.caKey);
        const prepared = prepare({ ...signerOf(p.issuer), chain: this.chainOf(p.issuer).above }, this.template(p.issuer, p.req.profile), p.req, clock, this.random);
        ready.push({ p, prepared, intent: intentOf(p, prepared) });
      } catch (err) {
        if (isPkiError(err, 'lintFailed')) lintFailures.push({ p, err });
        else p.reject(err);
      }
    }
    // A lint finding means the policy checks let through what must not be
    // signed: nothing was recorded or signed, but it is audited (and logged by the caller's 5xx path).
    if (lintFailures.length) {
      try {
        await audit.recordMany(lintFailures.map(({ p, err }) => ({
          type: 'certificate.lint_failed',
          actor: p.req.requestedBy ?? p.req.requestedVia,
          data: { issuer: p.issuer.id, profile: p.req.profile.name, via: p.req.requestedVia, lint: (lintFindingsOf(err) ?? []).map((f) => f.id), error: err.message },
        })));
      } finally {
        lintFailures.forEach(({ p, err }) => p.reject(err));
      }
    }
    if (ready.length === 0) return;
    // Step 3: record every intent before any signature exists (all or none).
    try {
      await certificates.insertIntents(ready.map((r) => r.intent));
    } catch (err) {
      ready.forEach((r) => r.p.reject(err));
      return;
    }
    // Step 4: sign the linted bytes.
    const done: { r: (typeof ready)[number]; certDer: Buffer }[] = [];
    const failed: { r: (typeof ready)[number]; err: unknown }[] = [];
    for (const r of ready) {
      try {
        const { issuer } = r.p;
        done.push({ r, certDer: await signTbs({ id: issuer.id, key: keyOf(issuer), signatureAlgorithm: issuer.signatureAlgorithm }, r.prepared) });
      } catch (err) {
        failed.push({ r, err });
      }
    }
    // Step 5: complete the records and audit every signature, in one
    // transaction: a certificate is never 'valid' without its event. If this
    // fails (or the process dies first) every certificate of the batch stays
    // 'pending', nothing is handed out, and the start-up reconciliation marks
    // them 'failed' (cmd/reconcile.ts).
    const issuedAt = clock.now();
    const events = [
      ...done.map(({ r, certDer }) => ({
        type: 'certificate.issued',
        actor: r.intent.requestedBy ?? r.intent.requestedVia,
        data: { issuer: r.intent.issuerId, serialHex: r.intent.serialHex, profile: r.intent.profile, subject: r.intent.subject, via: r.intent.requestedVia, sha256: sha256Hex(certDer) },
      })),
      ...failed.map(({ r, err }) => ({
        type: 'certificate.sign_failed',
        actor: r.intent.requestedBy ?? r.intent.requestedVia,
        data: { issuer: r.intent.issuerId, serialHex: r.intent.serialHex, error: err instanceof PkiError ? err.message : 'signing failed' },
      })),
    ];
    await certificates.completeMany(
      {
        issued: done.map(({ r, certDer }) => ({ issuerId: r.intent.issuerId, serialHex: r.intent.serialHex, der: certDer, issuedAt })),
        failed: failed.map(({ r }) => ({ issuerId: r.intent.issuerId, serialHex: r.intent.serialHex })),
      },
      { drafts: events.map((e) => ({ at: issuedAt, ...e })), chain: chainHash },
      // Only when every caller of the batch waits for durability itself before handing anything out.
      ready.every((r) => r.p.req.completionSettles === 'committed') ? 'committed' : 'durable',
    );
    for (const { r, certDer } of done) {
      r.p.resolve({
        issuerId: r.intent.issuerId,
        serialHex: r.intent.serialHex,
        profile: r.intent.profile,
        certDer,
        chainDer: r.p.issuer.chainDer,
        notBefore: r.prepared.notBefore,
        notAfter: r.prepared.notAfter,
      });
    }
    for (const { r, err } of failed) r.p.reject(err);
  }
}

/**
 * `source` drawn 4 KiB at a time: one CSPRNG call per 256 serials instead of
 * one per certificate (randomFillSync was ~1 % of the CPU of an issuance).
 * Each caller gets bytes of its own, never handed out twice; they are as
 * unpredictable as the source's (CA/B BR §7.1: serials with at least 64 bits
 * from a CSPRNG). Requests larger than the pool go to the source directly.
 */
export function pooledRandom(source: RandomSource, poolBytes = 4096): RandomSource {
  let pool: Buffer = Buffer.alloc(0);
  let used = 0;
  return (n) => {
    if (n > poolBytes) return source(n);
    if (used + n > pool.length) {
      pool = source(poolBytes);
      used = 0;
    }
    // A copy: the caller may change its bytes (newSerial sets the top bits).
    const out = Buffer.from(pool.subarray(used, used + n));
    pool.fill(0, used, used + n);
    used += n;
    return out;
  };
}

/** The signer view of an issuer for `prepare`. */
export function signerOf(issuer: Issuer): PrepareSigner {
  return {
    id: issuer.id,
    algorithm: issuer.algorithm,
    signatureAlgorithm: issuer.signatureAlgorithm,
    nameDer: issuer.cert.subjectDer,
    cert: issuer.cert,
    notAfter: issuer.cert.notAfter,
    crlShards: issuer.crlShards,
  };
}

function intentOf(p: Pending, prepared: Prepared): CertificateIntent {
  return {
    issuerId: p.issuer.id,
    serialHex: prepared.serialHex,
    profile: p.req.profile.name,
    subject: formatName(prepared.lintCert.subject),
    sans: JSON.stringify(p.req.sans),
    notBefore: prepared.notBefore,
    notAfter: prepared.notAfter,
    lintDer: prepared.lintCertDer,
    crlShard: prepared.crlShard,
    requestedVia: p.req.requestedVia,
    requestedBy: p.req.requestedBy,
    keyId: p.req.keyId ?? null,
    deviceId: p.req.deviceId ?? null,
  };
}
