/**
 * The hot `POST /api/v1/certificates` (issue-hot.ts) answers like the express
 * route it stands in front of: every request below goes to two fronts, one
 * with express alone and one with the hot handler first, and the answers must
 * be the same status, headers (in order) and bytes, with the same call to
 * the RA. The requests cover success in every form, bad input (malformed
 * JSON, wrong types, unknown fields, oversize bodies, missing and invalid
 * tokens, roles and profiles the token may not use), server faults, and the
 * shapes the hot handler leaves to express (which it must not touch).
 */
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { IssuedCertificate } from '../../ca/authority.js';
import { systemClock } from '../../clock/clock.js';
import { PkiError } from '../../errors/pki-error.js';
import type { CertificateRequestInput, RegistrationAuthority } from '../../ra/registration.js';
import type { RevocationAuthority } from '../../ra/revoke.js';
import type { TokenVerifier } from '../../tokens/tokens.js';
import { createApp } from '../app.js';
import { frontHandler } from '../front.js';
import { listen, type RunningServer } from '../listen.js';
import { issueCertificateHandler } from './issue-hot.js';

const limit = 2048;
const issued: IssuedCertificate = {
  issuerId: 'issuing-1',
  serialHex: '0a1b2c3d4e5f60718293a4b5c6d7e8f9',
  profile: 'server',
  certDer: Buffer.from('3082000a0201013003020100', 'hex'),
  chainDer: [Buffer.from('30820003020102', 'hex')],
  notBefore: new Date('2026-01-01T00:00:00Z'),
  notAfter: new Date('2026-04-01T00:00:00Z'),
};

/** Tokens by secret: an issuer, an auditor (may not issue), an enrollment token limited to `device`. */
const tokenRows: Record<string, { id: string; role: string; profiles: string[] | null }> = {
  trellis_issuer: { id: 'tok_issuer', role: 'issuer', profiles: null },
  trellis_auditor: { id: 'tok_auditor', role: 'auditor', profiles: null },
  trellis_device: { id: 'tok_device', role: 'enrollment', profiles: ['device'] },
};
const tokens = {
  verify: async (secret: string | undefined) => {
    if (!secret || !secret.startsWith('trellis_')) throw new PkiError('unauthorized', 'missing or malformed bearer token');
    const t = tokenRows[secret];
    if (!t) throw new PkiError('unauthorized', 'unknown token');
    return { ...t, name: null };
  },
} as unknown as TokenVerifier;

type Call = { front: 'express' | 'hot'; input: CertificateRequestInput };
const calls: Call[] = [];
const logs: Record<string, unknown>[] = [];
let taken = 0;

function raFor(front: Call['front']): RegistrationAuthority {
  return {
    requestCertificate: async (input: CertificateRequestInput) => {
      calls.push({ front, input });
      if (input.csr === 'fault') throw new Error('key issuing-1 envelope check failed');
      if (input.csr === 'bad') throw new PkiError('badCSR', 'CSR signature does not verify');
      if (input.csr === 'busy') throw new PkiError('rateLimited', 'too many requests', { retryAfterSeconds: 7 });
      return issued;
    },
  } as unknown as RegistrationAuthority;
}

let plain: RunningServer;
let hot: RunningServer;

beforeAll(async () => {
  const app = (front: Call['front']) =>
    createApp({ ra: raFor(front), revocation: {} as RevocationAuthority, revocationSeconds: { ocsp: 5, crl: 60 }, tokens, log: (e) => void logs.push({ front, ...e }), bodyLimitBytes: limit });
  plain = await listen(frontHandler({ app: app('express'), caCertificate: () => undefined, ready: () => true, log: () => {}, clock: systemClock }), { host: '127.0.0.1', port: 0 });
  const handler = issueCertificateHandler({ ra: raFor('hot'), tokens, bodyLimitBytes: limit, log: (e) => void logs.push({ front: 'hot', ...e }) });
  const counted = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const took = handler(req, res);
    if (took) taken++;
    return took;
  };
  hot = await listen(frontHandler({ app: app('hot'), caCertificate: () => undefined, ready: () => true, log: () => {}, clock: systemClock, hot: [counted] }), { host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await plain?.close(0);
  await hot?.close(0);
});

interface Sent {
  path?: string;
  headers?: Record<string, string>;
  /** Sent chunked (no Content-Length) when `chunked`. */
  body?: string | Buffer;
  chunked?: boolean;
}

interface Answer {
  status: number;
  headers: string[];
  body: Buffer;
}

function send(server: RunningServer, s: Sent): Promise<Answer> {
  const url = new URL(s.path ?? '/api/v1/certificates', server.url);
  const body = s.body === undefined ? undefined : Buffer.from(s.body);
  const headers: Record<string, string | number> = { 'x-request-id': 'issue-hot-test', ...s.headers };
  if (body && !s.chunked) headers['content-length'] = body.length;
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw: string[] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const name = res.rawHeaders[i]!.toLowerCase();
          if (name !== 'date') raw.push(`${name}: ${res.rawHeaders[i + 1]}`);
        }
        resolve({ status: res.statusCode!, headers: raw, body: Buffer.concat(chunks) });
      });
    });
    req.on('error', reject);
    if (body && s.chunked) {
      // Two chunks: the limit is crossed while reading, not declared.
      req.write(body.subarray(0, body.length >> 1));
      req.end(body.subarray(body.length >> 1));
    } else req.end(body);
  });
}

