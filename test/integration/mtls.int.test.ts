/** A real mutual-TLS handshake with Node's tls: a Trellis server certificate on one side, a Trellis device certificate on the other. */
import fs from 'node:fs';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { makeCsr } from '../helpers/openssl.js';
import { testPki, type TestPki } from '../helpers/test-pki.js';

let pki: TestPki;
beforeAll(async () => {
  pki = await testPki();
});
afterAll(() => pki?.close());

test('device authenticates to a server over mutual TLS; both chains verify against the Trellis root', async () => {
  const srv = await makeCsr(pki.dir, 'tls-server', '/CN=localhost', { sans: 'DNS:localhost,IP:127.0.0.1' });
  const dev = await makeCsr(pki.dir, 'tls-device', '/serialNumber=DEV-7');
  const serverCert = await pki.issue('server', srv.csrPem, 'tls-server');
  const deviceCert = await pki.issue('device', dev.csrPem, 'tls-device');

  const seen: { authorized: boolean; serial?: string; error?: string }[] = [];
  const server = tls.createServer(
    { key: fs.readFileSync(srv.keyPath), cert: fs.readFileSync(serverCert.chainPath), ca: pki.rootPem, requestCert: true, rejectUnauthorized: true },
    (socket) => {
      const peer = socket.getPeerCertificate();
      seen.push({ authorized: socket.authorized, serial: (peer.subject as unknown as Record<string, string>)?.serialNumber });
      socket.end('hello device\n');
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.rootPem, key: fs.readFileSync(dev.keyPath), cert: fs.readFileSync(deviceCert.chainPath) }, () => {
        expect(s.authorized).toBe(true);
      });
      let data = '';
      s.on('data', (d) => (data += d));
      s.on('end', () => resolve(data));
      s.on('error', reject);
    });
    expect(reply).toBe('hello device\n');
    expect(seen).toEqual([{ authorized: true, serial: 'DEV-7' }]);

    // A client without a certificate is refused by the server.
    await expect(
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.rootPem }, () => s.write('x'));
        s.on('data', resolve);
        s.on('error', reject);
        s.on('end', () => reject(new Error('closed without data')));
      }),
    ).rejects.toThrow();
  } finally {
    server.close();
  }
});
