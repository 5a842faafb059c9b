/**
 * `trellis serve --workers 2` (compiled, node:cluster): whichever worker a
 * scrape reaches answers with the whole cluster's metrics, gathered by the
 * primary; promtool accepts that exposition too.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createToken } from '../../src/tokens/tokens.js';
import { interopAvailable } from '../helpers/interop.js';
import { makeCsr } from '../helpers/openssl.js';
import { testPki, testPassphrase, type TestPki } from '../helpers/test-pki.js';

const bin = path.join(import.meta.dirname, '../../bin/trellis.js');
const promtoolPath = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'promtool')).find((p) => fs.existsSync(p));
const havePromtool = interopAvailable(promtoolPath !== undefined, 'promtool', 'apt-get install prometheus');

let pki: TestPki;
let server: ChildProcess | undefined;
let output = '';
let url = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

beforeAll(async () => {
  pki = await testPki();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  server = spawn(process.execPath, [bin, 'serve', '--data', pki.dataDir, '--port', String(port), '--workers', '2'], { env: { ...process.env, TRELLIS_PASSPHRASE: testPassphrase }, stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout!.on('data', (d) => (output += d));
  server.stderr!.on('data', (d) => (output += d));
  const t0 = Date.now();
  while ((output.match(/"msg":"serving"/g) ?? []).length < 2) {
    if (Date.now() - t0 > 30_000 || server.exitCode !== null) throw new Error(`serve --workers 2 did not start:\n${output}`);
    await sleep(100);
  }
}, 60_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server!.once('exit', r));
  }
  await pki?.close();
});

const value = (text: string, sample: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
};

test('serve --workers 2: every scrape, from either worker, counts every request and issuance of both', async () => {
  const issuer = (await createToken(pki.instance.store.tokens, 'issuer', 'w-issuer')).secret;
  const { csrPem } = await makeCsr(pki.dir, 'w-leaf', '/CN=w.example.test', { sans: 'DNS:w.example.test' });
  // Each request on a new connection: the kernel spreads them over the workers.
  for (let i = 0; i < 2; i++) {
    const r = await fetch(`${url}/api/v1/certificates`, { method: 'POST', headers: { authorization: `Bearer ${issuer}`, 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ profile: 'server', csr: csrPem }) });
    expect(r.status).toBe(201);
  }
  for (let i = 0; i < 10; i++) expect((await fetch(`${url}/healthz`, { headers: { connection: 'close' } })).status).toBe(200);

  // Scrapes until both workers have answered one (the access log line names the process); each must count everything.
  const scrapers = () => new Set([...output.matchAll(/"pid":(\d+)[^\n]*"path":"\/metrics"/g)].map((m) => m[1]));
  let last = '';
  for (let k = 0; k < 60 && scrapers().size < 2; k++) {
    const res = await fetch(`${url}/metrics`, { headers: { connection: 'close' } });
    expect(res.status).toBe(200);
    last = await res.text();
    expect(value(last, 'trellis_certificates_issued_total{ca="issuing-1",profile="server"}')).toBe(2);
    expect(value(last, 'trellis_http_request_duration_seconds_count{route="api",status_class="2xx"}')).toBe(2);
    // The ten health checks and the k scrapes before this one, whichever worker answered them.
    expect(value(last, 'trellis_http_request_duration_seconds_count{route="other",status_class="2xx"}')).toBe(10 + k);
    await sleep(20); // the access line is written once the answer is sent
  }
  expect(scrapers().size).toBe(2);

  if (havePromtool) {
    const r = await new Promise<{ code: number; output: string }>((resolve, reject) => {
      const child = execFile(promtoolPath!, ['check', 'metrics'], { encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
      });
      child.stdin?.end(last);
    });
    expect(r.output).toBe('');
    expect(r.code).toBe(0);
  }
});
