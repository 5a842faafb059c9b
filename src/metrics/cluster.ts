/**
 * Metrics under `serve --workers N` (node:cluster). Workers share the
 * listening socket, so a scrape reaches one of them at random; that worker
 * asks the primary, which gathers every worker's registry over IPC
 * (prom-client's AggregatorRegistry) and hands back one exposition for the
 * whole cluster: counters and histograms summed, gauges summed unless they
 * say otherwise (CRL age and key state: the maximum). The primary's own
 * process is not in it.
 */
import cluster from 'node:cluster';
import type { AggregatorRegistry, PrometheusContentType, Registry } from 'prom-client';

const request = 'trellis:metrics-request';
const answer = 'trellis:metrics-answer';

type Answer = { type: typeof answer; id: number; text?: string; error?: string };

/**
 * In the primary: answers workers' requests for the cluster's metrics. Call
 * once, before forking. prom-client (~12 MB of RSS) loads with the first
 * request, so a primary nobody scrapes never loads it.
 */
export function serveClusterMetrics(): void {
  let aggregator: Promise<AggregatorRegistry<PrometheusContentType>> | undefined;
  cluster.on('message', (worker, m: { type?: string; id?: number }) => {
    if (m?.type !== request) return;
    const reply = (a: Omit<Answer, 'type' | 'id'>) => {
      if (worker.isConnected()) worker.send({ type: answer, id: m.id, ...a });
    };
    aggregator ??= import('prom-client').then(({ AggregatorRegistry }) => new AggregatorRegistry());
    aggregator.then((a) => a.clusterMetrics()).then(
      (text) => reply({ text }),
      (err: unknown) => reply({ error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

/** In a worker: this registry is what the primary gathers from this process. */
export async function joinClusterMetrics(registry: Registry): Promise<void> {
  const { AggregatorRegistry } = await import('prom-client');
  AggregatorRegistry.setRegistries([registry]);
  // The constructor installs the worker's listener for the primary's requests.
  new AggregatorRegistry();
}

let nextId = 0;

/** In a worker: the whole cluster's exposition, from the primary (rejects after `timeoutMs`). */
export function clusterMetricsText(timeoutMs = 10_000): Promise<string> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      process.off('message', onMessage);
    };
    const onMessage = (m: Answer) => {
      if (m?.type !== answer || m.id !== id) return;
      done();
      if (m.text !== undefined) resolve(m.text);
      else reject(new Error(`cluster metrics: ${m.error ?? 'no answer'}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`cluster metrics: no answer from the primary within ${timeoutMs} ms`));
    }, timeoutMs);
    process.on('message', onMessage);
    process.send?.({ type: request, id });
  });
}
