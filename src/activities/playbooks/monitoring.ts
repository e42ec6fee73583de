import { performance } from 'node:perf_hooks';
import type { AxiosInstance } from 'axios';
import type { FiringAlert, PodUsage, ProbeResult, PromSample } from '../../domain/cluster.ts';
import { playbookFailure } from './errors.ts';
import { DEFAULT_PLAYBOOK_HTTP_TIMEOUT_MS } from './http.ts';

/**
 * What the playbooks read from monitoring, as Temporal activities: Prometheus' HTTP API (instant queries,
 * active alerts, the cAdvisor series `kubectl top pods` would show) and `curl -f`-like health probes.
 *
 * Failures follow the playbooks' rule (`src/domain/cluster.ts`, NON_RETRYABLE_PLAYBOOK_ERRORS): what a retry
 * cannot fix fails non-retryable — no PROMETHEUS_URL (`NotConfigured`), a query Prometheus rejects
 * (`Invalid`), 401/403 (`Forbidden`), no Prometheus API at the URL (`NotFound`) — and everything that may pass
 * (5xx, 503 of an overloaded Prometheus, timeouts, connection refused) is a plain Error the workflow's retry
 * policy retries. A probed service that fails is not an error at all: its failing answer is the finding.
 *
 * Credentials in a URL (`https://user:pass@prometheus…`) are sent as basic auth and never appear in a
 * message, a result or the start-up line.
 *
 * The activities are own enumerable properties (arrow functions) and nothing else is, so the worker can
 * register `{ ...monitoring }` and workflows can type `proxyActivities<MonitoringActivities>`.
 */

export interface MonitoringOptions {
  /** Base URL of Prometheus (`PROMETHEUS_URL`), e.g. `http://prometheus.monitoring.svc:9090`. */
  prometheusUrl?: string | undefined;
  /** From `createPlaybookHttp()`. */
  http: AxiosInstance;
}

export interface QueryPrometheusInput {
  /** A PromQL expression whose value is an instant vector or a scalar. */
  query: string;
}

export interface FiringAlertsInput {
  /** Only alerts whose labels include all of these (e.g. `{ service: 'pno-physics-bench' }`). */
  labels?: Record<string, string>;
}

export interface PodUsageInput {
  namespace: string;
  pods: string[];
  /** Range of the CPU rate, a Prometheus duration. Default {@link DEFAULT_USAGE_WINDOW}. */
  window?: string;
}

export interface ProbeInput {
  /** An http(s) URL, e.g. `https://api.pno-physics-bench.com/health`. */
  url: string;
  /** Deadline of the whole exchange (connect, answer, body). Default {@link DEFAULT_PROBE_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/** The activities of {@link Monitoring}, for `proxyActivities<MonitoringActivities>()`. */
export interface MonitoringActivities {
  queryPrometheus(a: QueryPrometheusInput): Promise<PromSample[]>;
  firingAlerts(a: FiringAlertsInput): Promise<FiringAlert[]>;
  podUsage(a: PodUsageInput): Promise<PodUsage[]>;
  probe(a: ProbeInput): Promise<ProbeResult>;
}

/** The procedures' window for `kubectl top`-like usage (tests pass a short one, e.g. `10s`). */
export const DEFAULT_USAGE_WINDOW = '5m';
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;
/** A probe reads at most this much of the body (like curl, it reads the answer; unlike curl, not all of it). */
const PROBE_MAX_BODY_BYTES = 64 * 1024;

export class Monitoring implements MonitoringActivities {
  readonly #http: AxiosInstance;
  readonly #prometheus: PrometheusTarget;

  constructor(options: MonitoringOptions) {
    this.#http = options.http;
    this.#prometheus = prometheusTarget(options.prometheusUrl);
  }

  /** Where Prometheus is, for the worker's start-up line: `prometheus http://…` or why there is none. */
  static describe(prometheusUrl: string | undefined): string {
    return describeTarget(prometheusTarget(prometheusUrl));
  }

