/**
 * Real Prometheus and Alertmanager for e2e tests (the Debian packages' binaries, from `ensurePrometheus()`
 * or `$PROMETHEUS_BIN` / `$ALERTMANAGER_BIN`), each on a free 127.0.0.1 port with its own temporary
 * directory, second-scale intervals, and readiness awaited. Prometheus evaluates the repository's own
 * alerting rules (deploy/prometheus/rules.yml) with their windows and `for:` durations scaled from minutes to
 * seconds. Output is dropped unless `TEST_PROMETHEUS_LOG` is set; a failed start says why with the tail.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { freePort } from '../../scripts/lib/ports.ts';
import { startProcess } from '../../scripts/lib/process.ts';
import { ensurePrometheus } from '../../scripts/lib/tools/index.ts';
import type { PrometheusTools } from '../../scripts/lib/tools/index.ts';

/** The repository's alerting rules. */
export const REPO_RULES_FILE = fileURLToPath(new URL('../../deploy/prometheus/rules.yml', import.meta.url));

/** The service's Prometheus job, as the rules and the policy name it. */
export const SERVICE_JOB = 'pno-physics-bench';

// ---------------------------------------------------------------------------------------------------------
// Rules with second-scale windows
// ---------------------------------------------------------------------------------------------------------

const UNIT_SECONDS: Record<string, number> = {
  ms: 0.001,
  s: 1,
  m: 60,
  h: 3600,
  d: 86_400,
  w: 604_800,
  y: 31_536_000,
};

