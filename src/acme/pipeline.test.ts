/**
 * ACME error answers: RFC 8555 problems with a fresh nonce; a server fault
 * names only the request id. Every POST answer waits until its nonce is recorded
 * (a replay is badNonce) and the store's writes before it are on disk. The
 * dispatcher matches as express's router did.
 */
import http from 'node:http';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { PkiError } from '../errors/pki-error.js';
import type { NonceService, PendingNonce } from '../ra/acme/nonces.js';
import { acmeDispatcher, type AcmeRoute } from './dispatch.js';
import { Links } from './links.js';
import { readJsonBody, type AcmeRequest, type BodyParser, type PipelineDeps } from './pipeline.js';

const secret = 'lint e_validity_invalid on key issuing-1-7f3a';
const links = Links.fromBaseUrl('https://ca.example/');

/** A server with `routes` under /acme (a 404 otherwise), as the front runs it: an id per request. */
async function serverOf(routes: AcmeRoute[], opts: { durable?: () => Promise<void>; log?: (e: Record<string, unknown>) => void } = {}) {
  const nonces = { issue: () => 'nonce-1', durable: opts.durable ?? (() => Promise.resolve()) } as unknown as NonceService;
  const handler = acmeDispatcher(routes, { pipeline: {} as PipelineDeps, nonces, links, defaultProfile: 'server', log: opts.log ?? (() => {}) });
  const s = http.createServer((req, res) => {
    req.requestId = '0123456789abcdef';
    if (!handler(req, res)) res.writeHead(404).end('not acme');
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(s.address() as { port: number }).port}`, close: () => new Promise<void>((r) => s.close(() => r())) };
}

const lines: Record<string, unknown>[] = [];
let errors: Awaited<ReturnType<typeof serverOf>>;

beforeAll(async () => {
  errors = await serverOf(
    [
      {
        method: 'POST',
        path: '/fault',
        handle: () => {
          throw new PkiError('lintFailed', secret);
        },
      },
      {
        method: 'POST',
        path: '/bad',
        handle: (x) => {
          x.set('Retry-After', '9');
          throw new PkiError('malformed', 'payload is not an object');
        },
      },
      { method: 'GET', path: '/:profile/thing/:id', handle: (x) => x.json({ params: x.params }) },
    ],
    { log: (e) => void lines.push(e) },
  );
});
afterAll(() => errors.close());

test('a server fault: 500 serverInternal naming the request id, with a nonce and the index link of the base URL; the log has the detail', async () => {
  const res = await fetch(`${errors.base}/acme/fault`, { method: 'POST', headers: { host: 'evil.example' } });
  expect(res.status).toBe(500);
  const text = await res.text();
  expect(JSON.parse(text)).toEqual({ type: 'urn:ietf:params:acme:error:serverInternal', title: 'Internal error', status: 500, detail: 'internal error; quote request id 0123456789abcdef' });
  expect(text).not.toContain('issuing-1');
  expect(res.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
  expect(res.headers.get('replay-nonce')).toBe('nonce-1');
  expect(res.headers.get('link')).toBe('<https://ca.example/acme/server/directory>;rel="index"');
  expect(lines.find((l) => l.reqId === '0123456789abcdef')).toMatchObject({ level: 'error', type: 'lintFailed', path: '/acme/fault' });
  expect(String(lines.find((l) => l.reqId === '0123456789abcdef')?.error)).toContain(secret);
});

test('a client error keeps its detail; headers the handler set before it failed are not sent', async () => {
  const res = await fetch(`${errors.base}/acme/bad`, { method: 'POST' });
  expect(res.status).toBe(400);
  expect(res.headers.get('retry-after')).toBeNull();
  expect(((await res.json()) as { detail: string }).detail).toBe('payload is not an object');
});

test('paths match without case and without the query; params are decoded; a trailing slash, another method or another prefix is not a match', async () => {
  const get = (path: string, method = 'GET') => fetch(`${errors.base}${path}`, { method });
  await expect(get('/acme/p1/thing/a%20b?x=1').then((r) => r.json())).resolves.toEqual({ params: { profile: 'p1', id: 'a b' } });
  await expect(get('/ACME/p1/THING/x').then((r) => r.json())).resolves.toEqual({ params: { profile: 'p1', id: 'x' } });
  const head = await get('/acme/p1/thing/x', 'HEAD');
  expect([head.status, head.headers.get('content-type')]).toEqual([200, 'application/json; charset=utf-8']);
  for (const path of ['/acme/p1/thing/x/', '/acme/p1/thing', '/acme', '/acme/']) {
    const res = await get(path);
    expect([path, res.status, ((await res.json()) as { detail: string }).detail]).toEqual([path, 404, 'no such ACME resource']);
  }
  expect((await get('/acme/p1/thing/x', 'DELETE')).status).toBe(404);
  const bad = await get('/acme/p1/thing/%E0%A4%A');
  expect([bad.status, ((await bad.json()) as { type: string }).type]).toEqual([400, 'urn:ietf:params:acme:error:malformed']);
  await expect(get('/acmex/p1/thing/x').then((r) => r.text())).resolves.toBe('not acme');
});

test('a POST answer leaves only once the writes before it are on disk; a GET does not wait', async () => {
  let synced!: () => void;
  const durable = () => new Promise<void>((r) => (synced = r));
  const s = await serverOf(
    [
      { method: 'POST', path: '/w', handle: (x) => x.json({ ok: true }) },
      { method: 'GET', path: '/r', handle: (x) => x.json({ ok: true }) },
    ],
    { durable },
  );
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
  const s = await serverOf([{ method: 'POST', path: '/w', handle: (x) => x.json({ ok: true }) }], { durable: () => Promise.reject(new Error('EIO')), log: (e) => void logged.push(e) });
  try {
    await expect(fetch(`${s.base}/acme/w`, { method: 'POST' })).rejects.toThrow();
    expect(logged).toEqual([expect.objectContaining({ level: 'error', path: '/acme/w', error: 'Error: EIO' })]);
  } finally {
    await s.close();
  }
});

test('readJsonBody reads JSON as express.json({ strict: true }) does: empty is {}, a BOM is ignored, scalars and junk are malformed, over the limit is 413', async () => {
  // A 64-byte limit; encoded bodies go to a fallback that says so.
  const fallback: BodyParser = (req, _res, next) => {
    (req as { body?: unknown }).body = { fallback: true };
    next();
  };
  const s = await serverOf([{ method: 'POST', path: '/j', handle: async (x) => x.json({ body: await readJsonBody(x, 64, fallback) }) }]);
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
    expect(res.headers.get('connection')).toBe('close');
    await expect(post('{}', { 'content-encoding': 'gzip' })).resolves.toEqual({ status: 200, json: { body: { fallback: true } } });
    await expect(post('{}', { 'content-type': 'application/jose+json; charset=utf-8' })).resolves.toEqual({ status: 200, json: { body: { fallback: true } } });
  } finally {
    await s.close();
  }
});

test('a nonce the handler\'s writes did not take is recorded before the answer; a replay is answered badNonce, whatever the handler said', async () => {
  const steps: string[] = [];
  /** A checked nonce (verifyPost with nonce: 'with-write' leaves it in x.acme) whose recording resolves or is a replay. */
  const pending = (used: boolean) =>
    ({
      record: () => {
        steps.push('record');
        return used ? Promise.reject(new PkiError('badNonce', 'the nonce was already used')) : Promise.resolve();
      },
    }) as unknown as PendingNonce;
  const withNonce = (used: boolean, handle: AcmeRoute['handle']): AcmeRoute['handle'] => (x) => {
    x.acme = { nonce: pending(used) } as AcmeRequest;
    return handle(x);
  };
  const created: AcmeRoute['handle'] = (x) => x.status(201).location('https://ca.example/acme/order/1').json({ ok: true });
  const refused: AcmeRoute['handle'] = () => {
    throw new PkiError('rateLimited', 'too many new orders');
  };
  const durable = () => (steps.push('durable'), Promise.resolve());
  const s = await serverOf(
    [
      { method: 'POST', path: '/fresh', handle: withNonce(false, created) },
      { method: 'POST', path: '/replay', handle: withNonce(true, created) },
      { method: 'POST', path: '/replay-refused', handle: withNonce(true, refused) },
    ],
    { durable },
  );
  try {
    const fresh = await fetch(`${s.base}/acme/fresh`, { method: 'POST' });
    expect([fresh.status, fresh.headers.get('location'), await fresh.json()]).toEqual([201, 'https://ca.example/acme/order/1', { ok: true }]);
    expect(steps.splice(0)).toEqual(['record', 'durable']);
    for (const path of ['/acme/replay', '/acme/replay-refused']) {
      const res = await fetch(`${s.base}${path}`, { method: 'POST' });
      expect([path, res.status, res.headers.get('location'), res.headers.get('replay-nonce')]).toEqual([path, 400, null, 'nonce-1']);
      expect(await res.json()).toMatchObject({ type: 'urn:ietf:params:acme:error:badNonce', detail: 'the nonce was already used' });
      expect(steps.splice(0)).toEqual(['record', 'durable']);
    }
  } finally {
    await s.close();
  }
});
