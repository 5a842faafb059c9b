/**
 * RequestLatency against the prom-client Histogram it stands in for: the same
 * observations give the same exposition text, the same JSON to the registry,
 * and the same sum across cluster workers.
 */
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { RequestLatency } from './latency.js';
import { routeClassOf } from './routes.js';

const name = 'trellis_http_request_duration_seconds';
const help = 'Time taken.';
const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The status class as the Histogram was labelled with it. */
const statusClass = (status: number) => (status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other');

function both() {
  const mine = new Registry();
  const theirs = new Registry();
  const latency = new RequestLatency(name, help, buckets);
  mine.registerMetric(latency.asMetric());
  const histogram = new Histogram({ name, help, labelNames: ['route', 'status_class'], buckets, registers: [theirs] });
  const observe = (url: string, status: number, seconds: number) => {
    latency.observe(url, status, seconds);
    histogram.observe({ route: routeClassOf(url), status_class: statusClass(status) }, seconds);
  };
  return { mine, theirs, latency, observe };
}

const observations: [string, number, number][] = [
  ['/ocsp/MEQwQjBAMD4', 200, 0.0008],
  ['/ocsp', 200, 0.03],
  ['/api/v1/certificates', 401, 0.002],
  ['/ocsp/x', 200, 0.001], // on a bound: counted in it
  ['/acme/new-order', 503, 12], // above every bound: +Inf only
  ['/crl/issuing-1/0.crl', 304, 0],
  ['/metrics', 99, 0.2],
  ['/', 600, 0.004],
  ['/.well-known/est/simpleenroll', 201, 0.3],
  ['/ocsp', 200, 0.0001],
];

describe('RequestLatency', () => {
  test('the text exposition and the JSON are a Histogram\'s, label sets in the order first seen', async () => {
    const { mine, theirs, observe } = both();
    expect(await mine.metrics()).toBe(await theirs.metrics());
    for (const o of observations) observe(...o);
    const text = await mine.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain(`${name}_bucket{le="0.001",route="ocsp",status_class="2xx"} 3\n`);
    expect(text).toContain(`${name}_count{route="other",status_class="other"} 2\n`);
    expect(text).not.toContain('MEQwQjBAMD4');
    // The Histogram's values carry `exemplar: null` (exemplars off), which nothing reads then.
    const withoutExemplars = (metrics: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) =>
      metrics.map((m) => ({ ...m, values: m.values.map((v) => Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'exemplar'))) }));
    expect(await mine.getMetricsAsJSON()).toEqual(withoutExemplars(await theirs.getMetricsAsJSON()));
  });

  test('summed across cluster workers as a Histogram is', async () => {
    const a = both();
    const b = both();
    for (const o of observations.slice(0, 6)) a.observe(...o);
    for (const o of observations.slice(3)) b.observe(...o);
    const mine = AggregatorRegistry.aggregate([await a.mine.getMetricsAsJSON(), await b.mine.getMetricsAsJSON()]);
    const theirs = AggregatorRegistry.aggregate([await a.theirs.getMetricsAsJSON(), await b.theirs.getMetricsAsJSON()]);
    expect(await mine.metrics()).toBe(await theirs.metrics());
  });

  test('reset empties it; a value that is not a finite number is refused', async () => {
    const { mine, latency, observe } = both();
    observe('/ocsp', 200, 0.001);
    mine.resetMetrics();
    expect(await latency.get()).toMatchObject({ values: [] });
    expect(() => latency.observe('/ocsp', 200, Number.NaN)).toThrow(TypeError);
  });
});