const json = (v: object) => ({ 'content-type': 'application/json', ...v });
const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });
const valid = JSON.stringify({ profile: 'server', csr: 'pem' });

/** [name, request, status, whether the hot handler takes it]. */
const cases: [string, Sent, number, boolean][] = [
  ['the PEM chain (no Accept)', { headers: json(bearer('trellis_issuer')), body: valid }, 201, true],
  ['the PEM chain (Accept */*)', { headers: json({ ...bearer('trellis_issuer'), accept: '*/*' }), body: valid }, 201, true],
  ['the PEM chain (Accept application/x-pem-file)', { headers: json({ ...bearer('trellis_issuer'), accept: 'application/x-pem-file' }), body: valid }, 201, true],
  ['the DER leaf (Accept application/pkix-cert)', { headers: json({ ...bearer('trellis_issuer'), accept: 'application/pkix-cert' }), body: valid }, 201, true],
  ['a JSON summary (Accept application/json)', { headers: json({ ...bearer('trellis_issuer'), accept: 'application/json' }), body: valid }, 201, true],
  ['charset=utf-8', { headers: { ...bearer('trellis_issuer'), 'content-type': 'application/json; charset=UTF-8' }, body: valid }, 201, true],
  ['a UTF-8 BOM before the JSON', { headers: json(bearer('trellis_issuer')), body: `\ufeff${valid}` }, 201, true],
  ['every field', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 'server', csr: 'pem', ca: 'issuing-1', validitySeconds: 3600 }) }, 201, true],
  ['a chunked body', { headers: json(bearer('trellis_issuer')), body: valid, chunked: true }, 201, true],
  ['an enrollment token for its profile', { headers: json(bearer('trellis_device')), body: JSON.stringify({ profile: 'device', csr: 'pem' }) }, 201, true],
  ['rejects: an Authorization that is not a bearer token', { headers: json({ authorization: 'Basic dXNlcjpwYXNz' }), body: valid }, 401, true],
  ['rejects: an empty Authorization', { headers: json({ authorization: '' }), body: valid }, 401, true],
  ['rejects: a wrong token', { headers: json(bearer('trellis_wrong')), body: valid }, 401, true],
  ['rejects: a malformed token', { headers: json(bearer('nope')), body: valid }, 401, true],
  ['rejects: a role that may not issue', { headers: json(bearer('trellis_auditor')), body: valid }, 403, true],
  ['rejects: a profile the token may not enroll', { headers: json(bearer('trellis_device')), body: valid }, 403, true],
  ['rejects: invalid JSON', { headers: json(bearer('trellis_issuer')), body: '{"profile": ' }, 400, true],
  ['rejects: a JSON string', { headers: json(bearer('trellis_issuer')), body: '"server"' }, 400, true],
  ['rejects: JSON null', { headers: json(bearer('trellis_issuer')), body: 'null' }, 400, true],
  ['rejects: blanks only', { headers: json(bearer('trellis_issuer')), body: ' \n ' }, 400, true],
  ['rejects: a JSON array', { headers: json(bearer('trellis_issuer')), body: '[1]' }, 400, true],
  ['rejects: an empty body (read as {})', { headers: json(bearer('trellis_issuer')), body: '' }, 400, true],
  ['rejects: a number as profile', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 1, csr: 'pem' }) }, 400, true],
  ['rejects: an empty csr', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 'server', csr: '' }) }, 400, true],
  ['rejects: a profile of 65 characters', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 'p'.repeat(65), csr: 'pem' }) }, 400, true],
  ['rejects: an empty ca', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 'server', csr: 'pem', ca: '' }) }, 400, true],
  ['rejects: a fractional validity', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 'server', csr: 'pem', validitySeconds: 1.5 }) }, 400, true],
  ['rejects: a zero validity', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 'server', csr: 'pem', validitySeconds: 0 }) }, 400, true],
  ['rejects: validity as a string', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 'server', csr: 'pem', validitySeconds: '3600' }) }, 400, true],
  ['rejects: an unknown field', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 'server', csr: 'pem', extra: 1 }) }, 400, true],
  ['rejects: a __proto__ member', { headers: json(bearer('trellis_issuer')), body: '{"profile":"server","csr":"pem","__proto__":{"x":1}}' }, 400, true],
  ['rejects: a declared body over the limit', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 'server', csr: 'x'.repeat(limit) }) }, 413, true],
  ['rejects: a chunked body over the limit', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 'server', csr: 'x'.repeat(limit) }), chunked: true }, 413, true],
  ['rejects: a bad CSR (the RA says why)', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 'server', csr: 'bad' }) }, 400, true],
  ['rejects: a rate limit, with Retry-After', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 'server', csr: 'busy' }) }, 429, true],
  ['a server fault: 500 naming only the request id', { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 'server', csr: 'fault' }) }, 500, true],
  ['left to express: no Authorization', { headers: json({}), body: valid }, 401, false],
  ['left to express: a query string', { path: '/api/v1/certificates?x=1', headers: json(bearer('trellis_issuer')), body: valid }, 400, false],
  ['left to express: another media type', { headers: { ...bearer('trellis_issuer'), 'content-type': 'text/plain' }, body: valid }, 415, false],
  ['a tab in the parameters', { headers: { ...bearer('trellis_issuer'), 'content-type': 'application/json;\tcharset=utf-8' }, body: valid }, 201, true],
  ['left to express: a second parameter', { headers: { ...bearer('trellis_issuer'), 'content-type': 'application/json; charset=utf-8; q=1' }, body: valid }, 201, false],
  ['spaces around the charset', { headers: { ...bearer('trellis_issuer'), 'content-type': 'Application/JSON ; charset = "utf-8" ' }, body: valid }, 201, true],
  ['left to express: another charset', { headers: { ...bearer('trellis_issuer'), 'content-type': 'application/json; charset=latin1' }, body: valid }, 415, false],
  ['left to express: a gzip body', { headers: json({ ...bearer('trellis_issuer'), 'content-encoding': 'gzip' }), body: gzipSync(valid) }, 201, false],
  ['left to express: an Accept to negotiate', { headers: json({ ...bearer('trellis_issuer'), accept: 'application/json;q=0.5, application/pkix-cert' }), body: valid }, 201, false],
];

