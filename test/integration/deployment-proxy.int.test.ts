/**
 * docker/nginx.conf in front of two nodes started by docker/entrypoint.sh, all
 * outside Docker: a real nginx with the compose file's configuration, only the
 * upstream addresses, the listening address, the certificate paths and the
 * access log's path changed for loopback. The proxy's certificate is issued by
 * the instance itself (`trellis issue`). Checks TLS termination, both nodes
 * answering, the client address Trellis sees through X-Forwarded-For
 * (--trusted-proxy), and a GET carried to the other node when one stops.
 * Skips loudly without nginx (Debian nginx-light).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runEntrypoint, serving, stopEntrypoint, writeSecret, type EntrypointRun } from '../helpers/entrypoint.js';
import { interopAvailable } from '../helpers/interop.js';
import { makeCsr } from '../helpers/openssl.js';
import { toPem } from '../../src/pki/pem.js';

const nginxBin = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));
const enabled = interopAvailable(!!nginxBin, 'nginx', 'apt-get install nginx-light');

const root = path.join(import.meta.dirname, '../..');
const host = 'pki.example.test';
/** The test client connects from another loopback address than nginx's upstream connections (127.0.0.1). */
const clientAddress = '127.0.0.2';

let dir: string;
let nodes: EntrypointRun[] = [];
let nginx: ChildProcess | undefined;
let proxyPort: number;
let rootPem: string;

/** A port free right now on 127.0.0.1 (nginx needs a number in its configuration). */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

