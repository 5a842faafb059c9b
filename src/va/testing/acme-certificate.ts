/**
 * tls-alpn-01 responder certificates for the validator's tests, made by the
 * openssl CLI so that the code judging them did not build them (STYLE.md:
 * OpenSSL is the oracle). It runs openssl itself rather than through
 * test/helpers, because files under src/ (other than *.test.ts) are compiled
 * into dist/ and may not import from test/.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What to put in the certificate. */
export interface AcmeCertificateSpec {
  /** openssl subjectAltName syntax (`DNS:a.test,IP:127.0.0.1`); omitted when undefined. */
  san?: string;
  /** Hex of the acmeIdentifier extnValue; omitted when undefined. */
  acmeIdentifierHex?: string;
  /** Mark acmeIdentifier critical (default true). */
  critical?: boolean;
}

/** The DER extnValue RFC 8737 §3 asks for: OCTET STRING (SIZE (32)) of SHA-256(keyAuthorization), as hex. */
export const acmeIdentifierHex = (keyAuthorization: string): string => '0420' + createHash('sha256').update(keyAuthorization).digest('hex');

/** A self-signed P-256 certificate and key, PEM. */
export async function makeAcmeCertificate(spec: AcmeCertificateSpec): Promise<{ certPem: string; keyPem: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-va-'));
  const file = (name: string) => path.join(dir, name);
  try {
    const ext: string[] = [];
    if (spec.san !== undefined) ext.push('-addext', `subjectAltName=${spec.san}`);
    if (spec.acmeIdentifierHex !== undefined) {
      const der = spec.acmeIdentifierHex.match(/../g)!.join(':');
      ext.push('-addext', `1.3.6.1.5.5.7.1.31=${spec.critical === false ? '' : 'critical,'}DER:${der}`);
    }
    // Rejects (with openssl's stderr) when openssl exits non-zero.
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=ACME challenge', '-days', '1',
      ...ext, '-keyout', file('key.pem'), '-out', file('cert.pem')]);
    return { certPem: fs.readFileSync(file('cert.pem'), 'utf8'), keyPem: fs.readFileSync(file('key.pem'), 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
