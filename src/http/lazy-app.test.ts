import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, test } from 'vitest';
import { lazyApp } from './lazy-app.js';

let server: http.Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function start(listener: http.RequestListener): Promise<string> {
  server = http.createServer(listener);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Echoes the method and the body it reads. */
const echo: http.RequestListener = (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => res.end(`${req.method} ${Buffer.concat(chunks).toString()}`));
};

test('builds once, on the first request; requests that arrive meanwhile get their bodies to the app', async () => {
  let builds = 0;
  let release!: () => void;
  const ready = new Promise<void>((resolve) => (release = resolve));
  const app = lazyApp(async () => {
    builds++;
    await ready;
    return echo;
  }, () => {});
  let arrived = 0;
  let allArrived!: () => void;
  const three = new Promise<void>((resolve) => (allArrived = resolve));
  const url = await start((req, res) => {
    app(req, res);
    if (++arrived === 3) allArrived();
  });
  const answers = Promise.all([1, 2, 3].map((i) => fetch(url, { method: 'POST', body: `body ${i}` }).then((r) => r.text())));
  await three;
  expect(builds).toBe(1);
  release();
  expect(await answers).toEqual(['POST body 1', 'POST body 2', 'POST body 3']);
  expect(await (await fetch(url)).text()).toBe('GET ');
  expect(builds).toBe(1);
});

test('a failed build answers 500 with a problem, logs the error, and the next request builds again', async () => {
  const logged: Record<string, unknown>[] = [];
  let builds = 0;
  const url = await start(
    lazyApp(async () => {
      if (++builds === 1) throw new Error('module missing');
      return echo;
    }, (e) => logged.push(e)),
  );
  const first = await fetch(url, { method: 'POST', body: 'x' });
  expect(first.status).toBe(500);
  expect(first.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
  expect(await first.json()).toMatchObject({ type: 'urn:trellis:problem:serverInternal', status: 500 });
  expect(logged).toEqual([expect.objectContaining({ level: 'error', msg: 'request failed', error: expect.stringContaining('module missing') })]);
  expect(await (await fetch(url, { method: 'POST', body: 'y' })).text()).toBe('POST y');
  expect(builds).toBe(2);
});