  /** {@link Monitoring.describe} of this instance's Prometheus. */
  describe(): string {
    return describeTarget(this.#prometheus);
  }

  /** PROMETHEUS_URL is set to an http(s) URL (PlaybookEnvironment.prometheus). */
  get prometheusConfigured(): boolean {
    return this.#prometheus.kind === 'configured';
  }

  /**
   * An instant query (`GET /api/v1/query`). A vector gives one sample per series, a scalar one sample with
   * no labels. NaN and ±Inf values are left out (an error ratio of 0/0 when there is no traffic): no sample
   * means no data.
   */
  queryPrometheus = async (a: QueryPrometheusInput): Promise<PromSample[]> => {
    const query = typeof a?.query === 'string' ? a.query.trim() : '';
    if (query === '') throw playbookFailure('Invalid', 'queryPrometheus needs a PromQL query');
    return this.#instantQuery(query);
  };

  /** Alerts Prometheus has firing now (`GET /api/v1/alerts`; pending ones are left out), filtered by labels. */
  firingAlerts = async (a: FiringAlertsInput = {}): Promise<FiringAlert[]> => {
    const wanted = Object.entries(a?.labels ?? {});
    const data = await this.#get('/api/v1/alerts', {}, 'the active alerts');
    const alerts = isRecord(data) && Array.isArray(data['alerts']) ? data['alerts'] : undefined;
    if (!alerts) throw new Error(`Prometheus at ${this.#shown()} answered /api/v1/alerts without alerts`);
    const firing: FiringAlert[] = [];
    for (const alert of alerts) {
      if (!isRecord(alert) || alert['state'] !== 'firing') continue;
      const labels = stringRecord(alert['labels']);
      if (!wanted.every(([name, value]) => labels[name] === value)) continue;
      const summary = stringRecord(alert['annotations'])['summary'];
      const activeAt = alert['activeAt'];
      firing.push({
        alertname: labels['alertname'] ?? '',
        severity: labels['severity'] ?? '',
        state: 'firing',
        labels,
        ...(typeof activeAt === 'string' ? { activeAt } : {}),
        ...(summary !== undefined ? { summary } : {}),
      });
    }
    return firing;
  };

  /**
   * CPU (millicores) and memory (Mi, working set) of `pods`, what `kubectl top pods` shows, from the cAdvisor
   * series in Prometheus (clusters without metrics-server are common). Whole millicores and Mi, in the order
   * asked; a pod without both values (gone, or too new for a rate) is left out.
   */
  podUsage = async (a: PodUsageInput): Promise<PodUsage[]> => {
    const pods = [...new Set(Array.isArray(a?.pods) ? a.pods : [])];
    if (pods.length === 0) return [];
    const { cpu, memory } = podUsageQueries(a.namespace, pods, a.window ?? DEFAULT_USAGE_WINDOW);
    const [cpuSamples, memorySamples] = await Promise.all([
      this.#instantQuery(cpu),
      this.#instantQuery(memory),
    ]);
    const byPod = (samples: PromSample[]) =>
      new Map(samples.flatMap((s) => (s.labels['pod'] ? [[s.labels['pod'], s.value] as const] : [])));
    const cpuOf = byPod(cpuSamples);
    const memoryOf = byPod(memorySamples);
    return pods.flatMap((pod) => {
      const cpuMillicores = cpuOf.get(pod);
      const memoryMi = memoryOf.get(pod);
      if (cpuMillicores === undefined || memoryMi === undefined) return [];
      return [{ pod, cpuMillicores: Math.round(cpuMillicores), memoryMi: Math.round(memoryMi) }];
    });
  };

  /**
   * `curl -f` of a URL: GET, ok iff the answer is 2xx; `ms` is the wall time of the whole exchange. A
   * service that answers 503, times out or refuses the connection gives `ok: false` with its `status` or
   * `error` — it never throws for a failing service. Only a URL that is not http(s) is refused (`Invalid`).
   */
  probe = async (a: ProbeInput): Promise<ProbeResult> => {
    const raw = typeof a?.url === 'string' ? a.url.trim() : '';
    const shown = redactUrl(raw);
    const target = parseHttpUrl(raw);
    if (!target) throw playbookFailure('Invalid', `probe needs an http(s) URL, got "${shown}"`);
    const timeoutMs = a.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0))
      throw playbookFailure('Invalid', `probe timeoutMs must be a positive number, got ${timeoutMs}`);
    const deadline = AbortSignal.timeout(timeoutMs);
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    let status: number | undefined;
    try {
      const res = await this.#http.get<unknown>(target.url, {
        responseType: 'stream',
        timeout: timeoutMs,
        signal: deadline,
        ...(target.auth ? { auth: target.auth } : {}),
      });
      status = res.status;
      await drain(res.data, PROBE_MAX_BODY_BYTES);
      return { url: shown, ok: status >= 200 && status < 300, status, ms: elapsed() };
    } catch (err) {
      const ms = elapsed();
      const error = redact(networkErrorText(err, timeoutMs, deadline.aborted), target.secrets);
      return { url: shown, ok: false, ...(status !== undefined ? { status } : {}), ms, error };
    }
  };

  async #instantQuery(query: string): Promise<PromSample[]> {
    const data = await this.#get('/api/v1/query', { query }, `the query ${excerpt(query)}`);
    const resultType = isRecord(data) ? data['resultType'] : undefined;
    const result = isRecord(data) ? data['result'] : undefined;
    if (resultType === 'scalar') {
      const value = sampleValue(result);
      return value === undefined ? [] : [{ labels: {}, value }];
    }
    if (resultType === 'vector' && Array.isArray(result)) {
      return result.flatMap((series) => {
        if (!isRecord(series)) return [];
        const value = sampleValue(series['value']);
        return value === undefined ? [] : [{ labels: stringRecord(series['metric']), value }];
      });
    }
    if (resultType === 'matrix' || resultType === 'string')
      throw playbookFailure(
        'Invalid',
        `the query ${excerpt(query)} gives a ${resultType === 'matrix' ? 'range vector' : 'string'}, not an instant vector or a scalar`,
      );
    throw new Error(`Prometheus at ${this.#shown()} answered the query without a vector or scalar`);
  }

  /** GET a Prometheus API path; its `data` when Prometheus says success, else the failure it deserves. */
  async #get(path: string, params: Record<string, string>, what: string): Promise<unknown> {
    const target = this.#prometheus;
    if (target.kind !== 'configured')
      throw playbookFailure('NotConfigured', `${target.problem}: cannot read ${what}`);
    const url = new URL(`${target.base}${path}`);
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    const timeoutMs = Number(this.#http.defaults.timeout) || DEFAULT_PLAYBOOK_HTTP_TIMEOUT_MS;
    const deadline = AbortSignal.timeout(timeoutMs);
    let status: number;
    let text: string;
    try {
      const res = await this.#http.get<string>(url.href, {
        responseType: 'text',
        headers: { Accept: 'application/json' },
        signal: deadline,
        ...(target.auth ? { auth: target.auth } : {}),
      });
      status = res.status;
      text = typeof res.data === 'string' ? res.data : String(res.data);
    } catch (err) {
      const why = networkErrorText(err, timeoutMs, deadline.aborted);
      throw withSafeCause(
        `Prometheus at ${target.shown} unreachable for ${what}: ${why}`,
        err,
        target.secrets,
      );
    }
    const body = parseJson(text);
    const said = isRecord(body)
      ? [body['errorType'], body['error']].filter((s) => typeof s === 'string' && s !== '').join(': ')
      : '';
    const detail = redact(said || excerpt(text), target.secrets);
    const answered = `Prometheus at ${target.shown} answered HTTP ${status}`;
    if (status >= 200 && status < 300) {
      if (isRecord(body) && body['status'] === 'success') return body['data'];
      throw new Error(`${answered} for ${what} without Prometheus' JSON: ${detail}`);
    }
    if (status === 400 || status === 422)
      throw playbookFailure('Invalid', `Prometheus rejected ${what}: ${detail}`);
    if (status === 401 || status === 403)
      throw playbookFailure('Forbidden', `${answered} for ${what}: ${detail}`);
    if (status === 404)
      throw playbookFailure(
        'NotFound',
        `${answered} for ${path}: is PROMETHEUS_URL the base URL of Prometheus' API? ${detail}`,
      );
    if (status >= 400 && status < 500 && status !== 408 && status !== 429)
      throw playbookFailure('Invalid', `${answered} for ${what}: ${detail}`);
    throw new Error(`${answered} for ${what}: ${detail}`);
  }

  #shown(): string {
    return this.#prometheus.kind === 'configured' ? this.#prometheus.shown : 'PROMETHEUS_URL';
  }
}