/** GET through the proxy over TLS, verified against the instance's root, from `clientAddress`. */
function get(pathname: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: proxyPort, servername: host, path: pathname, headers: { host, ...headers }, ca: rootPem, localAddress: clientAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

type AccessLine = { address: string; path: string; status: number };

/** Access log lines of a node (JSON, one per request). */
const requestsOf = (node: EntrypointRun): AccessLine[] =>
  node
    .stdout()
    .split('\n')
    .filter((l) => l.includes('"msg":"request"'))
    .map((l) => JSON.parse(l) as AccessLine);

/**
 * The access lines for `pathname` per node, once `count` of them have arrived through the pipes (each test asks for
 * its own path, so a line of an earlier request arriving late is never counted).
 */
async function linesFor(pathname: string, count: number): Promise<AccessLine[][]> {
  for (let i = 0; ; i++) {
    const lines = nodes.map((n) => requestsOf(n).filter((l) => l.path === pathname));
    if (lines.flat().length >= count || i > 100) return lines;
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  if (!enabled) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-proxy-'));
  fs.mkdirSync(path.join(dir, 'secrets'));
  const data = path.join(dir, 'data');
  const env = { TRELLIS_DATA: data, TRELLIS_PASSPHRASE_FILE: writeSecret(path.join(dir, 'secrets'), 'passphrase', 'online passphrase for the proxy test') };
  const init = runEntrypoint({
    ...env,
    TRELLIS_SECRETS_DIR: path.join(dir, 'private-init'),
    TRELLIS_INIT: 'only',
    TRELLIS_BASE_URL: `https://${host}`,
    TRELLIS_ROOT_PASSPHRASE_FILE: writeSecret(path.join(dir, 'secrets'), 'root-passphrase', 'root passphrase for the proxy test'),
  });
  expect(await init.exited, init.stderr()).toBe(0);

  // Both nodes trust X-Forwarded-For from all of loopback, the client's address included, as the compose nodes trust
  // the whole front network (where Docker's gateway may be the peer nginx sees): only a replaced header is safe there.
  nodes = [1, 2].map((n) => runEntrypoint({ ...env, TRELLIS_SECRETS_DIR: path.join(dir, `private-${n}`) }, ['--trusted-proxy', '127.0.0.0/8']));
  const urls = await Promise.all(nodes.map(serving));
  const ports = urls.map((u) => new URL(u).port);

  // The proxy's certificate from the instance (server profile), as docs/deployment.md suggests.
  const { csrPath, keyPath } = await makeCsr(dir, 'proxy', `/CN=${host}`, { sans: `DNS:${host}` });
  const certPath = path.join(dir, 'proxy-chain.pem');
  const issued = await new Promise<{ code: number; out: string }>((resolve) =>
    execFile(process.execPath, [path.join(root, 'bin/trellis.js'), 'issue', '--profile', 'server', '--csr', csrPath, '--out', certPath, '--passphrase-file', path.join(dir, 'private-1', 'passphrase')], { env: { PATH: process.env.PATH!, TRELLIS_DATA: data } }, (err, stdout, stderr) =>
      resolve({ code: err ? 1 : 0, out: stdout + stderr }),
    ),
  );
  expect(issued.code, issued.out).toBe(0);
  rootPem = toPem('CERTIFICATE', Buffer.from(await (await fetch(`${urls[0]}/ca/root.cer`)).arrayBuffer()));

  proxyPort = await freePort();
  const conf = fs
    .readFileSync(path.join(root, 'docker/nginx.conf'), 'utf8')
    .replace('server trellis-1:8081 ', `server 127.0.0.1:${ports[0]} `)
    .replace('server trellis-2:8082 ', `server 127.0.0.1:${ports[1]} `)
    .replace('listen 443 ssl;', `listen 127.0.0.1:${proxyPort} ssl;`)
    .replace('listen [::]:443 ssl;', '')
    .replace('/run/secrets/proxy_tls_cert;', `${certPath};`)
    .replace('/run/secrets/proxy_tls_key;', `${keyPath};`)
    .replace('access_log /var/log/nginx/access.log;', `access_log ${path.join(dir, 'nginx-access.log')};`);
  expect(conf).not.toMatch(/trellis-[12]:|\/run\/secrets|listen 443|\/var\/log/);
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  nginx = spawn(nginxBin!, ['-p', dir, '-e', 'stderr', '-c', path.join(dir, 'nginx.conf'), '-g', `daemon off; pid ${path.join(dir, 'nginx.pid')};`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let nginxErr = '';
  nginx.stderr!.on('data', (d: Buffer) => (nginxErr += d.toString('utf8')));
  // Ready when it answers; a failed start shows nginx's own message.
  for (let i = 0; ; i++) {
    if (nginx.exitCode !== null) throw new Error(`nginx exited: ${nginxErr}`);
    const ok = await get('/healthz').then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (i > 100) throw new Error(`nginx does not answer: ${nginxErr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}, 120_000);

afterAll(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((r) => nginx!.once('exit', r));
    nginx.kill('SIGQUIT');
    await exited;
  }
  for (const node of nodes) await stopEntrypoint(node);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!enabled)('docker/nginx.conf in front of two entry point nodes', () => {
  test('terminates TLS with a certificate that chains to the instance root, and spreads requests over both nodes', async () => {
    // Not /ca/root.cer: the set-up fetched that from node 1 directly.
    for (let i = 0; i < 6; i++) expect((await get('/ca/issuing-1.cer')).status).toBe(200);
    const lines = await linesFor('/ca/issuing-1.cer', 6);
    expect(lines.flat()).toHaveLength(6);
    for (const perNode of lines) expect(perNode.length).toBeGreaterThan(0);
  });

  test('Trellis logs the client address nginx saw, whatever X-Forwarded-For the client sent', async () => {
    for (let i = 0; i < 4; i++) expect((await get('/ca/root.crt', { 'x-forwarded-for': '203.0.113.7' })).status).toBe(200);
    const lines = (await linesFor('/ca/root.crt', 4)).flat();
    expect(lines).toHaveLength(4);
    for (const line of lines) expect(line).toMatchObject({ address: clientAddress, status: 200 });
  });

  test('a GET goes to the other node while one is stopped', async () => {
    await stopEntrypoint(nodes[0]!);
    for (let i = 0; i < 4; i++) expect((await get('/ca/root.der')).status).toBe(200);
    const [first, second] = await linesFor('/ca/root.der', 4);
    expect(first).toHaveLength(0);
    expect(second).toHaveLength(4);
  });
});
