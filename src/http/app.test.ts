/**
 * A 5xx answer carries no internal detail: the admin API behind the real
 * front, with an RA stub that fails the way a server fault does. The client
 * gets a generic serverInternal problem naming the request id; the error
 * log line with that id has the message.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { systemClock } from '../clock/clock.js';
import { PkiError } from '../errors/pki-error.js';
import type { RegistrationAuthority } from '../ra/registration.js';
import type { RevocationAuthority } from '../ra/revoke.js';
import type { TokenVerifier } from '../tokens/tokens.js';
import { createApp } from './app.js';
import { frontHandler } from './front.js';
import { listen, type RunningServer } from './listen.js';

const secret = 'key issuing-1-7f3a envelope check failed; passphrase file /etc/trellis/pass';
let fault: unknown;
const lines: Record<string, unknown>[] = [];
let server: RunningServer;

beforeAll(async () => {
  const ra = {
    requestCertificate: async () => {
      throw fault;
    },
  } as unknown as RegistrationAuthority;
  const tokens = { verify: async () => ({ id: 'tok_test', role: 'admin', name: 'test', profiles: null }) } as unknown as TokenVerifier;
  const log = (e: Record<string, unknown>) => void lines.push(e);
  const app = createApp({ ra, revocation: {} as RevocationAuthority, revocationSeconds: { ocsp: 5, crl: 60 }, tokens, log, bodyLimitBytes: 65536 });
  server = await listen(frontHandler({ app, caCertificate: () => undefined, ready: () => true, log, clock: systemClock }), { host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await server?.close(0);
});

async function issueWith(err: unknown) {
  fault = err;
  const res = await fetch(`${server.url}/api/v1/certificates`, {
    method: 'POST',
    headers: { authorization: 'Bearer trellis_x', 'content-type': 'application/json' },
    body: JSON.stringify({ profile: 'server', csr: 'x' }),
  });
  return { res, text: await res.text(), id: res.headers.get('x-request-id') };
}

test.each<[string, unknown]>([
  ['an Error that is not a PkiError', new Error(secret)],
  ['lintFailed (lint findings)', new PkiError('lintFailed', `pre-issuance lint failed: e_validity_invalid (${secret})`)],
  ['keyIntegrity (key ids)', new PkiError('keyIntegrity', secret)],
  ['invalidConfig (configuration text)', new PkiError('invalidConfig', secret)],
  ['badPassphrase', new PkiError('badPassphrase', secret)],
])('%s: 500 serverInternal naming only the request id; the log line with that id has the detail', async (_name, err) => {
  const { res, text, id } = await issueWith(err);
  expect(res.status).toBe(500);
  expect(id).toMatch(/^[0-9a-f]{16}$/);
  const doc = JSON.parse(text);
  expect(doc).toEqual({ type: 'urn:trellis:problem:serverInternal', title: 'Internal error', status: 500, detail: `internal error; quote request id ${id}` });
  for (const word of ['issuing-1-7f3a', 'passphrase', 'e_validity_invalid', 'trellis.json', '/etc/']) expect(text).not.toContain(word);
  const logged = lines.find((l) => l.level === 'error' && l.reqId === id);
  expect(logged?.error).toContain(secret);
  expect(logged?.path).toBe('/api/v1/certificates');
});

test('a client error (4xx) still says what is wrong, and carries the request id header', async () => {
  const { res, text, id } = await issueWith(new PkiError('badCSR', 'CSR signature does not verify'));
  expect(res.status).toBe(400);
  expect(id).toMatch(/^[0-9a-f]{16}$/);
  expect(JSON.parse(text).detail).toBe('CSR signature does not verify');
});

test('every response, the hot paths included, carries an X-Request-Id of its own', async () => {
  const a = await fetch(`${server.url}/healthz`);
  const b = await fetch(`${server.url}/healthz`);
  expect(a.headers.get('x-request-id')).toMatch(/^[0-9a-f]{16}$/);
  expect(a.headers.get('x-request-id')).not.toBe(b.headers.get('x-request-id'));
});
