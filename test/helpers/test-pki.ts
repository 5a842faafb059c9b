/**
 * A test PKI built by the same ceremony code the CLI runs (`trellis init`):
 * root (P-384), issuing CA (P-256), OCSP responder, on a fresh SQLite file
 * (or the PostgreSQL given in `databaseUrl`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { initInstance } from '../../src/cmd/init-instance.js';
import { unlockIssuers, keystoreFor, openInstance, registrationAuthority, type Instance } from '../../src/cmd/instance.js';
import type { IssuerSelection as Registry } from '../../src/ca/issuer-selection.js';
import type { RegistrationAuthority } from '../../src/ra/registration.js';
import { toPem } from '../../src/pki/pem.js';
import type { IssuedCertificate } from '../../src/ca/authority.js';
import { tempDir } from './openssl.js';

export const testPassphrase = 'correct horse battery staple';
/** Opens the root's key only (ceremonies); never the same as the online passphrase. */
export const testRootPassphrase = 'root of trust kept offline';

export interface TestPki {
  dir: string;
  dataDir: string;
  instance: Instance;
  issuers: Registry;
  ra: RegistrationAuthority;
  rootPem: string;
  issuingPem: string;
  /** Files holding the PEMs above (for openssl -CAfile / -untrusted). */
  rootPemPath: string;
  issuingPemPath: string;
  /** Issues from a CSR through the RA and writes leaf.pem; returns the paths. */
  issue(profile: string, csr: Buffer | string, name?: string): Promise<IssuedCertificate & { pemPath: string; chainPath: string }>;
  close(): Promise<void>;
}

export async function testPki(opts: { databaseUrl?: string; baseUrl?: string } = {}): Promise<TestPki> {
  const tmp = tempDir();
  const dataDir = path.join(tmp.dir, 'data');
  await initInstance({ dataDir, baseUrl: opts.baseUrl ?? 'http://pki.test:8080', passphrase: testPassphrase, rootPassphrase: testRootPassphrase, actor: 'test', ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}) });
  const instance = await openInstance(dataDir, opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {});
  const issuers = await unlockIssuers(instance, keystoreFor(instance, testPassphrase));
  const ra = registrationAuthority(instance, issuers);
  const root = instance.cas.find((c) => c.role === 'root')!;
  const issuing = instance.cas.find((c) => c.role === 'issuing')!;
  const rootPem = toPem('CERTIFICATE', root.certDer);
  const issuingPem = toPem('CERTIFICATE', issuing.certDer);
  fs.writeFileSync(tmp.file('root.pem'), rootPem);
  fs.writeFileSync(tmp.file('issuing.pem'), issuingPem);
  let n = 0;
  return {
    dir: tmp.dir,
    dataDir,
    instance,
    issuers,
    ra,
    rootPem,
    issuingPem,
    rootPemPath: tmp.file('root.pem'),
    issuingPemPath: tmp.file('issuing.pem'),
    async issue(profile, csr, name = `leaf-${++n}`) {
      const issued = await ra.requestCertificate({ profile, csr, requestedVia: 'cli', requestedBy: 'test' });
      const pemPath = tmp.file(`${name}.pem`);
      const chainPath = tmp.file(`${name}-chain.pem`);
      fs.writeFileSync(pemPath, toPem('CERTIFICATE', issued.certDer));
      fs.writeFileSync(chainPath, [issued.certDer, ...issued.chainDer].map((d) => toPem('CERTIFICATE', d)).join(''));
      return { ...issued, pemPath, chainPath };
    },
    async close() {
      await instance.close();
      tmp.cleanup();
    },
  };
}
