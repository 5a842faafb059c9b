import http from 'node:http';
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodeGetRequest, ocspHandler } from './http.js';
import type { OcspResponder, OcspResult } from './responder.js';
import { errorResponse } from './response.js';

const now = new Date('2026-05-01T12:00:00Z');
const cached: OcspResult = {
  der: Buffer.from('30820000-pretend-response'),
  cache: { thisUpdate: new Date('2026-05-01T11:00:00Z'), nextUpdate: new Date('2026-05-02T11:00:00Z'), etag: '"abc123"' },
};

/** Stands in for OcspResponder: records request bodies and answers with `next`. */
const seen: Buffer[] = [];
let next: () => Promise<OcspResult> = async () => cached;
/** What the stub's answerCached gives (a response held in memory), undefined: ask `answer`. */
let held: OcspResult | undefined;
const stub = { answer: (der: Buffer) => (seen.push(der), next()), answerCached: () => held } as unknown as OcspResponder;

let server: http.Server;
let base: string;
const logged: Record<string, unknown>[] = [];
const handler = ocspHandler(stub, { now: () => now, maxRequestBytes: 1024, log: (e) => logged.push(e) });

beforeAll(async () => {
  server = http.createServer((req, res) => {
    // As the front sets it (here only when the client sends one).
    req.requestId = req.headers['x-request-id'] as string | undefined;
    if (handler(req, res)) return;
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const body = async (res: Response) => Buffer.from(await res.arrayBuffer());
const post = (b: Buffer, path = '/ocsp') => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: b });

describe('ocspHandler', () => {
  test('POST: the body goes to the responder; the answer is application/ocsp-response, not cached', async () => {
    const res = await post(Buffer.from([0x30, 0x00]));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/ocsp-response');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect((await body(res)).equals(cached.der)).toBe(true);
    expect(seen.at(-1)).toEqual(Buffer.from([0x30, 0x00]));
  });

  test('GET: URL-encoded base64 (RFC 6960 A.1) with RFC 5019 §6.2 caching headers', async () => {
    const der = Buffer.from([0x30, 0x03, 0xfb, 0xff, 0xfe]); // base64 has '+' and '/'
    const res = await fetch(`${base}/ocsp/${encodeURIComponent(der.toString('base64'))}`);
    expect(res.status).toBe(200);
    expect(seen.at(-1)).toEqual(der);
    expect(res.headers.get('cache-control')).toBe('max-age=82800, public, no-transform, must-revalidate');
    expect(res.headers.get('last-modified')).toBe('Fri, 01 May 2026 11:00:00 GMT');
    expect(res.headers.get('expires')).toBe('Sat, 02 May 2026 11:00:00 GMT');
    expect(res.headers.get('etag')).toBe('"abc123"');
    expect((await body(res)).equals(cached.der)).toBe(true);
  });

  test('GET: base64url without padding, raw slashes, and a query string', async () => {
    const der = Buffer.from([0x30, 0x03, 0xfb, 0xff, 0xfe, 0x01]);
    await fetch(`${base}/ocsp/${der.toString('base64url')}`);
    expect(seen.at(-1)).toEqual(der);
    await fetch(`${base}/ocsp/${der.toString('base64')}?x=1`);
    expect(seen.at(-1)).toEqual(der);
  });

  test('GET: not base64, or bad percent-encoding, is malformedRequest without asking the responder', async () => {
    const before = seen.length;
    for (const p of ['/ocsp/not*base64', '/ocsp/%zz', '/ocsp/A']) {
      const res = await fetch(`${base}${p}`);
      expect(res.status).toBe(200);
      expect((await body(res)).equals(errorResponse('malformedRequest'))).toBe(true);
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
    expect(seen.length).toBe(before);
  });

  test('HEAD has the headers and no body; If-None-Match gets 304', async () => {
    const path = `${base}/ocsp/${Buffer.from([0x30, 0]).toString('base64')}`;
    const head = await fetch(path, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(cached.der.length));
    expect((await body(head)).length).toBe(0);
    const cond = await fetch(path, { headers: { 'if-none-match': '"other", "abc123"' } });
    expect(cond.status).toBe(304);
    expect(cond.headers.get('etag')).toBe('"abc123"');
  });

  test('a response held in memory is sent as the responder would answer it, without asking for a promise', async () => {
    const path = `${base}/ocsp/${Buffer.from([0x30, 0x01, 0x05]).toString('base64')}`;
    const headers = (res: Response) => [...res.headers].filter(([k]) => k !== 'date');
    const asked = await fetch(path);
    const askedPost = await post(Buffer.from([0x30, 0x01, 0x05]));
    const before = seen.length;
    held = cached;
    try {
      const now = await fetch(path);
      expect(now.status).toBe(200);
      expect(headers(now)).toEqual(headers(asked));
      expect((await body(now)).equals(cached.der)).toBe(true);
      const nowPost = await post(Buffer.from([0x30, 0x01, 0x05]));
      expect(headers(nowPost)).toEqual(headers(askedPost));
      expect((await body(nowPost)).equals(cached.der)).toBe(true);
      expect((await fetch(path, { headers: { 'if-none-match': '"abc123"' } })).status).toBe(304);
      expect(seen.length).toBe(before);
    } finally {
      held = undefined;
    }
  });

  test('oversize POST bodies get 413, with or without Content-Length', async () => {
    expect((await post(Buffer.alloc(2048, 0x30))).status).toBe(413);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${base}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.write(Buffer.alloc(800));
      setTimeout(() => req.end(Buffer.alloc(800)), 20);
    });
    expect(chunked).toBe(413);
    expect((await post(Buffer.from([0x30, 0]))).status).toBe(200);
  });

  test('other methods get 405, other paths are not taken, GET /ocsp alone is malformedRequest', async () => {
    const put = await fetch(`${base}/ocsp`, { method: 'PUT', body: 'x' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
    expect((await fetch(`${base}/ocspx`)).status).toBe(404);
    expect((await fetch(`${base}/healthz`)).status).toBe(404);
    expect((await body(await fetch(`${base}/ocsp`))).equals(errorResponse('malformedRequest'))).toBe(true);
  });

  test('a responder that rejects still gives an OCSPResponse (internalError), never a 500', async () => {
    next = async () => {
      throw new Error('bug');
    };
    try {
      const res = await fetch(`${base}/ocsp`, { method: 'POST', headers: { 'x-request-id': 'ocsp-1' }, body: Buffer.from([0x30, 0]) });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toBe('ocsp-1');
      expect((await body(res)).equals(errorResponse('internalError'))).toBe(true);
      expect(logged.at(-1)).toEqual({ level: 'error', msg: 'OCSP handler failed', reqId: 'ocsp-1', error: 'Error: bug' });
    } finally {
      next = async () => cached;
    }
  });

  test('a connection closed without a request, or a body cut short, leaves the server serving', async () => {
    await new Promise<void>((resolve) => {
      const s = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => s.end());
      s.on('close', () => resolve());
    });
    await new Promise<void>((resolve) => {
      const s = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => {
        s.write('POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123');
        setTimeout(() => s.destroy(), 20);
      });
      s.on('close', () => resolve());
    });
    expect((await post(Buffer.from([0x30, 0]))).status).toBe(200);
  });
});

describe('decodeGetRequest', () => {
  test.each([
    ['MAM%3D', '3003'],
    ['MAM=', '3003'],
    ['MAM', '3003'],
    ['-_8', 'fbff'],
    ['+/8=', 'fbff'],
  ])('%s', (seg, hex) => expect(decodeGetRequest(seg)?.toString('hex')).toBe(hex));
  test.each(['%', 'ab$c', 'A', 'MA==='])('refuses %s', (seg) => expect(decodeGetRequest(seg)).toBeNull());
  test('a segment asked for again decodes the same, into a Buffer of its own', () => {
    const seg = encodeURIComponent(Buffer.from([0x30, 0x04, 0xfb, 0xff, 0xfe, 0x01]).toString('base64'));
    const first = decodeGetRequest(seg)!;
    first.fill(0);
    const again = decodeGetRequest(seg)!;
    expect(again.toString('hex')).toBe('3004fbfffe01');
    again.fill(0);
    expect(decodeGetRequest(seg)!.toString('hex')).toBe('3004fbfffe01');
  });

  /** The decoding as first written (every segment normalised, then checked): the fast path must answer the same. */
  const reference = (segment: string): Buffer | null => {
    let text: string;
    try {
      text = decodeURIComponent(segment);
    } catch {
      return null;
    }
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/').replace(/\s/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) return null;
    return Buffer.from(b64, 'base64');
  };
  test('any segment over base64, base64url, padding, white space and percent-escapes: as the reference decodes it', () => {
    const piece = fc.constantFrom('A', 'z', '0', '9', '+', '/', '-', '_', '=', ' ', '%20', '%2B', '%2F', '%3D', '%', '%zz', '$', 'MAM', 'MA==');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 24 }), (pieces) => {
        const seg = pieces.join('');
        expect(decodeGetRequest(seg)?.toString('hex') ?? null).toBe(reference(seg)?.toString('hex') ?? null);
      }),
      { numRuns: 2000, seed: 0x0c59 },
    );
  });
});
