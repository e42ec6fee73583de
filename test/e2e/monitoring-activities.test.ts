/**
 * The playbooks' monitoring activities against a real Prometheus (the Debian package, 1 s scrapes) scraping
 * the stand-in exporter, and probes against the service stand-in: the procedures' queries with `[10s]`
 * windows instead of `[5m]`, so a change of rate shows within seconds.
 */
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlaybookHttp } from '../../src/activities/playbooks/http.ts';
import { Monitoring, podUsageQueries } from '../../src/activities/playbooks/monitoring.ts';
import type { PromSample } from '../../src/domain/cluster.ts';
import { NON_RETRYABLE_PLAYBOOK_ERRORS } from '../../src/domain/cluster.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { eventually } from '../support/eventually.ts';
import { startExporter } from '../support/exporter.ts';
import type { Exporter } from '../support/exporter.ts';
import { SERVICE_JOB, startPrometheus } from '../support/prometheus.ts';
import type { Daemon, PrometheusApi } from '../support/prometheus.ts';
import { startServiceStandIn } from '../support/service-stand-in.ts';
import type { HealthVerdict, ServiceStandIn } from '../support/service-stand-in.ts';

const WINDOW = '10s';
const ERROR_RATE = `sum(rate(http_requests_total{job="${SERVICE_JOB}",status=~"5.."}[${WINDOW}])) / sum(rate(http_requests_total{job="${SERVICE_JOB}"}[${WINDOW}]))`;
const ERROR_PATTERNS = `sum by (status) (rate(http_requests_total{job="${SERVICE_JOB}",status=~"5.."}[${WINDOW}]))`;
const P95_LATENCY = `histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket{job="${SERVICE_JOB}"}[${WINDOW}])) by (le))`;

/** Alerts for firingAlerts: two always firing (different labels), one that stays pending. */
const RULES = `
groups:
  - name: monitoring-activities
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels: { severity: warning, service: pno-physics-bench, team: physics }
        annotations: { summary: 'always firing, for the test' }
      - alert: OtherServiceFiring
        expr: vector(1)
        labels: { severity: critical, service: other-service }
      - alert: StaysPending
        expr: vector(1)
        for: 1h
        labels: { severity: critical, service: pno-physics-bench }
`;

let exporter: Exporter;
let prometheus: Daemon & PrometheusApi;
let service: ServiceStandIn;
let monitoring: Monitoring;
let health: () => Promise<HealthVerdict> = () => Promise.resolve(true);
const http = createPlaybookHttp({ timeoutMs: 5_000 });

beforeAll(async () => {
  exporter = await startExporter({ rates: { '200': 95, '500': 4, '503': 1 }, latencyMs: 800 });
  exporter.setPodUsage('pno-physics-bench-6b7f9-aaaaa', { cpuMillicores: 250, memoryMi: 512 });
  exporter.setPodUsage('pno-physics-bench-6b7f9-bbbbb', { cpuMillicores: 1600, memoryMi: 3300 });
  // Same name in another namespace, and a name a `.` in an unescaped regex would also match.
  exporter.setPodUsage('pno-physics-bench-6b7f9-aaaaa', {
    cpuMillicores: 40,
    memoryMi: 7,
    namespace: 'staging',
  });
  exporter.setPodUsage('web.1', { cpuMillicores: 100, memoryMi: 64 });
  exporter.setPodUsage('webx1', { cpuMillicores: 900, memoryMi: 900 });
  exporter.setPodUsage('pno-physics-bench-6b7f9-ccccc', {
    cpuMillicores: 5,
    memoryMi: 5,
    namespace: 'staging',
  });
  // Alerts go to a port where nothing listens: Prometheus only logs that it cannot deliver them.
  prometheus = await startPrometheus({
    targets: [exporter.target],
    alertmanager: `127.0.0.1:${await freePort()}`,
    rules: RULES,
    interval: '1s',
  });
  monitoring = new Monitoring({ prometheusUrl: prometheus.url, http });
  service = await startServiceStandIn({ health: () => health() });
});

afterAll(async () => {
  await prometheus?.stop();
  await exporter?.stop();
  await service?.stop();
});

