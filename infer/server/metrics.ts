/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (version 0.0.4). Hand-written because the server needs only these three kinds.
 */

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return keys.map((k) => `${k}="${escapeLabel(labels[k] as string)}"`).join(',');
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  value(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [key, v] of this.values) lines.push(`${this.name}${key ? `{${key}}` : ''} ${formatNumber(v)}`);
    return lines.join('\n');
  }
}

/** A gauge whose value is read when /metrics is scraped. */
export class Gauge implements Metric {
  constructor(readonly name: string, readonly help: string, private readonly read: () => number) {}
  render(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${formatNumber(this.read())}`].join('\n');
  }
}

interface HistogramSeries {
  labels: Labels;
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram implements Metric {
  private readonly series = new Map<string, HistogramSeries>();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {}
  observe(value: number, labels: Labels = {}): void {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels, counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] as number)) s.counts[i]! += 1;
    s.sum += value;
    s.count += 1;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [key, s] of this.series) {
      const sep = key ? ',' : '';
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{${key}${sep}le="${formatNumber(b)}"} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket{${key}${sep}le="+Inf"} ${s.count}`);
      lines.push(`${this.name}_sum${key ? `{${key}}` : ''} ${formatNumber(s.sum)}`);
      lines.push(`${this.name}_count${key ? `{${key}}` : ''} ${s.count}`);
    }
    return lines.join('\n');
  }
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/** Everything the server exports on /metrics. */
export class ServerMetrics {
  readonly requests = new Counter('skd_http_requests_total', 'HTTP requests answered, by route, method and status code.');
  readonly errors = new Counter('skd_http_errors_total', 'HTTP requests answered with a 4xx or 5xx status, by route and status code.');
  readonly latency = new Histogram('skd_http_request_duration_seconds', 'Time from receiving a request to sending its answer, by route.', LATENCY_BUCKETS);
  readonly batchSize = new Histogram('skd_batch_size_images', 'Images per ONNX Runtime run.', BATCH_BUCKETS);
  readonly batchSeconds = new Histogram('skd_batch_duration_seconds', 'Duration of each ONNX Runtime run.', LATENCY_BUCKETS);
  readonly batchRequests = new Histogram('skd_batch_requests', 'Requests served by each ONNX Runtime run.', BATCH_BUCKETS);
  readonly rejected = new Counter('skd_queue_rejections_total', 'Requests refused with 503 because the extraction queue was full.');
  private readonly gauges: Gauge[] = [];

  addGauge(name: string, help: string, read: () => number): void {
    this.gauges.push(new Gauge(name, help, read));
  }

  render(): string {
    const metrics: Metric[] = [this.requests, this.errors, this.latency, this.batchSize, this.batchSeconds, this.batchRequests, this.rejected, ...this.gauges];
    return metrics.map((m) => m.render()).join('\n') + '\n';
  }
}
