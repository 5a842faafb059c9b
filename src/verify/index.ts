/**
 * `trellis-pki/verify`: checks the client certificate of a Node TLS socket at a
 * device gateway. The chain must lead to one of the given roots; the leaf's
 * status comes from OCSP (its AIA), else the CRL (its CDP), both cached until
 * their nextUpdate. When neither answers, `failClosed` decides. See docs/verify.md.
 *
 *   const v = createDeviceVerifier({ roots: [rootPem], failClosed: true });
 *   const r = await v.verify(tlsSocket); // { ok: true, deviceId, serial } | { ok: false, reason }
 */
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { findExtension, parseCertificate, readCertificateChain, type ParsedCertificate } from '../pki/certificate.js';
import { crlReasonName } from '../pki/crl-reason.js';
import { decodeAuthorityInfoAccess, decodeCrlDistributionPoints } from '../pki/extensions.js';
import { OID } from '../pki/oids.js';
import { deviceIdOf, Refusal, verifyChain } from './chain.js';
import { checkCrl, type CheckedCrl } from './crl.js';
import { buildOcspRequest, checkOcspResponse, UnusableAnswer, type CertStatus } from './ocsp.js';

export { deviceIdOf, verifyChain, Refusal } from './chain.js';
export { buildOcspRequest, checkOcspResponse, UnusableAnswer, type CertStatus } from './ocsp.js';
export { checkCrl, type CheckedCrl } from './crl.js';

export interface DeviceVerifierOptions {
  /** Trust anchors: PEM (one or more certificates each) or DER. */
  roots: (string | Buffer)[];
  /** Refuse when neither OCSP nor the CRL gives an answer (default true). */
  failClosed?: boolean;
  /** Upper bound on how long an OCSP answer or a CRL is reused (default: until its nextUpdate). */
  maxCacheSeconds?: number;
  /** Timeout of each OCSP or CRL fetch, in milliseconds (default 3000). */
  timeoutMs?: number;
  /** Clock (tests). */
  now?: () => Date;
  /** Told why an OCSP responder or CRL could not be used (the verifier then tries the next source). */
  onUnusable?: (e: { source: 'ocsp' | 'crl'; url: string; detail: string }) => void;
}

export type VerifyResult =
  | { ok: true; deviceId: string; serial: string; reason?: string }
  | { ok: false; reason: string };

export interface DeviceVerifier {
  /** Checks the client certificate of a TLS socket (server side, `requestCert: true`). Never throws. */
  verify(socket: TLSSocket): Promise<VerifyResult>;
  /** The same for a chain in hand: leaf first, then the certificates the client sent (DER). */
  verifyChain(chainDer: Buffer[]): Promise<VerifyResult>;
  /** Drops every cached OCSP answer and CRL. */
  clearCache(): void;
}

/** The reason string of a revocation: 'revoked: keyCompromise', or 'revoked: unspecified' without a reason code. */
export const revokedReason = (code: number | null): string => `revoked: ${code === null ? 'unspecified' : (crlReasonName(code) ?? `reason ${code}`)}`;

function parseRoots(roots: (string | Buffer)[]): ParsedCertificate[] {
  const out: ParsedCertificate[] = [];
  for (const r of roots) {
    const text = typeof r === 'string' ? r : r.subarray(0, 64).toString('latin1').includes('-----BEGIN') ? r.toString('latin1') : null;
    out.push(...(text === null ? [parseCertificate(r as Buffer)] : readCertificateChain(text)));
  }
  if (out.length === 0) throw new TypeError('createDeviceVerifier: roots holds no certificate');
  return out;
}

/** The DER certificates a peer presented, leaf first (Node's issuerCertificate links; the last one points at itself). */
export function presentedChain(socket: TLSSocket): Buffer[] {
  const leaf = socket.getPeerCertificate(true) as PeerCertificate & { issuerCertificate?: PeerCertificate };
  if (!leaf || !leaf.raw) return [];
  const out: Buffer[] = [leaf.raw];
  let c: (PeerCertificate & { issuerCertificate?: PeerCertificate }) | undefined = leaf.issuerCertificate;
  while (c?.raw && !out.some((d) => d.equals(c!.raw)) && out.length < 16) {
    out.push(c.raw);
    c = c.issuerCertificate;
  }
  return out;
}

interface Cached<T> {
  value: T;
  expiresAt: number;
}

/** Largest OCSP response and CRL read: a responder cannot make the gateway buffer without bound. */
export const maxOcspBytes = 1024 * 1024;
export const maxCrlBytes = 64 * 1024 * 1024;

