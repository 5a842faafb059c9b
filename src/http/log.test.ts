/**
 * The JSON logger: pino lines with the event's level, redacted secret fields,
 * and the request id on every line written while a request is served (the
 * access line, the error line of the admin API, a hot handler's own line),
 * passed by the caller as `reqId`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { fixedClock } from '../clock/clock.js';
import type { RegistrationAuthority } from '../ra/registration.js';
import type { RevocationAuthority } from '../ra/revoke.js';
import type { TokenVerifier } from '../tokens/tokens.js';
import { createApp } from './app.js';
import { frontHandler } from './front.js';
import { listen, type RunningServer } from './listen.js';
import { accessLogger, jsonLogger, redactedFields, silentLogger, type AccessEvent, type Logger } from './log.js';

const clock = fixedClock(new Date('2026-03-01T12:00:00.000Z'));

/** A jsonLogger over a stream, and the lines it wrote, parsed. */
function captured(): { log: Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  return {
    log: jsonLogger(clock, out),
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('lines', () => {
  test('one JSON line per event: level name, time from the clock, pid, msg first among the fields', () => {
    const c = captured();
    c.log({ msg: 'CRL publisher lease taken', ca: 'issuing-1', n: 3 });
    expect(c.text()).toBe(`{"level":"info","time":"2026-03-01T12:00:00.000Z","pid":${process.pid},"msg":"CRL publisher lease taken","ca":"issuing-1","n":3}\n`);
  });

  test.each([
    ['fatal', 'fatal'],
    ['error', 'error'],
    ['warn', 'warn'],
    ['info', 'info'],
    ['debug', 'debug'],
    ['trace', 'trace'],
    [undefined, 'info'],
    ['loud', 'info'],
    [42, 'info'],
  ])('level %s is written as %s', (given, written) => {
    const c = captured();
    c.log({ level: given, msg: 'm' });
    expect(c.lines()).toEqual([{ level: written, time: '2026-03-01T12:00:00.000Z', pid: process.pid, msg: 'm' }]);
  });

  test('no reqId outside a request', () => {
    const c = captured();
    c.log({ msg: 'serving' });
    expect(c.lines()[0]).not.toHaveProperty('reqId');
  });
});

describe('the access line', () => {
  const events: [string, AccessEvent][] = [
    ['a cached OCSP answer', { reqId: 'd3861a0a2714b428', address: '127.0.0.1', method: 'GET', path: '/ocsp/MFEwTzBN%2FiF9KtC2wQU', status: 200, ms: 0.42, problem: undefined }],
    ['a problem', { reqId: 'lb-7f.3_A', address: '2001:db8::1', method: 'POST', path: '/api/v1/certificates', status: 400, ms: 12, problem: 'urn:ietf:params:acme:error:malformed' }],
    ['quotes, backslashes, control and non-ASCII characters', { reqId: 'x', address: 'unknown', method: 'GET', path: '/a"b\\c\u0001é\u00ff', status: 404, ms: 1.5, problem: undefined }],
    ['a long path and no method', { reqId: 'x', address: undefined, method: undefined, path: `/${'a'.repeat(150)}"`, status: 500, ms: Number.NaN, problem: 'p' }],
    ['a problem that is not a string', { reqId: 'x', address: '10.0.0.1', method: 'GET', path: '/', status: 500, ms: 3, problem: { type: 't', token: 'secret' } }],
  ];

  const turn = () => new Promise((r) => setImmediate(r));
  /** Longer than access lines wait (10 ms). */
  const flushed = () => new Promise((r) => setTimeout(r, 30));

  test.each(events)('%s: the same bytes as the event logged through pino', async (_name, e) => {
    const fast = captured();
    const generic = captured();
    accessLogger(fast.log)(e);
    generic.log({ msg: 'request', ...e });
    await flushed();
    expect(fast.text()).toBe(generic.text());
    expect(fast.text()).not.toContain('secret');
  });

  test('access lines wait past the turn and go out together; any other line writes them out first, in order', async () => {
    // The batch's timer is faked: on a busy machine more than 10 ms of real time can pass between two turns.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const c = captured();
      const access = accessLogger(c.log);
      access(events[0]![1]);
      await turn();
      access(events[1]![1]);
      await turn();
      vi.advanceTimersByTime(9);
      expect(c.text()).toBe('');
      vi.advanceTimersByTime(1);
      expect(c.lines().map((l) => l.reqId)).toEqual([events[0]![1].reqId, events[1]![1].reqId]);
      access(events[2]![1]);
      c.log({ level: 'error', msg: 'after' });
      expect(c.lines().map((l) => l.msg)).toEqual(['request', 'request', 'request', 'after']);
      vi.advanceTimersByTime(30);
      // The timer of the batch that the error line wrote out early writes nothing again.
      expect(c.lines()).toHaveLength(4);
    } finally {
      vi.useRealTimers();
    }
  });

  test('the time of each line is the clock\'s, across seconds and before 1970 (one logger, lines in turn)', async () => {
    const times = [1_772_366_400_000, 1_772_366_400_999, 1_772_366_401_000, 1_772_366_400_500, 1_772_366_402_001, 0, 999, -1, -1000, -1001, 253_402_300_799_999];
    let at = times[0]!;
    const moving = { now: () => new Date(at) };
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
    const access = accessLogger(jsonLogger(moving, out));
    for (const t of times) {
      at = t;
      access(events[0]![1]);
    }
    await flushed();
    const written = chunks.join('').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { time: string }).time);
    expect(written).toEqual(times.map((t) => new Date(t).toISOString()));
  });

  test('a logger that is not a jsonLogger gets the event', () => {
    const got: Record<string, unknown>[] = [];
    accessLogger((ev) => got.push(ev))(events[0]![1]);
    expect(got).toEqual([{ msg: 'request', ...events[0]![1] }]);
  });
});

