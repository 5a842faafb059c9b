/**
 * The raw path's timeouts against node:http's own (the reference): two servers
 * with the same front, OCSP handler and short limits, one with the raw path.
 * Slow clients (a byte every 100 ms, a head that stalls, bytes behind an
 * answer still awaited) must be closed by node's deadline, headersTimeout
 * (requestTimeout for a body) after the first byte of the request, with the
 * same bytes; idle and awaited connections must live as long as node's.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ocspHandler } from '../ocsp/http.js';
import type { OcspResponder, OcspResult } from '../ocsp/responder.js';
import { frontHandler } from './front.js';
import { defaultConnectionLimits, serverOptions } from './limits.js';
import { listen, type RunningServer } from './listen.js';
import { wireOcsp } from './wire-ocsp.js';

const now = new Date('2026-05-01T12:00:00Z');
const signed: OcspResult = { der: Buffer.from('signed'), cache: null };
/** DER starting 0x30 0x01 is held (answered at once); 0x30 0x04 is awaited longer than headersTimeout, 0x30 0x05 a little less, others 100 ms. */
const slowAnswerMs = 1000;
const laterAnswerMs = 350;
const stub = {
  answerCached: (der: Buffer) => (der[1] === 0x01 ? signed : undefined),
  answer: async (der: Buffer) => {
    await new Promise((r) => setTimeout(r, der[1] === 0x04 ? slowAnswerMs : der[1] === 0x05 ? laterAnswerMs : 100));
    return signed;
  },
} as unknown as OcspResponder;
const heldGet = `/ocsp/${Buffer.from([0x30, 0x01, 0xfb]).toString('base64')}`;
const slowGet = `/ocsp/${Buffer.from([0x30, 0x04]).toString('base64')}`;
const laterGet = `/ocsp/${Buffer.from([0x30, 0x05]).toString('base64')}`;
const soonGet = `/ocsp/${Buffer.from([0x30, 0x06]).toString('base64')}`;

const limits = { ...defaultConnectionLimits, headersTimeoutMs: 400, requestTimeoutMs: 1000, keepAliveTimeoutMs: 1000 };
/** node checks headersTimeout and requestTimeout this often: it closes up to this late. */
const checkMs = serverOptions(limits).connectionsCheckingInterval!;
/** What a loaded machine may add to a deadline; well under what a second wait (a hand-over's fresh headersTimeout, an awaited answer) would add. */
const slackMs = 200;

