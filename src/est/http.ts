/**
 * EST (RFC 7030) on the node:http hot path, under /.well-known/est/ and
 * /.well-known/est/{profile}/ (default label: the `device` profile). Only
 * profiles whose `enrollment` lists `est` answer. Devices authenticate with
 * HTTP Basic (device id and one-time enrollment secret) or the client
 * certificate of the TLS handshake (a factory IDevID for simpleenroll, their
 * current Trellis certificate for simplereenroll); the policy is
 * ra/devices/enroll.ts. Enrollment is never deferred (no 202).
 */
import { generateKeyPairSync } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { isPkiError, PkiError } from '../errors/pki-error.js';
import { internalErrorDetail, problems } from '../errors/problem.js';
import { loadSpki } from '../pki/public-key.js';
import type { Profile } from '../profiles/types.js';
import type { DeviceAuth, DeviceEnrollment, Enrolled } from '../ra/devices/enroll.js';
import { certsOnly, csrAttrs, type CsrAttr } from './cms.js';

export interface EstDeps {
  enrollment: Pick<DeviceEnrollment, 'enroll' | 'refused'>;
  profiles: ReadonlyMap<string, Profile>;
  /** The CA certificates (DER) a device of `profile` trusts: its issuing CA up to the root. */
  caChain(profile: Profile): Buffer[];
  log?: (e: Record<string, unknown>) => void;
}

export const defaultEstLabel = 'device';
/** A CSR is a few KB; base64 of anything larger is not one. */
export const maxEstBodyBytes = 64 * 1024;
export const estRealm = 'trellis-est';

const route = /^\/\.well-known\/est\/(?:([A-Za-z0-9][A-Za-z0-9_-]{0,63})\/)?(cacerts|simpleenroll|simplereenroll|csrattrs|serverkeygen)$/;
const certsOnlyType = 'application/pkcs7-mime; smime-type=certs-only';
const oids = {
  serialNumber: '2.5.4.5',
  commonName: '2.5.4.3',
  ecPublicKey: '1.2.840.10045.2.1',
  'P-256': '1.2.840.10045.3.1.7',
  'P-384': '1.3.132.0.34',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ed25519: '1.3.101.112',
} as const;

/** What the profile wants in a CSR (RFC 7030 §4.5): the device id attribute and the key algorithms it takes. */
export function csrAttrsFor(profile: Profile): CsrAttr[] {
  const out: CsrAttr[] = [];
  for (const a of profile.deviceId?.from ?? []) out.push(a === 'serialNumber' ? oids.serialNumber : oids.commonName);
  const ec = profile.keys.ecdsa ?? [];
  if (ec.length) {
    out.push({ type: oids.ecPublicKey, values: ec.map((c) => oids[c]) });
    out.push(ec[0] === 'P-384' ? oids.ecdsaWithSha384 : oids.ecdsaWithSha256);
  }
  if (profile.keys.ed25519) out.push(oids.ed25519);
  if (profile.keys.rsa) out.push(oids.rsaEncryption);
  return out;
}

function base64Body(der: Buffer): string {
  return `${der.toString('base64').replace(/.{1,64}/g, '$&\r\n')}`;
}

