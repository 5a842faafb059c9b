import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { metricsHandler, readinessHandler } from './http.js';
import type { Readiness } from './readiness.js';

let server: http.Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** A node:http server with the handlers in front of a 404 fallback, as the front runs hot handlers. */
async function start(handlers: ((req: http.IncomingMessage, res: http.ServerResponse) => boolean)[]): Promise<string> {
  server = http.createServer((req, res) => {
    req.requestId = 'req-1';
    for (const h of handlers) if (h(req, res)) return;
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('metricsHandler', () => {
  test('GET and HEAD /metrics (query ignored); other paths pass on; other methods 405', async () => {
    const url = await start([metricsHandler(async () => ({ contentType: 'text/plain; version=0.0.4; charset=utf-8', text: 'a_total 1\n' }))]);
    const get = await fetch(`${url}/metrics?x=1`);
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(get.headers.get('cache-control')).toBe('no-store');
    expect(await get.text()).toBe('a_total 1\n');
    const head = await fetch(`${url}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('10');
    expect((await fetch(`${url}/metricsx`)).status).toBe(404);
    const post = await fetch(`${url}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  test('a failure to gather: 503 without detail; the cause goes to the log', async () => {
    const logs: Record<string, unknown>[] = [];
    const url = await start([metricsHandler(() => Promise.reject(new Error('cluster metrics: no answer from the primary within 10000 ms')), (e) => logs.push(e))]);
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('metrics unavailable\n');
    expect(logs).toEqual([expect.objectContaining({ level: 'error', msg: 'metrics failed', reqId: 'req-1', error: 'Error: cluster metrics: no answer from the primary within 10000 ms' })]);
  });
});

describe('readinessHandler', () => {
  test('200 ready; 503 with every failed check', async () => {
    let r: Readiness = { ready: true, failed: [] };
    const url = await start([readinessHandler(async () => r)]);
    const ok = await fetch(`${url}/readyz`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('application/json');
    expect(await ok.json()).toEqual({ status: 'ready' });
    r = { ready: false, failed: [{ check: 'crls', reason: 'CRL past its nextUpdate: issuing-1/full (2026-03-01T12:00:00.000Z)' }] };
    const not = await fetch(`${url}/readyz`);
    expect(not.status).toBe(503);
    expect(await not.json()).toEqual({ status: 'not ready', failed: r.failed });
    expect((await fetch(`${url}/readyz`, { method: 'DELETE' })).status).toBe(405);
  });

  test('a check that throws is not ready, without its detail', async () => {
    const logs: Record<string, unknown>[] = [];
    const url = await start([readinessHandler(() => Promise.reject(new TypeError('boom')), (e) => logs.push(e))]);
    const res = await fetch(`${url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'not ready', failed: [{ check: 'readiness', reason: 'the readiness check failed' }] });
    expect(logs).toEqual([expect.objectContaining({ level: 'error', msg: 'readiness check failed', reqId: 'req-1' })]);
  });

  test('the check gets the request\'s id (for what it logs)', async () => {
    const ids: (string | undefined)[] = [];
    const url = await start([readinessHandler(async (reqId) => (ids.push(reqId), { ready: true, failed: [] }))]);
    await (await fetch(`${url}/readyz`)).text();
    expect(ids).toEqual(['req-1']);
  });
});