let plain: RunningServer;
let wired: RunningServer;
beforeAll(async () => {
  const side = (raw: boolean) => {
    const log = () => {};
    const handler = frontHandler({
      app: (_req, res) => {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('express\n');
      },
      caCertificate: () => undefined,
      ready: () => true,
      log,
      clock: { now: () => now },
      hot: [ocspHandler(stub, { now: () => now, log })],
    });
    return listen(handler, { host: '127.0.0.1', port: 0, limits, ...(raw ? { wire: wireOcsp({ responder: stub, now: () => now, log }) } : {}) });
  };
  plain = await side(false);
  wired = await side(true);
});
afterAll(async () => {
  await plain.close(0);
  await wired.close(0);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

interface Client {
  /** Sent at once after connecting; the test waits `settleMs` (its answers come). */
  before?: string;
  /** Then nothing for this long. */
  waitMs?: number;
  /** Then `now` at once; with `gapMs`, the timed request starts after that wait (`then` at once), else with `now`. */
  now?: string;
  gapMs?: number;
  then?: string;
  /** The rest of the timed request, a byte every `everyMs` (100). */
  slow?: string;
  everyMs?: number;
}

/** A raw client socket to `url`: what it received so far (`text()`), and a promise of its close. */
function connect(url: string) {
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
  const got: Buffer[] = [];
  socket.on('data', (d: Buffer) => got.push(d));
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return { socket, closed, text: () => Buffer.concat(got).toString('latin1') };
}

/** What came back, and when the server closed: ms after the timed request's first byte (or after `before` was answered, without one). */
async function run(url: string, c: Client): Promise<{ bytes: string; closedAfterMs: number }> {
  const { socket, closed, text } = connect(url);
  await new Promise((r) => socket.once('connect', r));
  let closedAt = 0;
  void closed.then(() => (closedAt = Date.now()));
  if (c.before !== undefined) {
    // Until every request of `before` is answered (not a fixed time: a loaded machine answers late, and the
    // idle time is counted from the last answer), then 100 ms as before.
    const requests = c.before.match(/ HTTP\/1\.[01]\r\n/g)?.length ?? 0;
    const answers = () => text().match(/HTTP\/1\.1 \d{3} /g)?.length ?? 0;
    socket.write(c.before);
    for (const t0 = Date.now(); answers() < requests && closedAt === 0 && Date.now() - t0 < 5000; ) await sleep(5);
    await sleep(100);
  }
  if (c.waitMs) await sleep(c.waitMs);
  let first = Date.now();
  if (c.now !== undefined) socket.write(c.now);
  if (c.gapMs) {
    await sleep(c.gapMs);
    first = Date.now();
  }
  if (c.then !== undefined) socket.write(c.then);
  for (const byte of c.slow ?? '') {
    if (closedAt !== 0) break;
    socket.write(byte);
    await sleep(c.everyMs ?? 100);
  }
  await Promise.race([closed, sleep(5000)]);
  socket.destroy();
  return { bytes: text(), closedAfterMs: closedAt === 0 ? Infinity : closedAt - first };
}

/** Date and X-Request-Id vary per answer. */
const normal = (s: string) => s.replace(/\r\nDate: [^\r]*/g, '\r\nDate: D').replace(/\r\nX-Request-Id: [0-9a-f]{16}\r\n/g, '\r\nX-Request-Id: N\r\n');

/** Runs `c` against both servers: the same bytes, and both closed by `deadlineMs` (+ node's check interval and slack). */
async function both(c: Client, deadlineMs: number): Promise<string> {
  const [a, b] = await Promise.all([run(plain.url, c), run(wired.url, c)]);
  expect(normal(b.bytes)).toBe(normal(a.bytes));
  expect(a.closedAfterMs).toBeLessThanOrEqual(deadlineMs + checkMs + slackMs);
  expect(b.closedAfterMs).toBeLessThanOrEqual(deadlineMs + checkMs + slackMs);
  return b.bytes;
}

const timedOut = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n';
const slowHead = `GET /some-non-ocsp-path HTTP/1.1\r\nHost: x\r\nX-A: ${'b'.repeat(60)}`;
const ocspPrefix = `GET ${heldGet} HTTP/1.1\r\nHost: x\r\n`;

describe('a request head that never ends is closed with 408 headersTimeout after its first byte', () => {
  test.each<[string, Client]>([
    ['a byte every 100 ms', { slow: slowHead }],
    ['a partial request line, then nothing', { now: 'GET /oc' }],
    ['an OCSP GET without its last CRLF, then nothing', { now: ocspPrefix }],
    ['an OCSP GET a byte every 100 ms', { slow: `${ocspPrefix}X-A: ${'b'.repeat(60)}` }],
    ['empty lines, a byte every 100 ms', { slow: '\r\n'.repeat(40) }],
    ['its first byte late, then a byte every 100 ms', { waitMs: 300, slow: slowHead }],
    ['after a raw answer on the connection (a hand-over between requests)', { before: get(heldGet), slow: slowHead }],
    ['after a raw answer, an OCSP GET prefix, then nothing', { before: get(heldGet), now: ocspPrefix }],
    ['after a raw answer and a wait near keepAliveTimeout', { before: get(heldGet), waitMs: 900, slow: slowHead }],
    ['after an answer of node\'s', { before: get('/elsewhere'), slow: slowHead }],
    ['after a raw answer and one of node\'s', { before: get(heldGet) + get('/elsewhere'), slow: slowHead }],
  ])('%s', async (_name, c) => {
    expect(await both(c, limits.headersTimeoutMs)).toMatch(new RegExp(`${timedOut}$`));
  });

  // The bytes behind an answer still awaited cannot go to node before that answer is written here. Before, they were
  // handed over with it, and node's headersTimeout started then: the answer's wait plus headersTimeout (~1.4 s here).
  test.each<[string, Client]>([
    ['behind an answer still awaited, a byte every 100 ms', { now: get(slowGet), gapMs: 30, slow: slowHead }],
    ['behind an answer still awaited, a prefix, then nothing', { now: get(slowGet), gapMs: 30, slow: 'G' }],
    ['behind an answer still awaited, an OCSP GET a byte every 100 ms', { now: get(slowGet), gapMs: 30, slow: ocspPrefix }],
    ['behind an answer still awaited, a whole request, then a head a byte every 100 ms', { now: get(slowGet), gapMs: 30, then: get(heldGet), slow: slowHead }],
  ])('%s: node\'s 408 instead of the answer', async (_name, c) => {
    expect(await both(c, limits.headersTimeoutMs)).toBe(timedOut);
  });

  test('behind an answer that comes in time, the head held keeps its deadline from its first byte', async () => {
    // The answer comes after 350 ms; the head behind it is held, then timed from its first byte, not from the answer
    // (before: handed over with it, closed ~750-850 ms after its first byte).
    const bytes = await both({ now: get(laterGet) + 'GET /x HTTP/1.1\r\n', slow: 'Host: x\r\nX-A: bbbbbbbbbbbb' }, limits.headersTimeoutMs);
    expect(bytes).toMatch(new RegExp(`^HTTP/1\\.1 200 OK\\r\\n[\\s\\S]*signed${timedOut}$`));
  });
});

describe('a request of node\'s before a head held', () => {
  // Behind an awaited answer: a request the raw path hands to node, then a head still coming. Handing both over at
  // the answer would give the head a fresh headersTimeout; they go to node once the head is whole.
  const before = (answer: string) => ({ now: get(answer), gapMs: 30, then: `${get('/elsewhere')}GET /x HTTP/1.1\r\nHost: x\r\n` });

  test('the head never ends: 408 headersTimeout after its first byte (node\'s answer to the request before it is not written)', async () => {
    // The answer comes 350 ms after; before, both were handed over then and node closed ~750-850 ms after the head's first byte.
    const b = await run(wired.url, { ...before(laterGet), slow: `X-A: ${'b'.repeat(60)}` });
    expect(b.closedAfterMs).toBeLessThanOrEqual(limits.headersTimeoutMs + checkMs + slackMs);
    expect(normal(b.bytes)).toMatch(new RegExp(`^HTTP/1\\.1 200 OK\\r\\n[^]*\\r\\n\\r\\nsigned${timedOut}$`));
  });

  test('the head ends: node answers both, the same bytes as without the raw path', async () => {
    // The head ends 200 ms after its first byte: after the answer (100 ms), before its headersTimeout.
    const [a, b] = await Promise.all([plain, wired].map((s) => run(s.url, { ...before(soonGet), slow: '\r\n', everyMs: 200 })));
    expect(normal(b!.bytes)).toBe(normal(a!.bytes));
    expect(b!.bytes.match(/HTTP\/1\.1 404 Not Found/g)).toHaveLength(2);
  });
});

test('a head held behind an answer still awaited, cut short by the client\'s FIN: node\'s 400 at once', async () => {
  const [a, b] = await Promise.all(
    [plain, wired].map(async (s) => {
      const { socket, closed, text } = connect(s.url);
      socket.write(get(slowGet));
      await sleep(30);
      socket.end('GET /x HTTP/1.1\r\nHo');
      await Promise.race([closed, sleep(slowAnswerMs / 2)]);
      socket.destroy();
      return text();
    }),
  );
  expect(b).toBe(a);
  expect(b).toBe('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
});

describe('a body that never ends is closed with 408 requestTimeout after the first byte of its request', () => {
  const postHead = 'POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\nContent-Length: 200\r\n\r\n';
  test.each<[string, Client]>([
    ['on a new connection', { now: postHead, slow: '0'.repeat(199) }],
    ['after a raw answer', { before: get(heldGet), now: postHead, slow: '0'.repeat(199) }],
  ])('%s', async (_name, c) => {
    expect(await both(c, limits.requestTimeoutMs)).toMatch(new RegExp(`${timedOut}$`));
  });
});

describe('connections that wait as long as node\'s', () => {
  const idleMs = limits.keepAliveTimeoutMs + 1000;
  test.each<[string, Client]>([
    ['idle after a raw answer: keepAliveTimeout (+1 s)', { before: get(heldGet) }],
    ['idle after an answer of node\'s', { before: get('/elsewhere') }],
    ['idle after a raw answer, then one of node\'s', { before: get(heldGet) + get('/elsewhere') }],
  ])('%s', async (_name, c) => {
    const bytes = await both(c, idleMs);
    expect(bytes).not.toContain('408');
  });

  test('a connection that sends nothing: 408 after headersTimeout', async () => {
    expect(await both({}, limits.headersTimeoutMs)).toBe(timedOut);
  });

  test('an answer awaited longer than headersTimeout is written, whole requests behind it are answered, the connection stays', async () => {
    const c = { now: get(slowGet), gapMs: 30 };
    const [a, b] = await Promise.all(
      [plain, wired].map(async (s) => {
        const { socket, closed: closing, text } = connect(s.url);
        let closed = false;
        void closing.then(() => (closed = true));
        socket.write(c.now);
        // A whole request behind it, while it is awaited.
        await sleep(c.gapMs);
        socket.write(get(heldGet));
        await sleep(slowAnswerMs + 300);
        socket.destroy();
        return { bytes: text(), closed };
      }),
    );
    expect(normal(b!.bytes)).toBe(normal(a!.bytes));
    expect(b!.bytes.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    expect(b!.closed).toBe(false);
  });
});