// ---------------------------------------------------------------------------------------------------------
// PromQL for `kubectl top pods`
// ---------------------------------------------------------------------------------------------------------

/**
 * The two instant queries behind {@link Monitoring.podUsage}: CPU millicores (rate of the cAdvisor counter
 * over `window`, ×1000) and working-set memory in Mi, summed per pod over its containers (not the pod's
 * own cgroup, `container=""`, nor the pause container, `container="POD"`, which would count twice).
 */
export function podUsageQueries(
  namespace: string,
  pods: readonly string[],
  window: string = DEFAULT_USAGE_WINDOW,
): { cpu: string; memory: string } {
  if (typeof namespace !== 'string' || namespace === '')
    throw playbookFailure('Invalid', 'podUsage needs a namespace');
  if (pods.length === 0 || pods.some((p) => typeof p !== 'string' || p === ''))
    throw playbookFailure('Invalid', 'podUsage needs pod names');
  if (typeof window !== 'string' || !/^(\d+(ms|[smhdwy]))+$/.test(window))
    throw playbookFailure(
      'Invalid',
      `podUsage window must be a Prometheus duration such as 5m, got "${window}"`,
    );
  const podRegex = pods.map(escapeRegex).join('|');
  const selector = `namespace=${promString(namespace)},pod=~${promString(podRegex)},container!="",container!="POD"`;
  return {
    cpu: `sum by (pod) (rate(container_cpu_usage_seconds_total{${selector}}[${window}])) * 1000`,
    memory: `sum by (pod) (container_memory_working_set_bytes{${selector}}) / 1048576`,
  };
}

