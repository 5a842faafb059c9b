/** ACME error answers: RFC 8555 problems with a fresh nonce; a server fault names only the request id. */
import http from 'node:http';
import express from 'express';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { PkiError } from '../errors/pki-error.js';
import type { NonceService } from '../ra/acme/nonces.js';
import { Links } from './links.js';
import { acmeErrors } from './pipeline.js';

const secret = 'lint e_validity_invalid on key issuing-1-7f3a';
const lines: Record<string, unknown>[] = [];
let server: http.Server;
let url: string;

beforeAll(async () => {
  const router = express.Router();
  router.post('/fault', () => {
    throw new PkiError('lintFailed', secret);
  });
  router.post('/bad', () => {
    throw new PkiError('malformed', 'payload is not an object');
  });
  router.use(acmeErrors({ issue: () => 'nonce-1' } as unknown as NonceService, 'server', Links.fromBaseUrl('https://ca.example/'), (e) => void lines.push(e)));
  const app = express().use('/acme', router);
  // As the front does: an id per request.
  server = http.createServer((req, res) => {
    req.requestId = '0123456789abcdef';
    app(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

test('a server fault: 500 serverInternal naming the request id, with a nonce and the index link of the base URL; the log has the detail', async () => {
  const res = await fetch(`${url}/acme/fault`, { method: 'POST', headers: { host: 'evil.example' } });
  expect(res.status).toBe(500);
  const text = await res.text();
  expect(JSON.parse(text)).toEqual({ type: 'urn:ietf:params:acme:error:serverInternal', title: 'Internal error', status: 500, detail: 'internal error; quote request id 0123456789abcdef' });
  expect(text).not.toContain('issuing-1');
  expect(res.headers.get('replay-nonce')).toBe('nonce-1');
  expect(res.headers.get('link')).toBe('<https://ca.example/acme/server/directory>;rel="index"');
  expect(lines.find((l) => l.id === '0123456789abcdef')).toMatchObject({ level: 'error', type: 'lintFailed', path: '/acme/fault' });
  expect(String(lines.find((l) => l.id === '0123456789abcdef')?.error)).toContain(secret);
});

test('a client error keeps its detail', async () => {
  const res = await fetch(`${url}/acme/bad`, { method: 'POST' });
  expect(res.status).toBe(400);
  expect(((await res.json()) as { detail: string }).detail).toBe('payload is not an object');
});
