/**
 * A stand-in exporter for Prometheus to scrape: an HTTP server on 127.0.0.1 (free port) whose `/metrics`
 * serves, in the Prometheus text format, the series the playbooks query — with values the test controls:
 *
 * - `http_requests_total{status}` counters growing at per-second rates per status (`setRates`);
 * - `http_request_duration_seconds` histogram whose observations all take `setLatencyMs` (one per
 *   request of the rates above), with buckets every 5 % so `histogram_quantile(0.95, …)` comes within 5 %
 *   of the set latency;
 * - cAdvisor-like `container_cpu_usage_seconds_total` and `container_memory_working_set_bytes` per pod
 *   (`setPodUsage`, `removePod`), as the kubelet exposes them: the app's container, the pod's own cgroup
 *   (`container=""`, the sum of its containers) and the pause container (`container="POD"`) — the
 *   `kubectl top`-like query must leave the last two out or count twice.
 *
 * Counters are integrated over wall time and computed when scraped, so `rate()` gives the set values
 * whenever Prometheus scrapes. Prometheus scrapes it as job `pno-physics-bench` (`startPrometheus` names its
 * targets so), hence `http_requests_total{job="pno-physics-bench"}` matches.
 *
 * Test queries use short windows (`[10s]` with a 1 s scrape interval) so that a change of rate shows within
 * seconds; the production defaults keep the procedures' `[5m]`.
 */
import { listenOnLoopback } from './stand-in.ts';
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';

export interface PodUsageSetting {
  cpuMillicores: number;
  memoryMi: number;
  /** Default: the exporter's namespace. */
  namespace?: string;
  /** The app container's name. Default `app`. */
  container?: string;
}

export interface ExporterOptions {
  /** Initial `http_requests_total` rates per status, requests per second. Default `{ '200': 100 }`. */
  rates?: Record<string, number>;
  /** Initial latency of every request. Default 100 ms. */
  latencyMs?: number;
  /** Namespace of the pods. Default `production`. */
  namespace?: string;
}

interface PodSeries {
  pod: string;
  setting: Required<PodUsageSetting>;
  cpuSeconds: number;
}

/** Bucket bounds (seconds): 1 ms × 1.05ⁿ up to 60 s, rounded to 4 significant digits. */
export const LATENCY_BUCKETS: readonly number[] = (() => {
  const bounds: number[] = [];
  for (let le = 0.001; le <= 60; le *= 1.05) bounds.push(Number(le.toPrecision(4)));
  return bounds;
})();

export class Exporter {
  private readonly server: Server;
  private port = 0;
  private namespace: string;
  private rates: Record<string, number> = {};
  private requests: Record<string, number> = {};
  private latencySeconds: number;
  /** Cumulative count per bucket index (LATENCY_BUCKETS.length = +Inf). */
  private buckets: number[] = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  private durationSum = 0;
  private durationCount = 0;
  private readonly pods = new Map<string, PodSeries>();
  private lastAt = performance.now();
  private scraped = 0;

  constructor(options: ExporterOptions = {}) {
    this.namespace = options.namespace ?? 'production';
    this.latencySeconds = checkLatency(options.latencyMs ?? 100) / 1000;
    this.setRates(options.rates ?? { '200': 100 });
    this.server = createServer((req, res) => {
      if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') return this.metrics(res);
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    });
  }

  /** Listens on a free 127.0.0.1 port; resolves with the scrape target `127.0.0.1:<port>`. */
  async start(): Promise<string> {
    this.port = await listenOnLoopback(this.server);
    return this.target;
  }