async function fetchBytes(url: string, init: RequestInit, timeoutMs: number, maxBytes: number): Promise<Buffer> {
  const failed = (err: unknown) =>
    new UnusableAnswer(`${url}: ${err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : err instanceof Error ? err.message : String(err)}`, { cause: err });
  let res: Response;
  try {
    // The timeout covers the whole exchange, body included.
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (err) {
    throw failed(err);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new UnusableAnswer(`${url}: HTTP ${res.status}`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel();
        throw new UnusableAnswer(`${url}: answer larger than ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  } catch (err) {
    throw err instanceof UnusableAnswer ? err : failed(err);
  }
  return Buffer.concat(chunks);
}

const urlsOf = (leaf: ParsedCertificate) => {
  const aia = findExtension(leaf, OID.authorityInfoAccess);
  const cdp = findExtension(leaf, OID.cRLDistributionPoints);
  const http = (u: string) => /^https?:\/\//i.test(u);
  return {
    ocsp: (aia ? decodeAuthorityInfoAccess(aia.valueDer).filter((a) => a.method === OID.ocsp).map((a) => a.url) : []).filter(http),
    crl: (cdp ? decodeCrlDistributionPoints(cdp.valueDer) : []).filter(http),
  };
};

export function createDeviceVerifier(opts: DeviceVerifierOptions): DeviceVerifier {
  const roots = parseRoots(opts.roots);
  const failClosed = opts.failClosed ?? true;
  const timeoutMs = opts.timeoutMs ?? 3000;
  const maxCacheMs = opts.maxCacheSeconds === undefined ? Infinity : Math.max(0, opts.maxCacheSeconds) * 1000;
  const now = opts.now ?? (() => new Date());
  const ocspCache = new Map<string, Cached<CertStatus>>();
  const crlCache = new Map<string, Cached<CheckedCrl>>();
  const inflight = new Map<string, Promise<unknown>>();

  const until = (nextUpdate: Date | null, at: Date): number => Math.min(nextUpdate ? nextUpdate.getTime() : at.getTime(), at.getTime() + maxCacheMs);
  /** One fetch per key at a time: concurrent handshakes of one device share it. */
  const once = <T>(key: string, f: () => Promise<T>): Promise<T> => {
    const p = inflight.get(key);
    if (p) return p as Promise<T>;
    const q = f().finally(() => inflight.delete(key));
    inflight.set(key, q);
    return q;
  };

  async function ocspStatus(url: string, leaf: ParsedCertificate, issuer: ParsedCertificate): Promise<CertStatus> {
    const key = `${issuer.subjectDer.toString('hex')}:${issuer.spkiDer.toString('hex')}:${leaf.serialHex}`;
    const hit = ocspCache.get(key);
    if (hit && hit.expiresAt > now().getTime()) return hit.value;
    return once(`ocsp ${key}`, async () => {
      const body = await fetchBytes(url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' }, body: buildOcspRequest(leaf, issuer) }, timeoutMs, maxOcspBytes);
      const at = now();
      const checked = checkOcspResponse(body, leaf, issuer, at);
      const expiresAt = until(checked.nextUpdate, at);
      if (expiresAt > at.getTime()) ocspCache.set(key, { value: checked.status, expiresAt });
      else ocspCache.delete(key);
      return checked.status;
    });
  }

  async function crlStatus(url: string, leaf: ParsedCertificate, issuer: ParsedCertificate): Promise<CertStatus> {
    const key = `${issuer.spkiDer.toString('hex')} ${url}`;
    let crl = crlCache.get(key);
    if (!crl || crl.expiresAt <= now().getTime()) {
      crl = await once(`crl ${key}`, async () => {
        const body = await fetchBytes(url, { method: 'GET', headers: { accept: 'application/pkix-crl' } }, timeoutMs, maxCrlBytes);
        const at = now();
        const checked = checkCrl(body, issuer, at);
        const entry = { value: checked, expiresAt: until(checked.nextUpdate, at) };
        if (entry.expiresAt > at.getTime()) crlCache.set(key, entry);
        else crlCache.delete(key);
        return entry;
      });
    }
    const reason = crl.value.revoked.get(leaf.serialHex);
    return reason === undefined ? { status: 'good' } : { status: 'revoked', reason };
  }

  /** OCSP first (each AIA URL), then each CDP; `unavailable` when none gives a usable answer. */
  async function statusOf(leaf: ParsedCertificate, issuer: ParsedCertificate): Promise<{ status: CertStatus } | { unavailable: string[] }> {
    const { ocsp, crl } = urlsOf(leaf);
    const problems: string[] = [];
    const unusable = (source: 'ocsp' | 'crl', url: string, err: unknown) => {
      const detail = err instanceof Error ? err.message : String(err);
      problems.push(detail);
      opts.onUnusable?.({ source, url, detail });
    };
    for (const url of ocsp) {
      try {
        return { status: await ocspStatus(url, leaf, issuer) };
      } catch (err) {
        unusable('ocsp', url, err);
      }
    }
    for (const url of crl) {
      try {
        return { status: await crlStatus(url, leaf, issuer) };
      } catch (err) {
        unusable('crl', url, err);
      }
    }
    if (problems.length === 0) problems.push('the certificate names no OCSP responder and no CRL');
    return { unavailable: problems };
  }

  async function check(chainDer: Buffer[]): Promise<VerifyResult> {
    if (chainDer.length === 0) return { ok: false, reason: 'no client certificate' };
    try {
      const { leaf, issuer } = verifyChain(chainDer, roots, now());
      const deviceId = deviceIdOf(leaf);
      if (!deviceId) return { ok: false, reason: 'no device id' };
      const serial = leaf.serialHex;
      const s = await statusOf(leaf, issuer);
      if ('unavailable' in s) return failClosed ? { ok: false, reason: 'status unavailable' } : { ok: true, deviceId, serial, reason: 'status unavailable' };
      if (s.status.status === 'revoked') return { ok: false, reason: revokedReason(s.status.reason) };
      if (s.status.status === 'unknown') return { ok: false, reason: 'status unknown' };
      return { ok: true, deviceId, serial };
    } catch (err) {
      if (err instanceof Refusal) return { ok: false, reason: err.reason };
      return { ok: false, reason: 'bad certificate' };
    }
  }

  return {
    verify: async (socket) => {
      let chain: Buffer[];
      try {
        chain = presentedChain(socket);
      } catch {
        return { ok: false, reason: 'no client certificate' };
      }
      return check(chain);
    },
    verifyChain: (chainDer) => check(chainDer),
    clearCache: () => {
      ocspCache.clear();
      crlCache.clear();
    },
  };
}