function sendBase64(res: ServerResponse, type: string, der: Buffer): void {
  const body = base64Body(der);
  res.writeHead(200, { 'content-type': type, 'content-transfer-encoding': 'base64', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  const body = `${text}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxEstBodyBytes) return reject(new PkiError('payloadTooLarge', `request body is larger than ${maxEstBodyBytes} bytes`));
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > maxEstBodyBytes) {
        req.removeAllListeners('data');
        req.resume();
        reject(new PkiError('payloadTooLarge', `request body is larger than ${maxEstBodyBytes} bytes`));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The base64 DER PKCS#10 of an enroll request (RFC 7030 §4.2.1). */
async function readCsr(req: IncomingMessage): Promise<Buffer> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/pkcs10') throw new PkiError('unsupportedMediaType', 'send the CSR as application/pkcs10 (base64 of the DER)');
  const text = (await readBody(req)).toString('latin1').replace(/\s+/g, '');
  if (text.length === 0) throw new PkiError('badCSR', 'empty request body: send the base64 DER of a PKCS#10 CSR');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 === 1) throw new PkiError('badCSR', 'the body is not base64 (send the base64 DER of a PKCS#10 CSR)');
  return Buffer.from(text, 'base64');
}

/** The client certificate chain of the TLS handshake (DER, leaf first); empty without one. */
export function peerChain(req: IncomingMessage): Buffer[] {
  const sock = req.socket as Partial<TLSSocket>;
  if (!sock.encrypted || typeof sock.getPeerCertificate !== 'function') return [];
  let c = sock.getPeerCertificate(true);
  const out: Buffer[] = [];
  const seen = new Set<string>();
  while (c && c.raw && out.length < 6) {
    const key = c.raw.toString('base64');
    if (seen.has(key)) break;
    seen.add(key);
    out.push(c.raw);
    c = c.issuerCertificate;
  }
  return out;
}

function basicCredentials(req: IncomingMessage): { deviceId: string; secret: string } | undefined | null {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(h);
  if (!m) return null;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i <= 0) return null;
  return { deviceId: text.slice(0, i), secret: text.slice(i + 1) };
}

/** How an enroll request authenticated: Basic first, else the TLS client certificate. */
function authOf(req: IncomingMessage, op: 'simpleenroll' | 'simplereenroll' | 'serverkeygen'): DeviceAuth {
  const chain = peerChain(req);
  if (op === 'simplereenroll') {
    if (chain.length === 0) throw new PkiError('unauthorized', 're-enrollment needs the current device certificate as the TLS client certificate');
    return { method: 'reenroll', chain };
  }
  const basic = basicCredentials(req);
  if (basic === null) throw new PkiError('unauthorized', 'malformed HTTP Basic credentials');
  if (basic) return { method: 'secret', ...basic };
  if (chain.length) return { method: 'idevid', chain };
  throw new PkiError('unauthorized', 'authenticate with HTTP Basic (device id and enrollment secret) or a factory identity certificate');
}

function multipartKeygen(keyDer: Buffer, certsDer: Buffer): { boundary: string; body: string } {
  const boundary = `est-${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
  const part = (type: string, der: Buffer) => `--${boundary}\r\nContent-Type: ${type}\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Body(der)}`;
  return { boundary, body: `${part('application/pkcs8', keyDer)}${part(certsOnlyType, certsDer)}--${boundary}--\r\n` };
}

/** The EST hot handler: true when it took the request. */
export function estHandler(deps: EstDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = (req.url ?? '/').split('?')[0]!;
    if (!url.startsWith('/.well-known/est/')) return false;
    void handle(req, res, url).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (isPkiError(err)) {
        const status = problems[err.type].status;
        if (status < 500) {
          sendText(res, status, err.message, {
            ...(status === 401 ? { 'www-authenticate': `Basic realm="${estRealm}"` } : {}),
            ...(err.retryAfterSeconds !== undefined ? { 'retry-after': String(err.retryAfterSeconds) } : {}),
          });
          return;
        }
      }
      deps.log?.({ level: 'error', msg: 'EST request failed', reqId: req.requestId, path: url, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
      sendText(res, 500, internalErrorDetail(req.requestId));
    });
    return true;
  };

  async function handle(req: IncomingMessage, res: ServerResponse, url: string): Promise<void> {
    const m = route.exec(url);
    if (!m) throw new PkiError('notFound', 'no such EST resource');
    const label = m[1] ?? defaultEstLabel;
    const op = m[2] as 'cacerts' | 'simpleenroll' | 'simplereenroll' | 'csrattrs' | 'serverkeygen';
    const profile = deps.profiles.get(label);
    if (!profile || !profile.enrollment.includes('est')) throw new PkiError('notFound', `no EST service for "${label}" (its profile must list est under enrollment)`);
    const get = op === 'cacerts' || op === 'csrattrs';
    if (req.method !== (get ? 'GET' : 'POST')) {
      sendText(res, 405, `${op} takes ${get ? 'GET' : 'POST'}`, { allow: get ? 'GET' : 'POST' });
      return;
    }
    if (op === 'cacerts') return sendBase64(res, certsOnlyType, certsOnly(deps.caChain(profile)));
    if (op === 'csrattrs') return sendBase64(res, 'application/csrattrs', csrAttrs(csrAttrsFor(profile)));
    // Credentials (a password, a private key on the way back) only over TLS.
    if (!(req.socket as Partial<TLSSocket>).encrypted) throw new PkiError('forbidden', 'EST enrollment needs TLS (trellis serve --tls)');
    // A request without credentials is the RFC's challenge step (401), not audited; from here on every refusal is.
    const auth = authOf(req, op);
    let csr: Buffer;
    try {
      csr = await readCsr(req);
    } catch (err) {
      if (isPkiError(err)) await deps.enrollment.refused(auth, 'est', err);
      throw err;
    }
    if (op === 'serverkeygen') {
      // RFC 7030 §4.4: the server makes the key (P-256); the CSR's key is ignored. The key is never logged or stored.
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const spkiDer = publicKey.export({ type: 'spki', format: 'der' });
      const r = await deps.enrollment.enroll({ auth, csr, ...(m[1] ? { profile: label } : {}), via: 'est', replaceKey: { spkiDer, keyInfo: loadSpki(spkiDer).info } });
      const { boundary, body } = multipartKeygen(privateKey.export({ type: 'pkcs8', format: 'der' }), certsOnly([r.issued.certDer]));
      res.writeHead(200, { 'content-type': `multipart/mixed; boundary=${boundary}`, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    const r: Enrolled = await deps.enrollment.enroll({ auth, csr, ...(m[1] ? { profile: label } : {}), via: 'est' });
    sendBase64(res, certsOnlyType, certsOnly([r.issued.certDer]));
  }
}