  /** `127.0.0.1:<port>`, for `startPrometheus({ targets })`. */
  get target(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** `http://127.0.0.1:<port>/metrics` */
  get url(): string {
    return `http://${this.target}/metrics`;
  }

  /** How many times `/metrics` was read. */
  get scrapes(): number {
    return this.scraped;
  }

  /**
   * From now on, `http_requests_total{status}` grows by these many requests per second (statuses not named
   * stop growing but keep their count, as a real counter would).
   */
  setRates(rates: Record<string, number>): void {
    this.advance();
    for (const [status, rate] of Object.entries(rates)) {
      if (!(Number.isFinite(rate) && rate >= 0))
        throw new RangeError(`rate of ${status} must be ≥ 0: ${rate}`);
      this.requests[status] ??= 0;
    }
    this.rates = { ...rates };
  }

  /** From now on every request takes this long (the histogram's observations). */
  setLatencyMs(ms: number): void {
    this.advance();
    this.latencySeconds = checkLatency(ms) / 1000;
  }

  /** The pod (of `usage.namespace`, default the exporter's) runs, or keeps running, at this CPU and memory. */
  setPodUsage(pod: string, usage: PodUsageSetting): void {
    this.advance();
    if (!(usage.cpuMillicores >= 0 && usage.memoryMi >= 0)) throw new RangeError('usage must be ≥ 0');
    const setting = { namespace: this.namespace, container: 'app', ...usage };
    const key = `${setting.namespace}/${pod}`;
    const existing = this.pods.get(key);
    this.pods.set(key, { pod, setting, cpuSeconds: existing?.cpuSeconds ?? 0 });
  }

  /** The pod is gone: its series disappear from `/metrics` (Prometheus marks them stale). */
  removePod(pod: string, namespace: string = this.namespace): void {
    this.advance();
    this.pods.delete(`${namespace}/${pod}`);
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  /** Integrates every counter from the last change or scrape until now. */
  private advance(): void {
    const now = performance.now();
    const seconds = (now - this.lastAt) / 1000;
    this.lastAt = now;
    if (seconds <= 0) return;
    let requests = 0;
    for (const [status, rate] of Object.entries(this.rates)) {
      this.requests[status] = (this.requests[status] ?? 0) + rate * seconds;
      requests += rate * seconds;
    }
    const bucket = LATENCY_BUCKETS.findIndex((le) => this.latencySeconds <= le);
    const from = bucket === -1 ? LATENCY_BUCKETS.length : bucket;
    for (let i = from; i < this.buckets.length; i++) this.buckets[i] = (this.buckets[i] ?? 0) + requests;
    this.durationCount += requests;
    this.durationSum += requests * this.latencySeconds;
    for (const series of this.pods.values())
      series.cpuSeconds += (series.setting.cpuMillicores / 1000) * seconds;
  }

  private metrics(res: ServerResponse): void {
    this.advance();
    this.scraped++;
    const lines: string[] = [
      '# HELP http_requests_total HTTP requests answered, by status code.',
      '# TYPE http_requests_total counter',
      ...Object.entries(this.requests).map(
        ([status, count]) => `http_requests_total${labels({ status })} ${count}`,
      ),
      '# HELP http_request_duration_seconds Time to answer a request.',
      '# TYPE http_request_duration_seconds histogram',
      ...LATENCY_BUCKETS.map(
        (le, i) =>
          `http_request_duration_seconds_bucket${labels({ le: String(le) })} ${this.buckets[i] ?? 0}`,
      ),
      `http_request_duration_seconds_bucket${labels({ le: '+Inf' })} ${this.buckets[LATENCY_BUCKETS.length] ?? 0}`,
      `http_request_duration_seconds_sum ${this.durationSum}`,
      `http_request_duration_seconds_count ${this.durationCount}`,
    ];
    const cpu: string[] = [];
    const memory: string[] = [];
    for (const { pod, setting, cpuSeconds } of this.pods.values()) {
      const bytes = setting.memoryMi * 1024 * 1024;
      const pause = { cpu: 0.001 * cpuSeconds, bytes: 512 * 1024 };
      const of = (container: string) => labels({ namespace: setting.namespace, pod, container });
      // The app container, the pause container, and the pod's cgroup (all of its containers).
      cpu.push(`container_cpu_usage_seconds_total${of(setting.container)} ${cpuSeconds}`);
      cpu.push(`container_cpu_usage_seconds_total${of('POD')} ${pause.cpu}`);
      cpu.push(`container_cpu_usage_seconds_total${of('')} ${cpuSeconds + pause.cpu}`);
      memory.push(`container_memory_working_set_bytes${of(setting.container)} ${bytes}`);
      memory.push(`container_memory_working_set_bytes${of('POD')} ${pause.bytes}`);
      memory.push(`container_memory_working_set_bytes${of('')} ${bytes + pause.bytes}`);
    }
    lines.push(
      '# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.',
      '# TYPE container_cpu_usage_seconds_total counter',
      ...cpu,
      '# HELP container_memory_working_set_bytes Current working set in bytes.',
      '# TYPE container_memory_working_set_bytes gauge',
      ...memory,
      '',
    );
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(lines.join('\n'));
  }
}

/** Starts an {@link Exporter}. */
export async function startExporter(options: ExporterOptions = {}): Promise<Exporter> {
  const exporter = new Exporter(options);
  await exporter.start();
  return exporter;
}

function labels(values: Record<string, string>): string {
  const pairs = Object.entries(values).map(
    ([name, value]) => `${name}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
  );
  return `{${pairs.join(',')}}`;
}

function checkLatency(ms: number): number {
  if (!(Number.isFinite(ms) && ms > 0)) throw new RangeError(`latency must be > 0 ms: ${ms}`);
  return ms;
}
