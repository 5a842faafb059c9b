/**
 * Test fixtures of the OCSP responder's unit tests: an issuing CA and its
 * delegated responder made by openssl, a responder signer over the real key
 * that lints before it signs as the CA does (src/ca/status-signing.ts), the
 * store's repositories in memory, and request builders.
 */
import { createHash, createPrivateKey, sign } from 'node:crypto';
import fs from 'node:fs';
import { signatureAlgorithmDer } from '../../ca/algorithms.js';
import type { CertificateStatusRow } from '../../ca/ports.js';
import { systemClock } from '../../clock/clock.js';
import { throwOnErrors } from '../../lint/index.js';
import { lintOcspResponseData } from '../../lint/ocsp.js';
import { parseCertificate, type ParsedCertificate } from '../../pki/certificate.js';
import { ctx, octetString, oid, seq } from '../../pki/der.js';
import { pemBlocks } from '../../pki/pem.js';
import { openssl, tempDir } from '../../../test/helpers/openssl.js';
import type { OcspResponseRepository, StoredOcspResponse } from '../ports.js';
import { encodeCertId, issuerHashes, type CertIdHash } from '../request.js';
import type { ResponderSigner } from '../response.js';
import type { ResponderCa } from '../source.js';

const day = 86_400_000;

export interface ResponderPki {
  caPem: string;
  ca: ParsedCertificate;
  /** The CA `issuing-1` with its delegated responder; the signer lints (as the CA does), then signs. */
  responder: ResponderCa;
  other: ParsedCertificate;
  /** A responder certificate without id-kp-OCSPSigning. */
  noEkuDer: Buffer;
  respNotAfter: Date;
}

const certOf = (file: string) => parseCertificate(pemBlocks(fs.readFileSync(file, 'utf8'))[0]!.der);