test.each(cases)('%s: the same answer as express', async (_name, sent, status, takes) => {
  calls.length = 0;
  logs.length = 0;
  const before = taken;
  const a = await send(plain, sent);
  const b = await send(hot, sent);
  expect(taken - before).toBe(takes ? 1 : 0);
  expect(a.status).toBe(status);
  expect(b.status).toBe(a.status);
  expect(b.headers).toEqual(a.headers);
  expect(b.body.toString('latin1')).toBe(a.body.toString('latin1'));
  // The same request reached the RA (or none did).
  expect(calls.filter((c) => c.front === 'hot').map((c) => c.input)).toEqual(calls.filter((c) => c.front === 'express').map((c) => c.input));
  if (status === 201) expect(calls).toHaveLength(2);
  // A server fault is logged once per front, with the same fields.
  const strip = (l: Record<string, unknown>) => ({ ...l, front: undefined, error: String(l.error).split('\n')[0] });
  expect(logs.filter((l) => l.front === 'hot').map(strip)).toEqual(logs.filter((l) => l.front === 'express').map(strip));
  if (status === 500) expect(logs.filter((l) => l.front === 'hot')).toHaveLength(1);
});

test('a 201 carries the chain, the serial and no-store; a problem names its type', async () => {
  const ok = await send(hot, { headers: json(bearer('trellis_issuer')), body: valid });
  expect(ok.headers).toEqual(expect.arrayContaining(['cache-control: no-store', `location: /api/v1/certificates/${issued.serialHex}`, `x-trellis-serial: ${issued.serialHex}`, 'content-type: application/pem-certificate-chain; charset=utf-8']));
  expect(ok.body.toString().match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
  const bad = await send(hot, { headers: json(bearer('trellis_issuer')), body: JSON.stringify({ profile: 1, csr: 'pem' }) });
  expect(JSON.parse(bad.body.toString())).toEqual({ type: 'urn:trellis:problem:malformed', title: 'Malformed request', status: 400, detail: expect.stringMatching(/^profile: /) });
  const anon = await send(hot, { headers: json({ authorization: 'Bearer trellis_wrong' }), body: valid });
  expect(anon.headers).toContain('www-authenticate: Bearer realm="trellis"');
});

test('a connection stays usable after a refused oversize body', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const post = (body: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(new URL('/api/v1/certificates', hot.url), { method: 'POST', agent, headers: json(bearer('trellis_issuer')) }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.write(body.slice(0, 10));
      req.end(body.slice(10));
    });
  try {
    expect(await post(JSON.stringify({ profile: 'server', csr: 'x'.repeat(3 * limit) }))).toBe(413);
    expect(await post(valid)).toBe(201);
  } finally {
    agent.destroy();
  }
});