/** Polls `query` until `accept` takes its samples (bounded by `eventually`'s timeout). */
async function samplesWhen(
  what: string,
  query: string,
  accept: (samples: PromSample[]) => boolean,
  timeoutMs = 30_000,
): Promise<PromSample[]> {
  let last: PromSample[] = [];
  try {
    return await eventually(
      what,
      async () => {
        last = await monitoring.queryPrometheus({ query });
        return accept(last) ? last : undefined;
      },
      { timeoutMs, intervalMs: 500 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last samples ${JSON.stringify(last)}`, { cause: err });
  }
}

const near = (value: number | undefined, target: number, tolerance: number) =>
  value !== undefined && Math.abs(value - target) <= tolerance;

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

describe('queryPrometheus against a real Prometheus', () => {
  it("the procedures' error rate and error patterns give the rates the service runs at", async () => {
    const [ratio] = await samplesWhen('the error rate ≈ 5%', ERROR_RATE, ([s]) =>
      near(s?.value, 0.05, 0.005),
    );
    expect(ratio?.labels).toEqual({});

    const patterns = await samplesWhen(
      '500 ≈ 4/s and 503 ≈ 1/s',
      ERROR_PATTERNS,
      (samples) =>
        samples.length === 2 &&
        near(samples.find((s) => s.labels['status'] === '500')?.value, 4, 0.4) &&
        near(samples.find((s) => s.labels['status'] === '503')?.value, 1, 0.15),
    );
    expect(
      patterns.map((s) => s.labels).sort((a, b) => (a['status'] ?? '').localeCompare(b['status'] ?? '')),
    ).toEqual([{ status: '500' }, { status: '503' }]);
  });

  it('a change of rate shows within seconds with a [10s] window', async () => {
    exporter.setRates({ '200': 50, '500': 50 });
    const started = Date.now();
    await samplesWhen('the error rate ≈ 50%', ERROR_RATE, ([s]) => near(s?.value, 0.5, 0.03));
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('p95 latency follows the latency the service answers with', async () => {
    await samplesWhen('p95 ≈ 0.8 s', P95_LATENCY, ([s]) => near(s?.value, 0.8, 0.08));
    exporter.setLatencyMs(200);
    await samplesWhen('p95 ≈ 0.2 s', P95_LATENCY, ([s]) => near(s?.value, 0.2, 0.02));
  });

  it('no traffic is no data: the 0/0 ratio is NaN and left out', async () => {
    exporter.setRates({});
    try {
      await samplesWhen('no error-rate sample', ERROR_RATE, (samples) => samples.length === 0);
    } finally {
      exporter.setRates({ '200': 95, '500': 4, '503': 1 });
    }
  });

  it("fails Invalid with Prometheus' parse error for a malformed query", async () => {
    const err = await failureOf(monitoring.queryPrometheus({ query: 'sum(rate(http_requests_total[10s]' }));
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'Invalid', nonRetryable: true });
    expect((err as Error).message).toMatch(/^Prometheus rejected the query .*bad_data: .*parse error/);
  });

  it('fails NotConfigured without PROMETHEUS_URL', async () => {
    const none = new Monitoring({ http });
    expect(none.describe()).toBe('prometheus: not configured (PROMETHEUS_URL)');
    const err = await failureOf(none.queryPrometheus({ query: 'up' }));
    expect(err).toMatchObject({ type: 'NotConfigured', nonRetryable: true });
    expect((err as Error).message).toMatch(/^PROMETHEUS_URL is not set: /);
  });
});

describe('firingAlerts against a real Prometheus', () => {
  it('returns the firing alerts with the asked labels, not the pending ones', async () => {
    const alerts = await eventually('AlwaysFiring firing', async () => {
      const found = await monitoring.firingAlerts({ labels: { service: 'pno-physics-bench' } });
      return found.length > 0 ? found : undefined;
    });
    expect(alerts).toEqual([
      {
        alertname: 'AlwaysFiring',
        severity: 'warning',
        state: 'firing',
        labels: {
          alertname: 'AlwaysFiring',
          severity: 'warning',
          service: 'pno-physics-bench',
          team: 'physics',
        },
        activeAt: expect.any(String),
        summary: 'always firing, for the test',
      },
    ]);
    expect((await prometheus.alerts()).some((a) => a.labels['alertname'] === 'StaysPending')).toBe(true);
    const all = await monitoring.firingAlerts({});
    expect(all.map((a) => a.alertname).sort()).toEqual(['AlwaysFiring', 'OtherServiceFiring']);
    expect(
      await monitoring.firingAlerts({ labels: { service: 'pno-physics-bench', team: 'other' } }),
    ).toEqual([]);
  });
});

describe('podUsage against a real Prometheus', () => {
  const pods = [
    'pno-physics-bench-6b7f9-aaaaa',
    'pno-physics-bench-6b7f9-bbbbb',
    'pno-physics-bench-6b7f9-ccccc',
  ];

  it('gives each pod its CPU millicores and memory Mi, from its containers only', async () => {
    const usage = await eventually('usage of both pods', async () => {
      const found = await monitoring.podUsage({ namespace: 'production', pods, window: WINDOW });
      return found.length === 2 &&
        near(found[0]?.cpuMillicores, 250, 15) &&
        near(found[1]?.cpuMillicores, 1600, 80)
        ? found
        : undefined;
    });
    // ccccc runs in staging only; memory is exact (a gauge), CPU a rate.
    expect(usage.map((u) => [u.pod, u.memoryMi])).toEqual([
      ['pno-physics-bench-6b7f9-aaaaa', 512],
      ['pno-physics-bench-6b7f9-bbbbb', 3300],
    ]);
  });

  it('matches pod names literally: web.1 is not webx1', async () => {
    const { cpu, memory } = podUsageQueries('production', ['web.1'], WINDOW);
    const memorySamples = await samplesWhen('memory of web.1', memory, (s) => s.length > 0);
    expect(memorySamples).toEqual([{ labels: { pod: 'web.1' }, value: 64 }]);
    await samplesWhen('CPU of web.1 only', cpu, (s) => s.length === 1 && s[0]?.labels['pod'] === 'web.1');
    await expect(
      monitoring.podUsage({ namespace: 'production', pods: ['web.1'], window: WINDOW }),
    ).resolves.toEqual([{ pod: 'web.1', cpuMillicores: expect.any(Number), memoryMi: 64 }]);
  });

  it('leaves a pod out once it is gone', async () => {
    exporter.removePod('pno-physics-bench-6b7f9-bbbbb');
    await eventually('bbbbb gone', async () => {
      const found = await monitoring.podUsage({ namespace: 'production', pods, window: WINDOW });
      return found.map((u) => u.pod).join() === 'pno-physics-bench-6b7f9-aaaaa' ? true : undefined;
    });
  });
});

describe('probe against the service stand-in', () => {
  it('ok while healthy, a 503 finding when not, with the elapsed time', async () => {
    health = () => Promise.resolve(true);
    expect(await monitoring.probe({ url: service.healthUrl })).toEqual({
      url: service.healthUrl,
      ok: true,
      status: 200,
      ms: expect.any(Number),
    });
    health = () => Promise.resolve({ ok: false, delayMs: 150 });
    const failing = await monitoring.probe({ url: service.healthUrl });
    expect(failing).toMatchObject({ ok: false, status: 503 });
    expect(failing.ms).toBeGreaterThanOrEqual(140);
    expect(failing.error).toBeUndefined();
  });

  it('a timeout and a refused connection are findings, not errors', async () => {
    health = () => Promise.resolve({ ok: true, delayMs: 3_000 });
    const slow = await monitoring.probe({ url: service.healthUrl, timeoutMs: 400 });
    expect(slow).toMatchObject({ ok: false, error: 'no answer within 400 ms' });
    expect(slow.status).toBeUndefined();
    expect(slow.ms).toBeGreaterThanOrEqual(350);
    expect(slow.ms).toBeLessThan(2_000);

    const refused = await monitoring.probe({ url: `http://127.0.0.1:${await freePort()}/health` });
    expect(refused).toMatchObject({ ok: false, error: expect.stringMatching(/^connection refused/) });
    health = () => Promise.resolve(true);
  });
});

describe('a Prometheus that is down', () => {
  it('fails with a plain, retryable error', async () => {
    await prometheus.stop();
    const err = await failureOf(monitoring.queryPrometheus({ query: 'up' }));
    expect(err).toBeInstanceOf(Error);
    const nonRetryable =
      err instanceof ApplicationFailure &&
      (err.nonRetryable || (NON_RETRYABLE_PLAYBOOK_ERRORS as readonly string[]).includes(err.type ?? ''));
    expect(nonRetryable).toBe(false);
    expect((err as Error).message).toMatch(
      /^Prometheus at http:\/\/127\.0\.0\.1:\d+ unreachable .*connection refused/,
    );
  });
});