/** RE2 metacharacters escaped: a pod name matches only itself (`a.b` must not match `axb`). */
function escapeRegex(text: string): string {
  return text.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** A PromQL double-quoted string literal. */
function promString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

// ---------------------------------------------------------------------------------------------------------
// URLs and their credentials
// ---------------------------------------------------------------------------------------------------------

type PrometheusTarget =
  | {
      kind: 'configured';
      /** Without credentials and trailing slash: `http://host:9090/prefix`. */
      base: string;
      /** For messages: the base without credentials. */
      shown: string;
      auth?: { username: string; password: string };
      secrets: string[];
    }
  | { kind: 'missing' | 'invalid'; problem: string };

interface HttpTarget {
  /** The URL without its userinfo. */
  url: string;
  auth?: { username: string; password: string };
  /** Userinfo parts, to redact from any message. */
  secrets: string[];
}

function prometheusTarget(prometheusUrl: string | undefined): PrometheusTarget {
  const raw = prometheusUrl?.trim() ?? '';
  if (raw === '') return { kind: 'missing', problem: 'PROMETHEUS_URL is not set' };
  const target = parseHttpUrl(raw);
  if (!target || target.url.includes('?') || target.url.includes('#'))
    return {
      kind: 'invalid',
      problem: `PROMETHEUS_URL is not an http(s) base URL ("${redactUrl(raw)}")`,
    };
  const base = target.url.replace(/\/+$/, '');
  return {
    kind: 'configured',
    base,
    shown: base,
    ...(target.auth ? { auth: target.auth } : {}),
    secrets: target.secrets,
  };
}

function describeTarget(target: PrometheusTarget): string {
  if (target.kind === 'configured') return `prometheus ${target.shown}`;
  if (target.kind === 'missing') return 'prometheus: not configured (PROMETHEUS_URL)';
  return `prometheus: not configured (${target.problem})`;
}

function parseHttpUrl(raw: string): HttpTarget | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return undefined;
  const username = safeDecode(url.username);
  const password = safeDecode(url.password);
  const secrets = [url.username, url.password, username, password].filter((s) => s.length >= 3);
  url.username = '';
  url.password = '';
  return {
    url: url.href,
    ...(username || password ? { auth: { username, password } } : {}),
    secrets,
  };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `url` as given, without `user:password@`. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/*)[^/?#\s]*@/i, '$1');
}

/** Any `scheme://user:pass@` and each known secret cut out of a message. */
function redact(text: string, secrets: readonly string[]): string {
  let out = text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s]*@/gi, '$1');
  for (const secret of secrets) out = out.split(secret).join('***');
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------------------