describe('redaction', () => {
  test('secret fields at the top of an event', () => {
    const c = captured();
    c.log({ msg: 'm', passphrase: 'hunter2', pin: '1234', token: 'trellis_abc', privateKey: 'k', keyPem: 'p', pkcs8: 'q', keep: 'visible' });
    const [line] = c.lines();
    expect(line).toMatchObject({ passphrase: '[redacted]', pin: '[redacted]', token: '[redacted]', privateKey: '[redacted]', keyPem: '[redacted]', pkcs8: '[redacted]', keep: 'visible' });
    for (const s of ['hunter2', '1234', 'trellis_abc']) expect(c.text()).not.toContain(s);
  });

  test('one level down, headers included', () => {
    const c = captured();
    c.log({ msg: 'm', headers: { Authorization: 'Bearer trellis_xyz', cookie: 'session=s3cr3t', 'set-cookie': 'a=b', accept: '*/*' }, ca: { rootPassphrase: 'offline', id: 'root-1' } });
    const [line] = c.lines();
    expect(line?.headers).toEqual({ Authorization: '[redacted]', cookie: '[redacted]', 'set-cookie': '[redacted]', accept: '*/*' });
    expect(line?.ca).toEqual({ rootPassphrase: '[redacted]', id: 'root-1' });
    for (const s of ['trellis_xyz', 's3cr3t', 'offline']) expect(c.text()).not.toContain(s);
  });

  test('the caller\'s event is left as it was', () => {
    const c = captured();
    const headers = { authorization: 'Bearer t' };
    const event = { level: 'warn', msg: 'm', passphrase: 'hunter2', headers };
    c.log(event);
    expect(event).toEqual({ level: 'warn', msg: 'm', passphrase: 'hunter2', headers: { authorization: 'Bearer t' } });
    expect(event.headers).toBe(headers);
  });

  test('every secret field name, at both depths', () => {
    const c = captured();
    const fields = Object.fromEntries(redactedFields.map((f) => [f, 'v']));
    c.log({ msg: 'm', ...fields, nested: fields });
    const [line] = c.lines();
    for (const f of redactedFields) {
      expect(line?.[f]).toBe('[redacted]');
      expect((line?.nested as Record<string, unknown>)[f]).toBe('[redacted]');
    }
  });
});

test('the test run captures every line of this process, silentLogger\'s too, redacted', () => {
  // Set by test/log-capture.global.ts for the whole run.
  const dir = process.env.TRELLIS_LOG_CAPTURE_DIR;
  expect(dir).toBeTruthy();
  const marker = `capture-${process.pid}-${Date.now()}`;
  captured().log({ msg: marker, via: 'json', passphrase: 'hunter2' });
  silentLogger({ msg: marker, via: 'silent', pin: '1234' });
  const file = fs.readFileSync(path.join(dir!, `${process.pid}.ndjson`), 'utf8');
  const mine = file.split('\n').filter((l) => l.includes(marker)).map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(mine).toMatchObject([
    { msg: marker, via: 'json', passphrase: '[redacted]' },
    { msg: marker, via: 'silent', pin: '[redacted]' },
  ]);
});

