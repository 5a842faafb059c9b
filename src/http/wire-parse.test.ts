/**
 * wire-parse.ts: the heads it reads, every shape it leaves to node:http, and
 * random bytes (it returns, without throwing, and takes only heads that
 * node's own parser reads as the same request).
 */
import http from 'node:http';
import net from 'node:net';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { parseRequest, type WireRequest } from './wire-parse.js';

const parse = (text: string | Buffer, max = 16 * 1024) => parseRequest(typeof text === 'string' ? Buffer.from(text, 'latin1') : text, 0, max);
const asRequest = (r: ReturnType<typeof parse>): WireRequest => {
  expect(r).not.toBe('fallback');
  return r as WireRequest;
};

describe('reads', () => {
  test('a GET with the fields the raw path uses', () => {
    const r = asRequest(parse('GET /ocsp/MAo%3D HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nIf-None-Match: "e"\r\nX-Request-Id: r1\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n'));
    expect(r).toMatchObject({ method: 'GET', target: '/ocsp/MAo%3D', keepAlive: true, headerCount: 5, ifNoneMatch: '"e"', xRequestId: 'r1', xForwardedFor: '192.0.2.1', body: null });
  });

  test('a POST body of Content-Length octets; what follows is the next request', () => {
    const text = 'POST /ocsp HTTP/1.1\r\nhost: a\r\ncontent-type: application/ocsp-request\r\ncontent-length: 3\r\n\r\n0\x01\x00GET / HTTP/1.1\r\n';
    const r = asRequest(parse(text));
    expect(r.body).toEqual(Buffer.from([0x30, 0x01, 0x00]));
    expect(r.contentType).toBe('application/ocsp-request');
    expect(text.slice(r.end)).toBe('GET / HTTP/1.1\r\n');
  });

  test.each([
    ['HTTP/1.1', '', true],
    ['HTTP/1.1', 'Connection: close\r\n', false],
    ['HTTP/1.1', 'Connection: Keep-Alive\r\n', true],
    ['HTTP/1.0', '', false],
    ['HTTP/1.0', 'Connection: keep-alive\r\n', true],
    ['HTTP/1.0', 'Connection: CLOSE\r\n', false],
  ])('%s %j: keep-alive %s (RFC 9112 §9.3)', (version, extra, keep) => {
    expect(asRequest(parse(`GET /ocsp/x ${version}\r\nHost: a\r\n${extra}\r\n`)).keepAlive).toBe(keep);
  });

  test('HTTP/1.0 needs no Host', () => {
    expect(asRequest(parse('GET /ocsp/x HTTP/1.0\r\n\r\n')).keepAlive).toBe(false);
  });

  test('white space around a value is not part of it', () => {
    expect(asRequest(parse('GET /x HTTP/1.1\r\nHost: a\r\nX-Request-Id: \t r1 \t\r\n\r\n')).xRequestId).toBe('r1');
  });

  test('a value with long runs of white space inside and around it', () => {
    const inner = `a${' \t'.repeat(4000)}b`;
    expect(asRequest(parse(`GET /x HTTP/1.1\r\nHost: a\r\nX-Request-Id:${' '.repeat(4000)}${inner}${'\t '.repeat(4000)}\r\n\r\n`, 32 * 1024)).xRequestId).toBe(inner);
  });
});

