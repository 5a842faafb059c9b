import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { makeAcmeCertificate } from './testing/acme-certificate.js';
import { createValidator } from './validator.js';
import type { ValidationRequest, ValidationResult, ValidatorOptions } from './types.js';

const token = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';
const keyAuthorization = `${token}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`;
const path = `/.well-known/acme-challenge/${token}`;

interface Seen {
  method: string;
  url: string;
  host: string | undefined;
  userAgent: string | undefined;
}

interface TestServer {
  port: number;
  seen: Seen[];
  /** Connections whose socket has closed on the server side. */
  closed: number;
  opened: number;
}

const servers: (http.Server | https.Server)[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

async function serve(handler: http.RequestListener, opts: { host?: string; port?: number; tls?: { certPem: string; keyPem: string } } = {}): Promise<TestServer> {
  const state: TestServer = { port: 0, seen: [], closed: 0, opened: 0 };
  const listener: http.RequestListener = (req, res) => {
    state.seen.push({ method: req.method!, url: req.url!, host: req.headers.host, userAgent: req.headers['user-agent'] });
    handler(req, res);
  };
  const server = opts.tls ? https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, listener) : http.createServer(listener);
  server.on('connection', (s) => {
    state.opened++;
    s.on('close', () => state.closed++);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

const ip = (value: string): ValidationRequest => ({ type: 'http-01', identifier: { type: 'ip', value }, token, keyAuthorization });

function validator(port: number, extra: ValidatorOptions = {}) {
  return createValidator({ http01Port: port, allow: ['127.0.0.0/8', '::1'], timeoutMs: 3_000, ...extra });
}

const detailOf = (r: ValidationResult) => (r.status === 'invalid' ? r.error : undefined);

describe('http-01 answers', () => {
  test('valid: 200 with the key authorization; path, Host and User-Agent as RFC 8555 §8.3 and RFC 8738 §5 say', async () => {
    const s = await serve((_req, res) => res.end(keyAuthorization));
    const r = await validator(s.port).validate(ip('127.0.0.1'));
    expect(r).toMatchObject({ status: 'valid', address: '127.0.0.1' });
    expect(r.status === 'valid' && r.validatedAt).toBeInstanceOf(Date);
    expect(r.records).toEqual([{ url: `http://127.0.0.1:${s.port}${path}`, hostname: '127.0.0.1', port: s.port, addressesResolved: ['127.0.0.1'], addressUsed: '127.0.0.1' }]);
    expect(s.seen).toEqual([{ method: 'GET', url: path, host: `127.0.0.1:${s.port}`, userAgent: expect.stringContaining('Trellis') }]);
  });

  test('valid: trailing whitespace is ignored (RFC 8555 §8.3 SHOULD)', async () => {
    const s = await serve((_req, res) => res.end(`${keyAuthorization} \r\n\t\n`));
    expect((await validator(s.port).validate(ip('127.0.0.1'))).status).toBe('valid');
  });

  test('valid: an IPv6 identifier is fetched at its bracketed literal, and Host is bracketed', async () => {
    const s = await serve((_req, res) => res.end(keyAuthorization), { host: '::1' });
    const r = await validator(s.port).validate(ip('::1'));
    expect(r).toMatchObject({ status: 'valid', address: '::1' });
    expect(s.seen[0]!.host).toBe(`[::1]:${s.port}`);
  });

  test.each([
    ['another key authorization', `${token}.somebodyElsesThumbprint`, `"${token}.somebodyElsesThumbprint"`],
    ['leading whitespace', ` ${keyAuthorization}`, `" ${token}`],
    ['an HTML page', `<html>${'x'.repeat(100)}</html>`, '"<html>xxxxxxxxxx'],
  ])('incorrectResponse: %s, quoted in the detail', async (_name, body, quoted) => {
    const s = await serve((_req, res) => res.end(body));
    const r = await validator(s.port).validate(ip('127.0.0.1'));
    expect(detailOf(r)?.type).toBe('incorrectResponse');
    expect(detailOf(r)?.detail).toContain(`GET http://127.0.0.1:${s.port}${path} from 127.0.0.1:${s.port} answered`);
    expect(detailOf(r)?.detail).toContain(quoted);
    expect(detailOf(r)?.detail).toContain(`(${Buffer.byteLength(body)} bytes)`);
  });

  test('incorrectResponse: a 404 names the status', async () => {
    const s = await serve((_req, res) => {
      res.statusCode = 404;
      res.end(keyAuthorization);
    });
    const r = await validator(s.port).validate(ip('127.0.0.1'));
    expect(detailOf(r)).toEqual({ type: 'incorrectResponse', detail: `GET http://127.0.0.1:${s.port}${path} from 127.0.0.1:${s.port} answered HTTP 404 Not Found, not 200 with the key authorization` });
  });

  test.each([
    ['with Content-Length', (res: http.ServerResponse) => res.end('x'.repeat(9000)), '9000 bytes (Content-Length)'],
    ['chunked, without Content-Length', (res: http.ServerResponse) => {
      res.write('x'.repeat(5000));
      res.end('x'.repeat(5000));
    }, 'more than 8192 bytes'],
  ])('unauthorized: a body over maxBodyBytes, %s', async (_name, send, detail) => {
    const s = await serve((_req, res) => send(res));
    const r = await validator(s.port).validate(ip('127.0.0.1'));
    expect(detailOf(r)?.type).toBe('unauthorized');
    expect(detailOf(r)?.detail).toContain(detail);
    expect(detailOf(r)?.detail).toContain('8192-byte limit');
  });

  test('a body exactly at maxBodyBytes is read', async () => {
    const s = await serve((_req, res) => res.end(keyAuthorization + ' '.repeat(100 - keyAuthorization.length)));
    expect((await validator(s.port, { maxBodyBytes: 100 }).validate(ip('127.0.0.1'))).status).toBe('valid');
  });
});

describe('http-01 connections', () => {
  test('connection: nothing listening', async () => {
    const s = await serve(() => undefined);
    const port = s.port;
    for (const srv of servers.splice(0)) await new Promise((resolve) => srv.close(resolve));
    const r = await validator(port).validate(ip('127.0.0.1'));
    expect(detailOf(r)?.type).toBe('connection');
    expect(detailOf(r)?.detail).toContain(`connecting to 127.0.0.1:${port} failed`);
    expect(detailOf(r)?.detail).toContain('ECONNREFUSED');
  });

  test('connection: a server that never answers runs into timeoutMs, and the socket is closed', async () => {
    const s = await serve(() => undefined);
    const started = performance.now();
    const r = await validator(s.port, { timeoutMs: 300 }).validate(ip('127.0.0.1'));
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(detailOf(r)).toEqual({ type: 'connection', detail: `timed out after 300 ms (the budget for the whole validation) while fetching http://127.0.0.1:${s.port}${path} from 127.0.0.1:${s.port}` });
    await expect.poll(() => s.closed).toBe(1);
  });

  test('connection: a body that trickles in runs into timeoutMs too', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(keyAuthorization.length) });
      res.write(keyAuthorization.slice(0, 10));
    });
    const r = await validator(s.port, { timeoutMs: 300 }).validate(ip('127.0.0.1'));
    expect(detailOf(r)?.detail).toContain('timed out after 300 ms');
    await expect.poll(() => s.closed).toBe(1);
  });

  test('connection: the server closes the connection mid-body', async () => {
    const s = await serve((req, res) => {
      res.writeHead(200, { 'Content-Length': '200' });
      res.write('partial', () => req.socket.destroy());
    });
    const r = await validator(s.port).validate(ip('127.0.0.1'));
    expect(detailOf(r)?.type).toBe('connection');
    expect(detailOf(r)?.detail).toContain(`GET http://127.0.0.1:${s.port}${path} from 127.0.0.1:${s.port} failed`);
  });

  test('connection: an answer that is not HTTP', async () => {
    const s = await serve(() => undefined);
    // Replace the HTTP exchange by garbage on the raw socket.
    servers[0]!.removeAllListeners('request');
    servers[0]!.prependListener('connection', (sock) => sock.end('SSH-2.0-OpenSSH_9.6\r\n'));
    const r = await validator(s.port).validate(ip('127.0.0.1'));
    expect(detailOf(r)?.type).toBe('connection');
    expect(detailOf(r)?.detail).toMatch(/failed: .*(HPE_|Parse Error)/);
  });
});