/** Makes the fixture PKI in `tmp` with openssl: a P-256 issuing CA, a delegated responder (7 days), a responder without the EKU and another CA. */
export async function makeResponderPki(tmp: ReturnType<typeof tempDir>): Promise<ResponderPki> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl('req', '-x509', ...ec, '-keyout', tmp.file('ca.key'), '-subj', '/O=Trellis Test/CN=Unit Issuing CA', '-days', '30', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', tmp.file('ca.pem'));
  await openssl('req', '-x509', ...ec, '-keyout', tmp.file('other.key'), '-subj', '/CN=Someone Else CA', '-days', '30', '-out', tmp.file('other.pem'));
  fs.writeFileSync(tmp.file('resp.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\nnoCheck=ignored\n');
  fs.writeFileSync(tmp.file('noeku.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n');
  for (const [name, ext] of [['resp', 'resp.ext'], ['noeku', 'noeku.ext']] as const) {
    await openssl('req', '-new', ...ec, '-keyout', tmp.file(`${name}.key`), '-subj', `/CN=${name}`, '-out', tmp.file(`${name}.csr`));
    await openssl('x509', '-req', '-in', tmp.file(`${name}.csr`), '-CA', tmp.file('ca.pem'), '-CAkey', tmp.file('ca.key'), '-set_serial', '0x5151', '-days', '7', '-extfile', tmp.file(ext), '-out', tmp.file(`${name}.pem`));
  }
  const ca = certOf(tmp.file('ca.pem'));
  const resp = certOf(tmp.file('resp.pem'));
  const key = createPrivateKey(fs.readFileSync(tmp.file('resp.key')));
  const signer: ResponderSigner = {
    keyHash: createHash('sha1').update(resp.subjectPublicKey).digest(),
    signatureAlgorithm: signatureAlgorithmDer('ecdsa-p256'),
    certDer: resp.der,
    sign: async (tbs, expect) => {
      throwOnErrors(lintOcspResponseData(tbs, expect), 'OCSP response lint failed');
      return sign('sha256', tbs, key);
    },
  };
  return {
    caPem: tmp.file('ca.pem'),
    ca,
    responder: { id: 'issuing-1', subjectDer: ca.subjectDer, subjectPublicKey: ca.subjectPublicKey, signer },
    other: certOf(tmp.file('other.pem')),
    noEkuDer: certOf(tmp.file('noeku.pem')).der,
    respNotAfter: resp.notAfter,
  };
}

/** CertificateRepository's status reads over a Map of `issuing-1` rows, counting statusOf calls. */
export function memCertificates() {
  const rows = new Map<string, CertificateStatusRow & { changedAt: Date | null }>();
  const calls = { statusOf: 0 };
  let gate: Promise<void> | null = null;
  let failPoll = false;
  return {
    rows,
    calls,
    /** Holds statusOf answers until the returned function is called. */
    hold(): () => void {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return () => {
        gate = null;
        release();
      };
    },
    failPolls(v: boolean) {
      failPoll = v;
    },
    set(serialHex: string, row: Partial<CertificateStatusRow> = {}) {
      rows.set(`issuing-1:${serialHex}`, { status: 'valid', revokedAt: null, revocationReason: null, notAfter: new Date(systemClock.now().getTime() + 30 * day), changedAt: null, ...row });
    },
    revoke(serialHex: string, at: Date, reason: number) {
      const r = rows.get(`issuing-1:${serialHex}`)!;
      Object.assign(r, { status: 'revoked', revokedAt: at, revocationReason: reason, changedAt: at });
    },
    async statusOf(issuerId: string, serialHex: string) {
      calls.statusOf++;
      const row = rows.get(`${issuerId}:${serialHex}`);
      const snapshot = row ? { status: row.status, revokedAt: row.revokedAt, revocationReason: row.revocationReason, notAfter: row.notAfter } : null;
      if (gate) await gate;
      return snapshot;
    },
    /** As the store does it: by change time, never ending a page inside a run of equal times. */
    async statusChangedSince(since: Date, limit: number) {
      if (failPoll) throw new Error('database unreachable');
      const all = [...rows]
        .filter(([, r]) => r.changedAt && r.changedAt > since)
        .sort(([, a], [, b]) => a.changedAt!.getTime() - b.changedAt!.getTime())
        .map(([k, r]) => ({ issuerId: k.split(':')[0]!, serialHex: k.split(':')[1]!, at: r.changedAt! }));
      if (all.length <= limit) return all;
      const last = all[limit - 1]!.at.getTime();
      return all.filter((c) => c.at.getTime() <= last);
    },
  };
}

/** OcspResponseRepository over a Map, counting rows put. */
export function memResponses(): OcspResponseRepository & { rows: Map<string, StoredOcspResponse>; puts: number } {
  const rows = new Map<string, StoredOcspResponse>();
  return {
    rows,
    puts: 0,
    async get(issuerId, serialHex) {
      return rows.get(`${issuerId}:${serialHex}`) ?? null;
    },
    async putMany(responses) {
      this.puts += responses.length;
      for (const r of responses) rows.set(`${r.issuerId}:${r.serialHex}`, r);
    },
    async expiring(before, limit) {
      return [...rows.values()]
        .filter((r) => r.nextUpdate < before)
        .sort((a, b) => a.nextUpdate.getTime() - b.nextUpdate.getTime())
        .slice(0, limit)
        .map((r) => ({ issuerId: r.issuerId, serialHex: r.serialHex }));
    },
    async delete(issuerId, serialHex) {
      rows.delete(`${issuerId}:${serialHex}`);
    },
  };
}

/** The CertID DER of a serial of `ca`. */
export const certIdOf = (ca: ParsedCertificate, serialHex: string, hash: CertIdHash = 'sha1') => {
  const h = issuerHashes(hash, ca.subjectDer, ca.subjectPublicKey);
  return encodeCertId(hash, h.issuerNameHash, h.issuerKeyHash, serialHex);
};
const nonceExt = (n: Buffer) => seq(oid('1.3.6.1.5.5.7.48.1.2'), octetString(octetString(n)));
/** An OCSPRequest DER for these CertIDs, with a nonce extension when given. */
export const request = (certIds: Buffer[], nonce?: Buffer) => seq(seq(seq(...certIds.map((c) => seq(c))), ...(nonce ? [ctx(2, true, seq(nonceExt(nonce)))] : [])));