/** Seconds in a Prometheus duration such as `5m`, `1h30m`, `90s`. */
export function durationSeconds(text: string): number {
  const parts = [...text.matchAll(/(\d+)(ms|[smhdwy])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text)
    throw new Error(`not a Prometheus duration: "${text}"`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * (UNIT_SECONDS[p[2] ?? 's'] ?? 1), 0);
}

export interface RuleScaling {
  /** Range windows (`[5m]`) are divided by this. Default 30: `[5m]` → `[10s]`. */
  windowDivisor?: number;
  /** `for:` durations are divided by this. Default 60: `for: 2m` → `for: 2s`. */
  forDivisor?: number;
  /** No window shorter than this many seconds (a rate needs a few scrapes). Default 4. */
  minWindowSeconds?: number;
}

function scaled(text: string, divisor: number, minSeconds: number): string {
  return `${Math.max(minSeconds, Math.ceil(durationSeconds(text) / divisor))}s`;
}

/**
 * The rules file `yamlText` with every range window in its expressions and every `for:` scaled down (whole
 * seconds), so a test sees the same rules fire within seconds. Annotations are left as they are.
 */
export function secondScaleRules(yamlText: string, scaling: RuleScaling = {}): string {
  const windowDivisor = scaling.windowDivisor ?? 30;
  const forDivisor = scaling.forDivisor ?? 60;
  const minWindow = scaling.minWindowSeconds ?? 4;
  const doc = parse(yamlText) as { groups?: { rules?: Record<string, unknown>[] }[] };
  if (!Array.isArray(doc.groups) || doc.groups.length === 0) throw new Error('rules file has no groups');
  for (const group of doc.groups) {
    for (const rule of group.rules ?? []) {
      if (typeof rule['expr'] === 'string') {
        // A range selector or subquery: `[5m]`, `[5m:30s]`, `[1h] offset 5m` (only the window is scaled).
        rule['expr'] = rule['expr'].replace(
          /\[([0-9a-z]+)(:[0-9a-z]*)?\]/g,
          (_match, window: string, step: string | undefined) => {
            const resolution =
              step === undefined || step === ':'
                ? (step ?? '')
                : `:${scaled(step.slice(1), windowDivisor, 1)}`;
            return `[${scaled(window, windowDivisor, minWindow)}${resolution}]`;
          },
        );
      }
      if (typeof rule['for'] === 'string') rule['for'] = scaled(rule['for'], forDivisor, 1);
    }
  }
  return stringify(doc);
}

// ---------------------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------------------

/** A started Prometheus or Alertmanager. */
export interface Daemon {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>` */
  hostPort: string;
  port: number;
  pid: number;
  /** Temporary directory holding its config and data; removed by `stop()`. */
  dir: string;
  /** The last lines it printed. */
  logTail(): string[];
  /** SIGTERM (SIGKILL after 5 s), then removes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

async function tools(): Promise<PrometheusTools> {
  const { PROMETHEUS_BIN, PROMTOOL_BIN, ALERTMANAGER_BIN } = process.env;
  if (PROMETHEUS_BIN && PROMTOOL_BIN && ALERTMANAGER_BIN)
    return { prometheus: PROMETHEUS_BIN, promtool: PROMTOOL_BIN, alertmanager: ALERTMANAGER_BIN };
  return ensurePrometheus();
}

/** Path of `promtool` (`$PROMTOOL_BIN` when `npm test` set it). */
export async function promtoolPath(): Promise<string> {
  return (await tools()).promtool;
}

async function startDaemon(
  name: string,
  bin: string,
  args: (port: number, dir: string) => string[],
  dir: string,
  timeoutMs: number,
): Promise<Daemon> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const show = process.env['TEST_PROMETHEUS_LOG'] !== undefined;
  const child = startProcess(bin, args(port, dir), {
    cwd: dir,
    stopGraceMs: 5_000,
    onLine: (line) => {
      if (show) process.stderr.write(`[${name}] ${line}\n`);
    },
  });
  const tail = () => child.tail().join('\n');

  let stopped = false;
  const stop = async () => {
    if (!stopped) {
      stopped = true;
      await child.stop();
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.hasExited) throw new Error(`${name} exited during start-up:\n${tail()}`);
      const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline)
        throw new Error(`${name} not ready at ${url} within ${timeoutMs} ms:\n${tail()}`);
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    hostPort: `127.0.0.1:${port}`,
    port,
    pid: child.pid ?? -1,
    dir,
    logTail: () => child.tail(),
    stop,
  };
}

export interface AlertmanagerOptions {
  /** Where the webhook receiver posts, e.g. `http://127.0.0.1:1234/webhooks/alertmanager`. */
  webhookUrl: string;
  /** Sent as `Authorization: Bearer <token>`. */
  bearerToken: string;
  /** Receiver name (part of the incident's workflow id). Default `incident-response`. */
  receiver?: string;
  groupBy?: string[];
  /** Defaults 1s / 2s / 4s. */
  groupWait?: string;
  groupInterval?: string;
  repeatInterval?: string;
  /** Most alerts per webhook payload. Default 100. */
  maxAlerts?: number;
  startTimeoutMs?: number;
}

/** The Alertmanager configuration {@link startAlertmanager} writes. */
export function alertmanagerConfig(opts: AlertmanagerOptions): string {
  const receiver = opts.receiver ?? 'incident-response';
  return stringify({
    route: {
      receiver,
      group_by: opts.groupBy ?? ['alertname'],
      group_wait: opts.groupWait ?? '1s',
      group_interval: opts.groupInterval ?? '2s',
      repeat_interval: opts.repeatInterval ?? '4s',
    },
    receivers: [
      {
        name: receiver,
        webhook_configs: [
          {
            url: opts.webhookUrl,
            send_resolved: true,
            max_alerts: opts.maxAlerts ?? 100,
            http_config: { authorization: { type: 'Bearer', credentials: opts.bearerToken } },
          },
        ],
      },
    ],
  });
}

/** Alertmanager without clustering, posting every group to our webhook. */
export async function startAlertmanager(opts: AlertmanagerOptions): Promise<Daemon> {
  const { alertmanager } = await tools();
  const dir = await mkdtemp(path.join(tmpdir(), 'pno-incident-alertmanager-'));
  try {
    const configFile = path.join(dir, 'alertmanager.yml');
    await writeFile(configFile, alertmanagerConfig(opts), { mode: 0o600 });
    return await startDaemon(
      'alertmanager',
      alertmanager,
      (port) => [
        `--config.file=${configFile}`,
        `--storage.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        `--web.external-url=http://127.0.0.1:${port}`,
        '--cluster.listen-address=',
        '--log.level=warn',
      ],
      dir,
      opts.startTimeoutMs ?? 30_000,
    );
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export interface PrometheusOptions {
  /** Scrape targets (`127.0.0.1:<port>`) of job {@link SERVICE_JOB}. */
  targets: string[];
  /** Alertmanager to send alerts to (`127.0.0.1:<port>`). */
  alertmanager: string;
  /** Rules file contents; default the repository's rules scaled by {@link secondScaleRules}. */
  rules?: string;
  /** Scrape and evaluation interval. Default `1s`. */
  interval?: string;
  startTimeoutMs?: number;
}

/** Prometheus scraping the service every second and evaluating the rules every second. */
export async function startPrometheus(opts: PrometheusOptions): Promise<Daemon & PrometheusApi> {
  const { prometheus } = await tools();
  const dir = await mkdtemp(path.join(tmpdir(), 'pno-incident-prometheus-'));
  try {
    const rulesFile = path.join(dir, 'rules.yml');
    const configFile = path.join(dir, 'prometheus.yml');
    const interval = opts.interval ?? '1s';
    await writeFile(rulesFile, opts.rules ?? secondScaleRules(readFileSync(REPO_RULES_FILE, 'utf8')));
    await writeFile(
      configFile,
      stringify({
        global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
        rule_files: [rulesFile],
        alerting: { alertmanagers: [{ static_configs: [{ targets: [opts.alertmanager] }] }] },
        scrape_configs: [{ job_name: SERVICE_JOB, static_configs: [{ targets: opts.targets }] }],
      }),
    );
    const daemon = await startDaemon(
      'prometheus',
      prometheus,
      (port) => [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        `--web.external-url=http://127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      dir,
      opts.startTimeoutMs ?? 30_000,
    );
    return { ...daemon, ...prometheusApi(daemon.url) };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading them
// ---------------------------------------------------------------------------------------------------------

export interface PrometheusAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
  value: string;
}

export interface PrometheusApi {
  /** Active alerts (`/api/v1/alerts`). */
  alerts(): Promise<PrometheusAlert[]>;
  /** An instant query's vector result. */
  query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
}

function prometheusApi(url: string): PrometheusApi {
  const get = async <T>(pathAndQuery: string): Promise<T> => {
    const res = await fetch(`${url}${pathAndQuery}`, { signal: AbortSignal.timeout(5_000) });
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${pathAndQuery}: ${body.error ?? res.status}`);
    return body.data;
  };
  return {
    alerts: async () => (await get<{ alerts: PrometheusAlert[] }>('/api/v1/alerts')).alerts,
    query: async (expr) =>
      (
        await get<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
          `/api/v1/query?query=${encodeURIComponent(expr)}`,
        )
      ).result,
  };
}

/**
 * The sum of the samples of metric `name` whose labels include `labels`, read from the Prometheus text
 * exposition at `url` (an Alertmanager's or our API's `/metrics`). 0 when there is none.
 */
export async function readMetric(
  url: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const l of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      found[l[1] ?? ''] = l[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) sum += Number(match[3]);
  }
  return sum;
}

/** One alerting rule as a rules file writes it. */
export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** Every alerting rule of a rules file, and a lookup by name that throws on a missing one. */
export function alertingRules(file: string): { rules: AlertingRule[]; rule: (name: string) => AlertingRule } {
  const rules = (parse(readFileSync(file, 'utf8')) as { groups: { rules: AlertingRule[] }[] }).groups.flatMap(
    (g) => g.rules,
  );
  const rule = (name: string): AlertingRule => {
    const found = rules.find((r) => r.alert === name);
    if (!found) throw new Error(`no rule ${name}`);
    return found;
  };
  return { rules, rule };
}