describe('leaves to node:http', () => {
  test.each([
    ['an incomplete head', 'GET /ocsp/x HTTP/1.1\r\nHost: a\r\n'],
    ['an incomplete body', 'POST /ocsp HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n0\x01'],
    ['HEAD', 'HEAD /ocsp/x HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['PUT', 'PUT /ocsp HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n'],
    ['a lower-case method', 'get /ocsp/x HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['an absolute-form target', 'GET http://a/ocsp/x HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['asterisk-form', 'GET * HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['HTTP/2.0', 'GET /x HTTP/2.0\r\nHost: a\r\n\r\n'],
    ['HTTP/0.9 (no version)', 'GET /x\r\n\r\n'],
    ['two spaces', 'GET  /x HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a tab in the request line', 'GET\t/x HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['no Host in 1.1', 'GET /x HTTP/1.1\r\n\r\n'],
    ['two Host', 'GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['Transfer-Encoding', 'POST /ocsp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['Transfer-Encoding and Content-Length', 'POST /ocsp HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['two Content-Length, equal', 'POST /ocsp HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n0'],
    ['Content-Length with a sign', 'POST /ocsp HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n0'],
    ['Content-Length as a list', 'POST /ocsp HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n0'],
    ['Content-Length of ten digits', 'POST /ocsp HTTP/1.1\r\nHost: a\r\nContent-Length: 0000000001\r\n\r\n0'],
    ['empty Content-Length', 'POST /ocsp HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n'],
    ['a POST without Content-Length', 'POST /ocsp HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a GET with Content-Length', 'GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n'],
    ['obs-fold', 'GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n'],
    ['a tab-folded line', 'GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n'],
    ['a bare LF ending a line', 'GET /x HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n'],
    ['a bare LF ending the request line', 'GET /x HTTP/1.1\nHost: a\r\n\r\n'],
    ['a bare CR in a value', 'GET /x HTTP/1.1\r\nHost: a\rb\r\n\r\n'],
    ['white space before the colon', 'GET /x HTTP/1.1\r\nHost : a\r\n\r\n'],
    ['an empty header name', 'GET /x HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n'],
    ['a line without a colon', 'GET /x HTTP/1.1\r\nHost: a\r\nbogus\r\n\r\n'],
    ['a NUL in a value', 'GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n'],
    ['obs-text in a value', 'GET /x HTTP/1.1\r\nHost: a\r\nX-A: caf\xe9\r\n\r\n'],
    ['DEL in the target', 'GET /x\x7f HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['Expect', 'POST /ocsp HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n0'],
    ['Upgrade', 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n'],
    ['Connection with another token', 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, TE\r\n\r\n'],
    ['two Connection', 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\nConnection: close\r\n\r\n'],
    ['a Keep-Alive field', 'GET /x HTTP/1.1\r\nHost: a\r\nKeep-Alive: timeout=5\r\n\r\n'],
    ['two If-None-Match', 'GET /x HTTP/1.1\r\nHost: a\r\nIf-None-Match: "a"\r\nIf-None-Match: "b"\r\n\r\n'],
    ['two X-Request-Id', 'GET /x HTTP/1.1\r\nHost: a\r\nX-Request-Id: a\r\nx-request-id: b\r\n\r\n'],
    ['two X-Forwarded-For', 'GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n'],
    ['two Content-Type', 'POST /ocsp HTTP/1.1\r\nHost: a\r\nContent-Type: a\r\nContent-Type: b\r\nContent-Length: 0\r\n\r\n'],
    ['a TLS ClientHello', '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03'],
    ['an HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['leading CRLF', '\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n'],
  ])('%s', (_name, text) => {
    expect(parse(text)).toBe('fallback');
  });

  test('a head over maxHeaderBytes', () => {
    const text = `GET /x HTTP/1.1\r\nHost: a\r\nX-A: ${'a'.repeat(100)}\r\n\r\n`;
    expect(parse(text, 150)).not.toBe('fallback');
    expect(parse(text, 100)).toBe('fallback');
  });
});

describe('random bytes', () => {
  const tokens = ['GET', 'POST', ' ', '/ocsp', '/ocsp/', 'MAo=', ' HTTP/1.1', ' HTTP/1.0', '\r\n', '\n', '\r', ':', ': ', 'Host', 'Content-Length', 'Transfer-Encoding', 'Connection', 'close', 'keep-alive', '0', '3', '\t', '\x00', '\xff', 'X-Request-Id', 'chunked'];
  const noisy = fc.array(fc.oneof(fc.constantFrom(...tokens), fc.string({ maxLength: 4 }), fc.uint8Array({ maxLength: 4 }).map((a) => Buffer.from(a).toString('latin1'))), { maxLength: 40 }).map((parts) => parts.join(''));

  test('never throws; a request it takes is a whole head with a known method and version', () => {
    fc.assert(
      fc.property(noisy, (text) => {
        const r = parse(text);
        if (r === 'fallback') return;
        expect(['GET', 'POST']).toContain(r.method);
        expect(text.startsWith(`${r.method} ${r.target} HTTP/1.`)).toBe(true);
        expect(r.end).toBeLessThanOrEqual(Buffer.byteLength(text, 'latin1'));
        expect(text.slice(0, r.end)).toMatch(/^[^\n]*\r\n([^\r\n]*\r\n)*\r\n/);
      }),
      { numRuns: 20_000 },
    );
  });

  test('a valid request with a random tail: the request is read alone, the tail is left', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (tail) => {
        const head = Buffer.from('POST /ocsp HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n0\x00', 'latin1');
        const r = asRequest(parseRequest(Buffer.concat([head, tail]), 0, 1024));
        expect(r.end).toBe(head.length);
      }),
    );
  });
});

describe('node:http as the oracle', () => {
  /** What node's parser read from `bytes` (one request), as the fields parseRequest gives; null if it refused them. */
  async function nodeReads(port: number, bytes: Buffer): Promise<Record<string, unknown> | null> {
    const c = net.connect(port, '127.0.0.1');
    let got = '';
    c.on('data', (d: Buffer) => (got += d.toString('latin1')));
    c.on('error', () => {});
    // No FIN: node answers what it read (an empty body: the answer ends with its head); a request it refuses
    // gets its 400 (or 431) at once and the close. Waited for as such, not for a fixed time (a loaded machine
    // answers 50 connections at once late); 5 s is only the bound for an answer that never comes.
    const answered = new Promise<void>((r) => {
      c.on('data', () => got.includes('\r\n\r\n') && r());
      c.once('close', () => r());
    });
    c.write(bytes);
    await Promise.race([answered, new Promise((r) => setTimeout(r, 5000))]);
    c.destroy();
    const m = /\r\nx-read: ([A-Za-z0-9+/=]+)\r\n/.exec(got);
    if (m === null) return null;
    return { ...JSON.parse(Buffer.from(m[1]!, 'base64').toString('latin1')), keepAlive: /\r\nConnection: keep-alive\r\n/.test(got) };
  }

  test('every request it takes, node reads as the same method, target, fields, body and keep-alive', async () => {
    const server = http.createServer({ maxHeaderSize: 2048 }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const h = req.headers;
        const read = { method: req.method, target: req.url, contentType: h['content-type'], ifNoneMatch: h['if-none-match'], xRequestId: h['x-request-id'], xForwardedFor: h['x-forwarded-for'], headerCount: req.rawHeaders.length / 2, body: req.method === 'GET' ? null : Buffer.concat(chunks).toString('latin1') };
        res.setHeader('x-read', Buffer.from(JSON.stringify(read), 'latin1').toString('base64'));
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const tokens = ['GET', 'POST', ' ', '/ocsp/', 'MAo=', '%2F', '#', '?', '*', '//', ' HTTP/1.1', ' HTTP/1.0', 'HTTP/1.1', '\r\n', '\r\n', '\r\n', '\r', '\n', ':', ': ', '\t', ',', '"', 'abc', '0', '3', '00', '\x7f', '\xe9', 'Host', 'host', 'Content-Length', 'Transfer-Encoding', 'chunked', 'Connection', 'close', 'keep-alive', 'Keep-Alive', 'Expect', 'Upgrade', 'TE', 'X-Request-Id', 'If-None-Match', 'Content-Type', 'application/ocsp-request', 'X-Forwarded-For', 'Content-Length: 03\r\n'];
    const starts = ['GET /ocsp/MAo= HTTP/1.1\r\nHost: a\r\n', 'POST /ocsp HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n', 'GET /x HTTP/1.0\r\n', ''];
    const ends = ['\r\n\r\n', '\r\n\r\nabc', '\r\n\r\nabcGET / HTTP/1.1\r\n\r\n', ''];
    const texts = fc.sample(fc.tuple(fc.constantFrom(...starts), fc.array(fc.constantFrom(...tokens), { minLength: 3, maxLength: 30 }), fc.constantFrom(...ends)).map(([a, b, c]) => a + b.join('') + c), { numRuns: 8000, seed: 11 });
    const taken = texts.map((t) => Buffer.from(t, 'latin1')).flatMap((buf) => {
      const r = parseRequest(buf, 0, 2048);
      return r === 'fallback' ? [] : [{ bytes: buf.subarray(0, r.end), r }];
    });
    try {
      for (let i = 0; i < taken.length; i += 50) {
        await Promise.all(
          taken.slice(i, i + 50).map(async ({ bytes, r }) => {
            const mine = { method: r.method, target: r.target, contentType: r.contentType, ifNoneMatch: r.ifNoneMatch, xRequestId: r.xRequestId, xForwardedFor: r.xForwardedFor, headerCount: r.headerCount, body: r.body === null ? null : r.body.toString('latin1'), keepAlive: r.keepAlive };
            expect({ bytes: bytes.toString('latin1'), read: await nodeReads(port, bytes) }).toEqual({ bytes: bytes.toString('latin1'), read: JSON.parse(JSON.stringify(mine)) });
          }),
        );
      }
    } finally {
      await new Promise((r) => server.close(r));
    }
    // The grammar reaches requests it takes, not only fallbacks.
    expect(taken.length).toBeGreaterThan(200);
  });
});
