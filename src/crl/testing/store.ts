/**
 * A real SQLite store for the generator and scheduler tests: a temp file
 * with the migrations applied, CAs and certificates made through the
 * store's own methods, the audit log read back from it, and a CA
 * certificate made by OpenSSL so `openssl crl -CAfile` judges each CRL.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import fs from 'node:fs';
import { AuditLog, chainHash } from '../../audit/audit-log.js';
import { caUrls } from '../../ca/issuer.js';
import type { CertificateRepository } from '../../ca/ports.js';
import { crlShardOf } from '../../ca/serial.js';
import { fixedClock } from '../../clock/clock.js';
import { parseCertificate } from '../../pki/certificate.js';
import { oid, seq } from '../../pki/der.js';
import { OID } from '../../pki/oids.js';
import { toPem } from '../../pki/pem.js';
import { openStore, type Store } from '../../store/open.js';
import { openssl, tempDir } from '../../../test/helpers/openssl.js';
import { lintingSigner, type TestCrlKey } from './signer.js';

export const testUrls = caUrls('http://pki.test:8080');

/** A store fault over `real`: while `on()`, every page of revoked entries comes twice (a TBS the CRL lint refuses). */
export function repeatingPages(real: CertificateRepository, on: () => boolean = () => true): CertificateRepository {
  return Object.assign(Object.create(real) as CertificateRepository, {
    async *revokedEntries(...args: Parameters<CertificateRepository['revokedEntries']>) {
      for await (const page of real.revokedEntries(...args)) yield on() ? [...page, ...page] : page;
    },
  });
}

/** The test database, its clock and audit log, and helpers that act through the store. */
export interface CrlTestStore {
  store: Store;
  audit: AuditLog;
  clock: ReturnType<typeof fixedClock>;
  /** Key and names of the CA made by OpenSSL (Ed25519); `signer()` wraps it in the linting stand-in. */
  key: TestCrlKey;
  signer(): ReturnType<typeof lintingSigner>;
  /** Inserts a CA row (certificates reference it). */
  addCa(id: string): Promise<void>;
  /** Issues (as far as the store knows) a certificate in shard crlShardOf(serial, shards); returns its serial. */
  issue(caId: string, shards: number, notAfter: Date, serialHex?: string): Promise<string>;
  revoke(caId: string, serialHex: string, reason: number, at?: Date): Promise<void>;
  release(caId: string, serialHex: string, at?: Date): Promise<void>;
  /** Audit events of one type, data parsed. */
  events(type: string): Promise<Record<string, unknown>[]>;
  /** `openssl crl -text` of a CRL, verified against the CA certificate (throws when it does not verify). */
  opensslText(der: Buffer): Promise<string>;
  close(): Promise<void>;
}

/** A fresh database and CA certificate; `start` is the clock's time. */
export async function crlTestStore(start: Date): Promise<CrlTestStore> {
  const dir = tempDir('trellis-crl-store-');
  const store = await openStore(`file:${dir.file('crl.db')}`);
  const clock = fixedClock(start);
  const audit = new AuditLog(store.audit, clock);
  const { privateKey } = generateKeyPairSync('ed25519');
  fs.writeFileSync(dir.file('ca.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const caPem = dir.file('ca.pem');
  await openssl('req', '-x509', '-new', '-key', dir.file('ca.key'), '-subj', '/O=Trellis Test/CN=CRL Store Test CA', '-days', '3650',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', caPem);
  const subjectDer = parseCertificate(Buffer.from(fs.readFileSync(caPem, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64')).subjectDer;
  const key: TestCrlKey = { subjectDer, keyIdentifier: Buffer.alloc(20, 5), signatureAlgorithm: seq(oid(OID.ed25519)), sign: (tbs) => sign(null, tbs, privateKey) };
  const noAudit = { drafts: [], chain: chainHash };
  let files = 0;
  return {
    store,
    audit,
    clock,
    key,
    signer: () => lintingSigner(key),
    async addCa(id) {
      await store.cas.insert({
        id, name: `${id} name`, role: 'issuing', parentId: null, certDer: Buffer.from(`cert of ${id}`), subject: `CN=${id}`,
        skiHex: key.keyIdentifier.toString('hex'), keyRef: JSON.stringify({ type: 'software', keyId: `key-${id}` }), notBefore: start, notAfter: new Date(start.getTime() + 3650 * 86_400_000),
      });
    },
    async issue(caId, shards, notAfter, serialHex = `7${randomBytes(16).toString('hex').slice(1)}`) {
      await store.certificates.insertIntents([{
        issuerId: caId, serialHex, profile: 'server', subject: 'CN=crl.test', sans: '[]', notBefore: start, notAfter,
        lintDer: randomBytes(32), crlShard: crlShardOf(serialHex, shards), requestedVia: 'api', requestedBy: null,
      }]);
      await store.certificates.completeMany({ issued: [{ issuerId: caId, serialHex, der: randomBytes(64), issuedAt: start }], failed: [] }, noAudit);
      return serialHex;
    },
    async revoke(caId, serialHex, reason, at = clock.now()) {
      const r = await store.certificates.revoke(caId, serialHex, { reason, revokedAt: at, invalidityDate: null, revokedBy: 'test' });
      if (r !== 'revoked') throw new Error(`revoke ${serialHex}: ${r}`);
    },
    async release(caId, serialHex, at = clock.now()) {
      const r = await store.certificates.releaseHold(caId, serialHex, at);
      if (r !== 'released') throw new Error(`release ${serialHex}: ${r}`);
    },
    async events(type) {
      return (await store.audit.range(1, 100_000)).filter((e) => e.type === type).map((e) => JSON.parse(e.data) as Record<string, unknown>);
    },
    async opensslText(der) {
      const file = dir.file(`crl-${files++}.pem`);
      fs.writeFileSync(file, toPem('X509 CRL', der));
      const text = await openssl('crl', '-in', file, '-CAfile', caPem, '-noout', '-text');
      if (!/verify OK/.test(text)) throw new Error(`CRL does not verify: ${text}`);
      return text;
    },
    async close() {
      await store.close();
      dir.cleanup();
    },
  };
}
