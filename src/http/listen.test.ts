/**
 * listen(): close() stops accepting, and once the grace period is over ends
 * every connection still open: a request that is never answered, an idle
 * connection, and (HTTPS) a connection whose TLS handshake never finished.
 */
import fs from 'node:fs';
import net from 'node:net';
import { afterAll, describe, expect, test } from 'vitest';
import { openssl, tempDir } from '../../test/helpers/openssl.js';
import { listen } from './listen.js';
import { defaultConnectionLimits } from './limits.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

/** A raw connection to `url`'s port that resolves `closed` when the server ends it. */
async function connect(url: string): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, closed };
}

describe('close() after the grace period', () => {
  test('HTTP: a request in flight and an idle connection are ended', async () => {
    const running = await listen(() => {}, { host: '127.0.0.1', port: 0 });
    const busy = await connect(running.url);
    busy.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const idle = await connect(running.url);
    // Let the server read the request first.
    await new Promise((r) => setTimeout(r, 50));
    await running.close(100);
    await Promise.all([busy.closed, idle.closed]);
    expect(busy.socket.destroyed && idle.socket.destroyed).toBe(true);
  });

  test('HTTPS: a connection still in its handshake is ended', async () => {
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', tmp.file('key.pem'), '-out', tmp.file('cert.pem'));
    const tls = { certPem: fs.readFileSync(tmp.file('cert.pem'), 'utf8'), keyPem: fs.readFileSync(tmp.file('key.pem'), 'utf8') };
    // A handshake timeout far beyond the test's own: only close() can end the connection in time.
    const limits = { ...defaultConnectionLimits, headersTimeoutMs: 600_000, requestTimeoutMs: 600_000 };
    const running = await listen(() => {}, { host: '127.0.0.1', port: 0, tls, limits });
    // Connected, and never says a word: the handshake does not even start.
    const silent = await connect(running.url);
    await running.close(100);
    await silent.closed;
    expect(silent.socket.destroyed).toBe(true);
  });
});
