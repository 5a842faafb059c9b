/**
 * `trellis_http_request_duration_seconds`, observed once per request without
 * prom-client's per-observation work: a prom-client Histogram's `observe`
 * checks the labels object and turns it into a string key on every call
 * (~0.5 µs, as much as the rest of the access line), its `labels()` child too.
 * Here a (route class, status class) pair is an index into a table of bucket
 * counts, and the registry reads the same values a Histogram would give it, in
 * the same shape (`get()`: the `_bucket` series cumulative with `le` first,
 * `+Inf`, `_sum`, `_count`; label sets in the order first seen), so the text
 * exposition and the cluster's sum across workers are unchanged.
 */
import type { Metric } from 'prom-client';
import { routeClasses, routeClassOf, type RouteClass } from './routes.js';

/** Status class labels by index: 0 for codes outside 100–599, else the hundreds digit. */
const statusClasses = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const routeIndex = Object.fromEntries(routeClasses.map((r, i) => [r, i])) as Record<RouteClass, number>;

/** One label set: counts per bucket (not cumulative; the last slot is above every bound), sum and count. */
interface Cell {
  readonly labels: { route: RouteClass; status_class: string };
  readonly counts: number[];
  sum: number;
  count: number;
}

interface Value {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

export class RequestLatency {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: readonly number[];
  #cells: (Cell | undefined)[] = [];
  /** The cells in the order their label sets were first observed (a Histogram's order). */
  #seen: Cell[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
  ) {
    this.#bounds = [...buckets].sort((a, b) => a - b);
  }

  /** A request to `url` (path and query as received) answered with `status` after `seconds`. */
  observe(url: string, status: number, seconds: number): void {
    if (!Number.isFinite(seconds)) throw new TypeError(`Value is not a valid number: ${seconds}`);
    const s = status >= 100 && status < 600 ? (status / 100) | 0 : 0;
    const route = routeClassOf(url);
    const i = routeIndex[route] * statusClasses.length + s;
    let cell = this.#cells[i];
    if (cell === undefined) {
      cell = { labels: { route, status_class: statusClasses[s]! }, counts: new Array<number>(this.#bounds.length + 1).fill(0), sum: 0, count: 0 };
      this.#cells[i] = cell;
      this.#seen.push(cell);
    }
    const bounds = this.#bounds;
    let b = 0;
    while (b < bounds.length && seconds > bounds[b]!) b++;
    cell.counts[b]!++;
    cell.sum += seconds;
    cell.count++;
  }

  /** What prom-client's Histogram gives the registry (Registry.metrics, getMetricsAsJSON, the cluster aggregator). */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: Value[]; aggregator: 'sum' }> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const cell of this.#seen) {
      let acc = 0;
      for (let b = 0; b < this.#bounds.length; b++) {
        acc += cell.counts[b]!;
        values.push({ labels: { le: this.#bounds[b]!, ...cell.labels }, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf', ...cell.labels }, value: cell.count, metricName: bucket });
      values.push({ labels: { ...cell.labels }, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...cell.labels }, value: cell.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** Registry.resetMetrics. */
  reset(): void {
    this.#cells = [];
    this.#seen = [];
  }

  /** This, as the registry's type for a metric (it reads name, help, type, aggregator, get and reset only). */
  asMetric(): Metric {
    return this as unknown as Metric;
  }
}
