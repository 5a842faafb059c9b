/**
 * A TCP port that never completes a connection, for connect-timeout tests.
 * A worker thread listens with a backlog of 1 and then blocks its event loop,
 * so nothing accepts; once the kernel's accept queue is full (filled here),
 * further SYNs are dropped and a connect hangs (Linux `listen(2)` behaviour).
 */
import net from 'node:net';
import { Worker } from 'node:worker_threads';

/** The listener; `close` releases the worker and the queued connections. */
export interface UnresponsiveListener {
  port: number;
  close(): Promise<void>;
}

const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const server = net.createServer();
server.listen({ port: 0, host: workerData.host, backlog: 1 }, () => {
  parentPort.postMessage(server.address().port);
  setImmediate(() => {
    Atomics.wait(workerData.release, 0, 0);
    server.close();
  });
});
`;

const tryConnect = (port: number, host: string, ms: number): Promise<net.Socket | null> =>
  new Promise((resolve, reject) => {
    const s = net.connect(port, host);
    const timer = setTimeout(() => {
      s.destroy();
      resolve(null);
    }, ms);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });

/** Starts the listener on `host` (default 127.0.0.1) and fills its accept queue. */
export async function startUnresponsiveListener(host = '127.0.0.1'): Promise<UnresponsiveListener> {
  const release = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(workerSource, { eval: true, workerData: { host, release } });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 10; i++) {
    const s = await tryConnect(port, host, 200);
    if (!s) break;
    fillers.push(s);
  }
  return {
    port,
    async close() {
      for (const s of fillers) s.destroy();
      Atomics.store(release, 0, 1);
      Atomics.notify(release, 0);
      await worker.terminate();
    },
  };
}