describe('request ids (front + admin API)', () => {
  const c = captured();
  let server: RunningServer;
  let arrived = 0;
  let release: () => void = () => {};
  const bothIn = new Promise<void>((r) => (release = r));

  beforeAll(async () => {
    // Each request waits until both are in flight, then fails like a server fault: the app logs 'request failed'.
    const ra = {
      requestCertificate: async () => {
        if (++arrived === 2) release();
        await bothIn;
        await new Promise((r) => setTimeout(r, 5));
        throw new Error('store unreachable');
      },
    } as unknown as RegistrationAuthority;
    const tokens = { verify: async () => ({ id: 'tok_test', role: 'admin', name: 'test', profiles: null }) } as unknown as TokenVerifier;
    const app = createApp({ ra, revocation: {} as RevocationAuthority, revocationSeconds: { ocsp: 5, crl: 60 }, tokens, log: c.log, bodyLimitBytes: 65536 });
    // A hot handler that logs from a callback after an await, as OCSP and CRL handlers may: with the id the front set.
    const hot = (req: { url?: string; requestId?: string }, res: { end(s: string): void }) => {
      if (req.url !== '/hot') return false;
      void Promise.resolve().then(() => setTimeout(() => (c.log({ msg: 'hot handler', reqId: req.requestId }), res.end('ok')), 1));
      return true;
    };
    server = await listen(frontHandler({ app, caCertificate: () => undefined, ready: () => true, log: c.log, clock, hot: [hot] }), { host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await server?.close(0);
  });

  const post = (headers: Record<string, string> = {}) =>
    fetch(`${server.url}/api/v1/certificates`, {
      method: 'POST',
      headers: { authorization: 'Bearer trellis_x', 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ profile: 'server', csr: 'x' }),
    });

  test('two concurrent requests: each line written while one is served carries its own id', async () => {
    const [a, b] = await Promise.all([post(), post()]);
    expect([a.status, b.status]).toEqual([500, 500]);
    const ids = [a.headers.get('x-request-id'), b.headers.get('x-request-id')];
    expect(ids[0]).toMatch(/^[0-9a-f]{16}$/);
    expect(ids[1]).not.toBe(ids[0]);
    // The access line is written once the response is sent; wait for it.
    await expect.poll(() => c.lines().filter((l) => l.msg === 'request').length).toBe(2);
    for (const id of ids) {
      const mine = c.lines().filter((l) => l.reqId === id);
      expect(mine.map((l) => l.msg).sort()).toEqual(['request', 'request failed']);
      expect(mine.find((l) => l.msg === 'request failed')).toMatchObject({ level: 'error', error: expect.stringContaining('store unreachable') });
      expect(mine.find((l) => l.msg === 'request')).toMatchObject({ level: 'info', status: 500, path: '/api/v1/certificates' });
    }
  });

  test('a hot handler\'s line carries the id too', async () => {
    const res = await fetch(`${server.url}/hot`);
    const id = res.headers.get('x-request-id');
    expect(await res.text()).toBe('ok');
    await expect.poll(() => c.lines().filter((l) => l.reqId === id).map((l) => l.msg).sort()).toEqual(['hot handler', 'request']);
  });

  test('a safe incoming X-Request-Id is kept: echoed and logged', async () => {
    const res = await fetch(`${server.url}/hot`, { headers: { 'x-request-id': 'lb-7f.3_A' } });
    expect(res.headers.get('x-request-id')).toBe('lb-7f.3_A');
    await res.text();
    await expect.poll(() => c.lines().filter((l) => l.reqId === 'lb-7f.3_A').length).toBe(2);
  });

  test.each([
    ['too long', 'a'.repeat(65)],
    ['a space', 'a b'],
    ['a quote', 'a"b'],
    ['a slash', 'a/b'],
  ])('an incoming X-Request-Id with %s is replaced by a new id', async (_name, sent) => {
    const res = await fetch(`${server.url}/hot`, { headers: { 'x-request-id': sent } });
    await res.text();
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{16}$/);
    expect(c.text()).not.toContain(sent);
  });
});
