/**
 * The header block the front and the OCSP handler write, byte for byte
 * (Date aside): the OCSP handler writes X-Request-Id itself in a header list
 * (front.ts skips setHeader for it), and its answers must be what they were
 * when the front set the header first. Expected blocks were taken from that
 * earlier code.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ocspHandler } from '../ocsp/http.js';
import type { OcspResponder, OcspResult } from '../ocsp/responder.js';
import { frontHandler } from './front.js';
import { listen, type RunningServer } from './listen.js';

const now = new Date('2026-05-01T12:00:00Z');
const cached: OcspResult = {
  der: Buffer.from('30820000-pretend-response'),
  cache: { thisUpdate: new Date('2026-05-01T11:00:00Z'), nextUpdate: new Date('2026-05-02T11:00:00Z'), etag: '"abc123"' },
};
let next: () => Promise<OcspResult> = async () => cached;
const stub = { answer: () => next(), answerCached: () => undefined } as unknown as OcspResponder;
const plainHot = (req: { url?: string }, res: { writeHead(s: number, h: Record<string, string>): void; end(b: string): void }) => {
  if (req.url !== '/plain') return false;
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('p');
  return true;
};

let server: RunningServer;
beforeAll(async () => {
  const app = (_req: unknown, res: { writeHead(s: number): void; end(): void }) => (res.writeHead(404), res.end());
  server = await listen(
    frontHandler({ app, caCertificate: () => undefined, ready: () => true, log: () => {}, clock: { now: () => now }, accessLog: false, hot: [ocspHandler(stub, { now: () => now, maxRequestBytes: 64 }), plainHot] }),
    { host: '127.0.0.1', port: 0 },
  );
});
afterAll(() => server.close(0));

/** The response head to a raw request, without its Date line. */
function head(request: string): Promise<string> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), '127.0.0.1', () => s.end(request));
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('end', () => resolve(out.split('\r\n\r\n')[0]!.split('\r\n').filter((l) => !l.startsWith('Date: ')).join('\n')));
    s.on('error', reject);
  });
}

const get = `/ocsp/${encodeURIComponent(Buffer.from([0x30, 0x03, 0xfb, 0xff, 0xfe]).toString('base64'))}`;
const req = (line: string, ...fields: string[]) => `${line}\r\nHost: x\r\nX-Request-Id: abc\r\n${fields.map((f) => `${f}\r\n`).join('')}\r\n`;
const cachedFields = [
  'X-Request-Id: abc',
  'content-type: application/ocsp-response',
  'content-length: 25',
  'cache-control: max-age=82800, public, no-transform, must-revalidate',
  'last-modified: Fri, 01 May 2026 11:00:00 GMT',
  'expires: Sat, 02 May 2026 11:00:00 GMT',
  'etag: "abc123"',
];

describe('the front with the OCSP handler: header blocks', () => {
  test.each([
    ['GET, cached', req(`GET ${get} HTTP/1.1`, 'Connection: close'), ['HTTP/1.1 200 OK', ...cachedFields, 'Connection: close']],
    ['HEAD', req(`HEAD ${get} HTTP/1.1`, 'Connection: close'), ['HTTP/1.1 200 OK', ...cachedFields, 'Connection: close']],
    ['GET, HTTP/1.0 keep-alive', req(`GET ${get} HTTP/1.0`, 'Connection: keep-alive'), ['HTTP/1.1 200 OK', ...cachedFields, 'Connection: keep-alive', 'Keep-Alive: timeout=5']],
    [
      'GET with If-None-Match',
      req(`GET ${get} HTTP/1.1`, 'If-None-Match: "abc123"', 'Connection: close'),
      ['HTTP/1.1 304 Not Modified', 'X-Request-Id: abc', 'etag: "abc123"', 'cache-control: max-age=82800, public, no-transform, must-revalidate', 'expires: Sat, 02 May 2026 11:00:00 GMT', 'Connection: close'],
    ],
    [
      'POST',
      `${req('POST /ocsp HTTP/1.1', 'Content-Length: 2', 'Connection: close')}\x30\x00`,
      ['HTTP/1.1 200 OK', 'X-Request-Id: abc', 'content-type: application/ocsp-response', 'content-length: 25', 'cache-control: no-store', 'Connection: close'],
    ],
    [
      'POST over the limit',
      req('POST /ocsp HTTP/1.1', 'Content-Length: 100', 'Connection: close'),
      ['HTTP/1.1 413 Payload Too Large', 'X-Request-Id: abc', 'content-type: text/plain', 'connection: close', 'cache-control: no-store', 'Transfer-Encoding: chunked'],
    ],
    [
      'PUT',
      req('PUT /ocsp HTTP/1.1', 'Content-Length: 0', 'Connection: close'),
      ['HTTP/1.1 405 Method Not Allowed', 'X-Request-Id: abc', 'allow: GET, HEAD, POST', 'content-type: text/plain', 'cache-control: no-store', 'Connection: close', 'Transfer-Encoding: chunked'],
    ],
    [
      'GET /ocsp without a request (malformedRequest)',
      req('GET /ocsp HTTP/1.1', 'Connection: close'),
      ['HTTP/1.1 200 OK', 'X-Request-Id: abc', 'content-type: application/ocsp-response', 'content-length: 5', 'cache-control: no-store', 'Connection: close'],
    ],
    ['a hot handler that does not write the id', req('GET /plain HTTP/1.1', 'Connection: close'), ['HTTP/1.1 200 OK', 'X-Request-Id: abc', 'content-type: text/plain', 'Connection: close', 'Transfer-Encoding: chunked']],
    ['the app behind the hot handlers', req('GET /nothing HTTP/1.1', 'Connection: close'), ['HTTP/1.1 404 Not Found', 'X-Request-Id: abc', 'Connection: close', 'Transfer-Encoding: chunked']],
  ])('%s', async (_name, request, expected) => {
    expect(await head(request)).toBe(expected.join('\n'));
  });

  test('a responder that fails: internalError, with the request id', async () => {
    next = async () => {
      throw new Error('boom');
    };
    try {
      expect(await head(`${req('POST /ocsp HTTP/1.1', 'Content-Length: 2', 'Connection: close')}\x30\x00`)).toBe(
        ['HTTP/1.1 200 OK', 'X-Request-Id: abc', 'content-type: application/ocsp-response', 'content-length: 5', 'cache-control: no-store', 'Connection: close'].join('\n'),
      );
    } finally {
      next = async () => cached;
    }
  });

  test('a new id when the client sends none, the same in the header of every kind of answer', async () => {
    const ids = await Promise.all([`GET ${get} HTTP/1.1`, 'GET /plain HTTP/1.1'].map(async (line) => /^X-Request-Id: ([0-9a-f]{16})$/m.exec(await head(`${line}\r\nHost: x\r\nConnection: close\r\n\r\n`))?.[1]));
    expect(ids[0]).toMatch(/^[0-9a-f]{16}$/);
    expect(ids[1]).toMatch(/^[0-9a-f]{16}$/);
    expect(ids[0]).not.toBe(ids[1]);
  });
});