describe('http-01 redirects', () => {
  test('valid: a chain of relative and absolute redirects (301, 302, 307, 308), one record per hop', async () => {
    let port = 0;
    const s = await serve((req, res) => {
      const hop: Record<string, [number, string]> = {
        [path]: [302, '/one'],
        '/one': [301, 'two'],
        '/two': [307, `http://127.0.0.1:${port}/three?q=1`],
        '/three?q=1': [308, '/done'],
      };
      const next = hop[req.url!];
      if (next) {
        res.writeHead(next[0], { Location: next[1] });
        return res.end();
      }
      res.end(keyAuthorization);
    });
    port = s.port;
    const r = await validator(s.port).validate(ip('127.0.0.1'));
    expect(r.status).toBe('valid');
    expect(s.seen.map((x) => x.url)).toEqual([path, '/one', '/two', '/three?q=1', '/done']);
    expect(r.records.map((x) => x.url)).toEqual([path, '/one', '/two', '/three?q=1', '/done'].map((p) => `http://127.0.0.1:${port}${p}`));
    expect(s.opened).toBe(5); // one connection per hop
  });

  test('valid: a redirect to https on the tls-alpn-01 port, certificate not verified (self-signed)', async () => {
    const tls = await makeAcmeCertificate({ san: 'IP:127.0.0.1' });
    const secure = await serve((_req, res) => res.end(keyAuthorization), { tls });
    const plain = await serve((_req, res) => {
      res.writeHead(302, { Location: `https://127.0.0.1:${secure.port}/x` });
      res.end();
    });
    const r = await validator(plain.port, { tlsAlpn01Port: secure.port }).validate(ip('127.0.0.1'));
    expect(r.status).toBe('valid');
    expect(secure.seen).toEqual([{ method: 'GET', url: '/x', host: `127.0.0.1:${secure.port}`, userAgent: expect.any(String) }]);
  });

  test('connection: a redirect loop is stopped when it comes back', async () => {
    const s = await serve((req, res) => {
      res.writeHead(302, { Location: req.url === '/a' ? '/b' : '/a' });
      res.end();
    });
    const r = await validator(s.port).validate(ip('127.0.0.1'));
    expect(detailOf(r)).toEqual({ type: 'connection', detail: `redirect loop: http://127.0.0.1:${s.port}/b (from 127.0.0.1:${s.port}) redirects (HTTP 302) to http://127.0.0.1:${s.port}/a, which was already fetched` });
    expect(s.seen.map((x) => x.url)).toEqual([path, '/a', '/b']);
  });

  test('connection: an endless chain of new URLs stops after maxRedirects', async () => {
    let n = 0;
    const s = await serve((_req, res) => {
      res.writeHead(301, { Location: `/r${n++}` });
      res.end();
    });
    const r = await validator(s.port, { maxRedirects: 3 }).validate(ip('127.0.0.1'));
    expect(detailOf(r)?.type).toBe('connection');
    expect(detailOf(r)?.detail).toContain('too many redirects');
    expect(detailOf(r)?.detail).toContain('after 3');
    expect(s.seen).toHaveLength(4); // the first request and 3 redirects
  });

  test('connection: a redirect to a denied address is refused before connecting', async () => {
    // 127.0.0.2 is loopback too; a server listens there so that only the policy stops the request.
    const s = await serve((_req, res) => {
      res.writeHead(302, { Location: `http://127.0.0.2:${s.port}/x` });
      res.end();
    });
    const other = await serve((_req, res) => res.end(keyAuthorization), { host: '127.0.0.2', port: s.port });
    const r = await validator(s.port, { allow: ['127.0.0.1/32'] }).validate(ip('127.0.0.1'));
    expect(detailOf(r)?.type).toBe('connection');
    expect(detailOf(r)?.detail).toBe('refusing to connect to 127.0.0.2 (127.0.0.0/8: loopback, RFC 1122 §3.2.1.3): on the deny list of addresses the validator must not reach');
    expect(other.opened).toBe(0);
    expect(r.records).toHaveLength(1);
  });

  test('connection: a redirect to 10.0.0.1 (RFC 1918) is refused', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(302, { Location: `http://10.0.0.1:${s.port}/` });
      res.end();
    });
    const r = await validator(s.port).validate(ip('127.0.0.1'));
    expect(detailOf(r)?.detail).toContain('refusing to connect to 10.0.0.1 (10.0.0.0/8: private-use, RFC 1918)');
  });

  test('connection: a redirect to another port is refused', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(302, { Location: 'http://127.0.0.1:1/' });
      res.end();
    });
    const r = await validator(s.port).validate(ip('127.0.0.1'));
    expect(detailOf(r)?.detail).toContain(`http redirects are followed to port ${s.port} only, not 1`);
  });
});
