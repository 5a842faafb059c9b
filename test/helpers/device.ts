/**
 * A device simulator for the enrollment tests: its own keys and CSRs (the
 * device id in the subject serialNumber), a factory CA and IDevIDs made with
 * OpenSSL, and an EST client (RFC 7030) over Node https, with or without a
 * client certificate.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { makeCsr, openssl } from './openssl.js';

export interface Factory {
  name: string;
  certPath: string;
  keyPath: string;
  certPem: string;
}

/** A manufacturer CA (P-256, self-signed) as a factory would have. */
export async function makeFactoryCa(dir: string, name = 'factory', opts: { days?: number } = {}): Promise<Factory> {
  const keyPath = path.join(dir, `${name}-ca.key`);
  const certPath = path.join(dir, `${name}-ca.pem`);
  await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath, '-subj', `/O=${name}/CN=${name} IDevID CA`, '-days', String(opts.days ?? 3650),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', certPath);
  return { name, certPath, keyPath, certPem: fs.readFileSync(certPath, 'utf8') };
}

export interface DeviceCredential {
  keyPath: string;
  certPath: string;
  certPem: string;
}

/** An IDevID for `deviceId` (subject serialNumber) signed by the factory CA. */
export async function makeIdevid(dir: string, factory: Factory, deviceId: string, opts: { days?: number; name?: string } = {}): Promise<DeviceCredential> {
  const name = opts.name ?? `idevid-${deviceId}`;
  const { keyPath, csrPath } = await makeCsr(dir, name, `/O=${factory.name}/serialNumber=${deviceId}`);
  const certPath = path.join(dir, `${name}.pem`);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  await openssl('x509', '-req', '-in', csrPath, '-CA', factory.certPath, '-CAkey', factory.keyPath, '-CAcreateserial', '-days', String(opts.days ?? 3650), '-sha256', '-extfile', ext, '-out', certPath);
  return { keyPath, certPath, certPem: fs.readFileSync(certPath, 'utf8') };
}

/** A device key and CSR naming `deviceId` (subject serialNumber); base64 DER as EST sends it. */
export async function deviceCsr(dir: string, deviceId: string, name = `dev-${deviceId}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`): Promise<{ keyPath: string; csrPath: string; csrPem: string; csrB64: string; b64Path: string }> {
  const r = await makeCsr(dir, name, `/serialNumber=${deviceId}`);
  const b64 = r.csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const b64Path = path.join(dir, `${name}.b64`);
  fs.writeFileSync(b64Path, `${b64}\n`);
  return { ...r, csrB64: b64, b64Path };
}

export interface EstResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

export interface EstClientOptions {
  /** https://host:port */
  baseUrl: string;
  /** CA the server's certificate chains to. */
  ca: string;
  /** TLS server name when it differs from the URL's host (e.g. localhost while connecting to 127.0.0.1). */
  servername?: string;
  /** Client certificate (PEM) and key file for mutual TLS. */
  cert?: string;
  key?: string;
}

/** An EST client over Node https (a fresh connection per request). */
export function estClient(opts: EstClientOptions) {
  function request(method: 'GET' | 'POST', p: string, init: { body?: string; type?: string; user?: { id: string; secret: string } } = {}): Promise<EstResponse> {
    const url = new URL(p, opts.baseUrl);
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method,
          ca: opts.ca,
          agent: false,
          ...(opts.servername ? { servername: opts.servername } : {}),
          ...(opts.cert ? { cert: opts.cert, key: fs.readFileSync(opts.key!, 'utf8') } : {}),
          headers: {
            ...(init.type ? { 'content-type': init.type } : {}),
            ...(init.user ? { authorization: `Basic ${Buffer.from(`${init.user.id}:${init.user.secret}`).toString('base64')}` } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const body = Buffer.concat(chunks);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
          });
        },
      );
      req.on('error', reject);
      req.end(init.body);
    });
  }
  const prefix = (label?: string) => `/.well-known/est/${label ? `${label}/` : ''}`;
  return {
    cacerts: (label?: string) => request('GET', `${prefix(label)}cacerts`),
    csrattrs: (label?: string) => request('GET', `${prefix(label)}csrattrs`),
    simpleenroll: (csrB64: string, o: { user?: { id: string; secret: string }; label?: string } = {}) =>
      request('POST', `${prefix(o.label)}simpleenroll`, { body: csrB64, type: 'application/pkcs10', ...(o.user ? { user: o.user } : {}) }),
    simplereenroll: (csrB64: string, o: { label?: string } = {}) => request('POST', `${prefix(o.label)}simplereenroll`, { body: csrB64, type: 'application/pkcs10' }),
    serverkeygen: (csrB64: string, o: { user?: { id: string; secret: string }; label?: string } = {}) =>
      request('POST', `${prefix(o.label)}serverkeygen`, { body: csrB64, type: 'application/pkcs10', ...(o.user ? { user: o.user } : {}) }),
  };
}

/** The certificates of a base64 certs-only CMS answer, as PEM, read by OpenSSL (the oracle). */
export async function certsOfPkcs7(dir: string, b64: string, name = `p7-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`): Promise<string[]> {
  const der = path.join(dir, `${name}.p7`);
  fs.writeFileSync(der, Buffer.from(b64, 'base64'));
  const out = await openssl('pkcs7', '-inform', 'DER', '-in', der, '-print_certs');
  return [...out.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)].map((m) => m[0]);
}