/** What went wrong when no answer came: a deadline, a refused connection, an unknown host. */
function networkErrorText(err: unknown, timeoutMs: number, deadlinePassed: boolean): string {
  const code = isRecord(err) && typeof err['code'] === 'string' ? err['code'] : undefined;
  if (deadlinePassed || code === 'ECONNABORTED' || code === 'ETIMEDOUT')
    return `no answer within ${timeoutMs} ms`;
  let message = err instanceof Error ? err.message : String(err);
  // Node's happy-eyeballs connect fails with an AggregateError whose own message is empty.
  const inner = isRecord(err) ? err['errors'] : undefined;
  if (!message && Array.isArray(inner))
    message = inner.map((e) => (e instanceof Error ? e.message : String(e))).join('; ');
  const detail = code && !message.includes(code) ? `${code} ${message}`.trim() : message || 'request failed';
  if (code === 'ECONNREFUSED') return `connection refused (${detail})`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `host not found (${detail})`;
  return detail;
}

/**
 * A plain (retryable) Error whose cause keeps only the name, code and message of `err`, redacted: an
 * AxiosError carries its request config, basic-auth password included, which a structured logger would
 * print with the cause.
 */
function withSafeCause(message: string, err: unknown, secrets: readonly string[]): Error {
  let cause: Error | undefined;
  if (err instanceof Error) {
    cause = new Error(redact(err.message, secrets));
    cause.name = err.name;
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') Object.assign(cause, { code });
  }
  return new Error(redact(message, secrets), cause ? { cause } : undefined);
}

/** Reads a streamed body up to `limit` bytes, then lets the rest go. */
async function drain(data: unknown, limit: number): Promise<void> {
  if (!isRecord(data) || !(Symbol.asyncIterator in data)) return;
  const stream = data as unknown as AsyncIterable<Buffer> & { destroy?: () => void };
  let read = 0;
  try {
    for await (const chunk of stream) {
      read += chunk.length;
      if (read >= limit) break;
    }
  } finally {
    stream.destroy?.();
  }
}

/** A Prometheus sample `[timestamp, "value"]` as a finite number. */
function sampleValue(pair: unknown): number | undefined {
  if (!Array.isArray(pair) || typeof pair[1] !== 'string') return undefined;
  const value = Number(pair[1]);
  return Number.isFinite(value) ? value : undefined;
}

function stringRecord(value: unknown): Record<string, string> {
  if (!isRecord(value)) return {};
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) if (typeof v === 'string') out[name] = v;
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function excerpt(text: string, max = 200): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
