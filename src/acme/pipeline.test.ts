/**
 * ACME error answers: RFC 8555 problems with a fresh nonce; a server fault
 * names only the request id. Every POST answer waits until the store's writes
 * before it are on disk.
 */
import http from 'node:http';
import express from 'express';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { PkiError } from '../errors/pki-error.js';
import type { NonceService } from '../ra/acme/nonces.js';
import { Links } from './links.js';
import { acmeErrors, durableAnswers, jsonBody } from './pipeline.js';

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

/** A server whose POST /w answers once `durable` resolves; GET /r answers at once. */
async function durableServer(durable: () => Promise<void>, log: (e: Record<string, unknown>) => void = () => {}) {
  const router = express.Router();
  router.use(durableAnswers({ durable } as unknown as NonceService, log));
  router.post('/w', (_req, res) => void res.json({ ok: true }));
  router.get('/r', (_req, res) => void res.json({ ok: true }));
  const s = http.createServer(express().use('/acme', router));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(s.address() as { port: number }).port}`, close: () => new Promise<void>((r) => s.close(() => r())) };
}

test('a POST answer leaves only once the writes before it are on disk; a GET does not wait', async () => {
  let synced!: () => void;
  const durable = () => new Promise<void>((r) => (synced = r));
  const s = await durableServer(durable);
  try {
    let answered = false;
    const post = fetch(`${s.base}/acme/w`, { method: 'POST' }).then(async (res) => {
      answered = true;
      return res.json();
    });
    await expect(fetch(`${s.base}/acme/r`).then((r) => r.json())).resolves.toEqual({ ok: true });
    expect(answered).toBe(false);
    synced();
    await expect(post).resolves.toEqual({ ok: true });
  } finally {
    await s.close();
  }
});

test('when the writes cannot be made durable, the POST gets no answer and the failure is logged', async () => {
  const logged: Record<string, unknown>[] = [];
  const s = await durableServer(() => Promise.reject(new Error('EIO')), (e) => void logged.push(e));
  try {
    await expect(fetch(`${s.base}/acme/w`, { method: 'POST' })).rejects.toThrow();
    expect(logged).toEqual([expect.objectContaining({ level: 'error', path: '/acme/w', error: 'Error: EIO' })]);
  } finally {
    await s.close();
  }
});

/** A server whose POST /j answers the body jsonBody read (or the problem), with a 64-byte limit; encoded bodies go to a fallback that says so. */
async function jsonServer() {
  const router = express.Router();
  const fallback: express.RequestHandler = (_req, res) => void res.json({ fallback: true });
  router.post('/j', jsonBody(64, fallback), (req, res) => void res.json({ body: req.body as unknown }));
  router.use(acmeErrors({ issue: () => 'nonce-1' } as unknown as NonceService, 'server', Links.fromBaseUrl('https://ca.example/'), () => {}));
  const s = http.createServer(express().use('/acme', router));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(s.address() as { port: number }).port}`, close: () => new Promise<void>((r) => s.close(() => r())) };
}

test('jsonBody reads JSON as express.json({ strict: true }) does: empty is {}, a BOM is ignored, scalars and junk are malformed, over the limit is 413', async () => {
  const s = await jsonServer();
  const post = async (body: string | Uint8Array, headers: Record<string, string> = {}) => {
    const res = await fetch(`${s.base}/acme/j`, { method: 'POST', body, headers: { 'content-type': 'application/jose+json', ...headers } });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  try {
    await expect(post(' \n{"a":[1,"é"]}')).resolves.toEqual({ status: 200, json: { body: { a: [1, 'é'] } } });
    await expect(post('')).resolves.toEqual({ status: 200, json: { body: {} } });
    await expect(post('\uFEFF[true]')).resolves.toEqual({ status: 200, json: { body: [true] } });
    for (const junk of ['"a string"', '42', '{"a":', 'not json']) {
      await expect(post(junk)).resolves.toMatchObject({ status: 400, json: { type: 'urn:ietf:params:acme:error:malformed', detail: 'request body is not valid JSON' } });
    }
    // A stream of unknown length (chunked) is cut off at the limit.
    const big = new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode(`{"a":"${'x'.repeat(100)}"}`)), c.close()) });
    const res = await fetch(`${s.base}/acme/j`, { method: 'POST', body: big, duplex: 'half', headers: { 'content-type': 'application/jose+json' } } as RequestInit);
    expect(res.status).toBe(413);
    await expect(post('{}', { 'content-encoding': 'gzip' })).resolves.toEqual({ status: 200, json: { fallback: true } });
    await expect(post('{}', { 'content-type': 'application/jose+json; charset=utf-8' })).resolves.toEqual({ status: 200, json: { fallback: true } });
  } finally {
    await s.close();
  }
});
