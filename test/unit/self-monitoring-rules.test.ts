/**
 * deploy/prometheus/self-monitoring.yml under `promtool test rules`: for each rule, input series that must make
 * it fire (at the time it must, with its labels and rendered annotations) and series that must not.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { alertSeverity } from '../../src/domain/alert-mapping.ts';
import { loadDefaultPolicy } from '../support/policy.ts';
import { alertingRules, promtoolPath } from '../support/prometheus.ts';

const run = promisify(execFile);
const RULES_FILE = fileURLToPath(new URL('../../deploy/prometheus/self-monitoring.yml', import.meta.url));

const { rules, rule } = alertingRules(RULES_FILE);

let promtool: string;
let work: string;
beforeAll(async () => {
  promtool = await promtoolPath();
  work = await mkdtemp(path.join(tmpdir(), 'pno-self-monitoring-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The rule's annotations as Prometheus renders them for these labels and this `$value` (as printed). */
function rendered(name: string, labels: Record<string, string>, value = ''): Record<string, string> {
  return Object.fromEntries(
    Object.entries(rule(name).annotations).map(([key, text]) => [
      key,
      text
        .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_m, label: string) => labels[label] ?? '')
        .replace(/\{\{ \$value \| humanize(Duration)? \}\}/g, value),
    ]),
  );
}

/** An expected alert: the rule's own labels, the series' labels, its annotations rendered. */
function expected(name: string, seriesLabels: Record<string, string> = {}, value = '') {
  const labels = { ...rule(name).labels, ...seriesLabels };
  return { exp_labels: labels, exp_annotations: rendered(name, labels, value) };
}

interface Case {
  name: string;
  interval?: string;
  input_series: { series: string; values: string }[];
  alert_rule_test: { eval_time: string; alertname: string; exp_alerts: unknown[] }[];
}

async function promtoolTest(tests: Case[]): Promise<string> {
  const file = path.join(work, `${tests[0]?.name ?? 'case'}.test.yml`);
  await writeFile(
    file,
    stringify({
      rule_files: [RULES_FILE],
      evaluation_interval: '1m',
      tests: tests.map(({ name: _name, interval, ...rest }) => ({ interval: interval ?? '1m', ...rest })),
    }),
  );
  const { stdout } = await run(promtool, ['test', 'rules', file], { encoding: 'utf8' }).catch(
    (err: { stdout: string; stderr: string }) => {
      throw new Error(`promtool test rules failed:\n${err.stdout}\n${err.stderr}`);
    },
  );
  return stdout;
}

const API = (pod: string) => `instance="${pod}:3000",job="incident-api"`;

describe('deploy/prometheus/self-monitoring.yml', () => {
  it('passes promtool check rules; every rule is labelled and annotated for the policy and the on-call', async () => {
    const { stdout } = await run(promtool, ['check', 'rules', RULES_FILE], { encoding: 'utf8' });
    expect(stdout).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(rules.map((r) => r.alert)).toEqual([
      'Watchdog',
      'IncidentWorkerNotPolling',
      'IncidentDeadLettersGrowing',
      'IncidentWatchdogNotReceived',
      'IncidentWorkflowTaskFailures',
      'IncidentActivitiesWaiting',
    ]);
    const policy = loadDefaultPolicy();
    // The Watchdog is the alert the policy's watchdog listens for, and never becomes an incident itself.
    expect(rule('Watchdog')).toMatchObject({ expr: 'vector(1)', labels: { severity: 'none' } });
    expect(rule('Watchdog').for).toBeUndefined();
    expect(policy.watchdog.alertname).toBe('Watchdog');
    const severities: Record<string, string> = {};
    for (const r of rules.filter((x) => x.alert !== 'Watchdog')) {
      // Severity words the policy's table knows, so an alert routed to the webhook has the intended severity.
      expect(Object.hasOwn(policy.alerts.severityLabel, r.labels['severity'] ?? ''), r.alert).toBe(true);
      expect(r.labels['service'], r.alert).toBe('incident-response');
      expect(Object.keys(r.annotations).sort(), r.alert).toEqual(['description', 'runbook', 'summary']);
      severities[r.alert] = alertSeverity(policy, { alertname: r.alert, ...r.labels });
    }
    expect(severities).toEqual({
      IncidentWorkerNotPolling: 'P1',
      IncidentDeadLettersGrowing: 'P2',
      IncidentWatchdogNotReceived: 'P1',
      IncidentWorkflowTaskFailures: 'P2',
      IncidentActivitiesWaiting: 'P2',
    });
  });

  it('Watchdog fires always, from the first evaluation', async () => {
    const out = await promtoolTest([
      {
        name: 'watchdog',
        input_series: [],
        alert_rule_test: [
          { eval_time: '0m', alertname: 'Watchdog', exp_alerts: [expected('Watchdog')] },
          { eval_time: '3h', alertname: 'Watchdog', exp_alerts: [expected('Watchdog')] },
        ],
      },
    ]);
    expect(out).toContain('SUCCESS');
  });

  it('IncidentWorkerNotPolling: every API pod says 0 for 3 minutes, or the gauge is absent; one polling pod is enough', async () => {
    const out = await promtoolTest([
      {
        // Both pods see no worker from minute 2: pending at 2m, firing at 5m.
        name: 'worker-gone',
        input_series: [
          { series: `incident_workers_polling{${API('a')}}`, values: '1 1 0x20' },
          { series: `incident_workers_polling{${API('b')}}`, values: '2 2 0x20' },
        ],
        alert_rule_test: [
          { eval_time: '4m', alertname: 'IncidentWorkerNotPolling', exp_alerts: [] },
          {
            eval_time: '5m',
            alertname: 'IncidentWorkerNotPolling',
            exp_alerts: [expected('IncidentWorkerNotPolling', { cause: 'no_worker' })],
          },
        ],
      },
      {
        // One pod cannot ask Temporal (0), the other sees a worker: nothing to page.
        name: 'one-pod-blind',
        input_series: [
          { series: `incident_workers_polling{${API('a')}}`, values: '0x30' },
          { series: `incident_workers_polling{${API('b')}}`, values: '1x30' },
        ],
        alert_rule_test: [{ eval_time: '30m', alertname: 'IncidentWorkerNotPolling', exp_alerts: [] }],
      },
      {
        // No API metrics at all (the API down, or not scraped): nobody can tell, which pages too.
        name: 'no-api-metrics',
        input_series: [{ series: 'up{job="incident-api",instance="a:3000"}', values: '0x10' }],
        alert_rule_test: [
          { eval_time: '2m', alertname: 'IncidentWorkerNotPolling', exp_alerts: [] },
          {
            eval_time: '4m',
            alertname: 'IncidentWorkerNotPolling',
            exp_alerts: [expected('IncidentWorkerNotPolling', { cause: 'no_api_metrics' })],
          },
        ],
      },
      {
        // A brief blip (2 minutes at 0) is not an outage.
        name: 'blip',
        input_series: [{ series: `incident_workers_polling{${API('a')}}`, values: '1 1 0 0 1x10' }],
        alert_rule_test: [
          { eval_time: '3m', alertname: 'IncidentWorkerNotPolling', exp_alerts: [] },
          { eval_time: '6m', alertname: 'IncidentWorkerNotPolling', exp_alerts: [] },
        ],
      },
    ]);
    expect(out).toContain('SUCCESS');
  });

  it('IncidentDeadLettersGrowing: fires while the dead-letter count grows, clears 15 minutes after it stops', async () => {
    const labels = { source: 'alertmanager', stage: 'ingest' };
    const series = `incident_webhook_deadlettered_total{${API('a')},source="alertmanager",stage="ingest"}`;
    const out = await promtoolTest([
      {
        name: 'deadletters',
        input_series: [
          // One dead letter at minute 6 is enough.
          { series, values: '0 0 0 0 0 0 1x30' },
          // Another source that never dead-letters.
          {
            series: `incident_webhook_deadlettered_total{${API('a')},source="grafana",stage="mapping"}`,
            values: '0x40',
          },
        ],
        alert_rule_test: [
          { eval_time: '5m', alertname: 'IncidentDeadLettersGrowing', exp_alerts: [] },
          {
            eval_time: '11m',
            alertname: 'IncidentDeadLettersGrowing',
            exp_alerts: [expected('IncidentDeadLettersGrowing', labels, '1')],
          },
          {
            eval_time: '20m',
            alertname: 'IncidentDeadLettersGrowing',
            exp_alerts: [expected('IncidentDeadLettersGrowing', labels, '1')],
          },
          { eval_time: '22m', alertname: 'IncidentDeadLettersGrowing', exp_alerts: [] },
        ],
      },
    ]);
    expect(out).toContain('SUCCESS');
  });

  it('IncidentWatchdogNotReceived: Alertmanager up and no heartbeat for 10 minutes; not while heartbeats arrive or Alertmanager is down', async () => {
    const heartbeats = `incident_webhook_groups_total{${API('a')},action="heartbeat"}`;
    const alertmanagerUp = (values: string) => ({
      series: 'up{job="alertmanager",instance="am:9093"}',
      values,
    });
    const out = await promtoolTest([
      {
        // One heartbeat a minute for 10 minutes, then none: the 10-minute increase is 0 from 20m, firing at 25m.
        name: 'stops',
        input_series: [{ series: heartbeats, values: '0+1x10 10x30' }, alertmanagerUp('1x40')],
        alert_rule_test: [
          { eval_time: '15m', alertname: 'IncidentWatchdogNotReceived', exp_alerts: [] },
          { eval_time: '24m', alertname: 'IncidentWatchdogNotReceived', exp_alerts: [] },
          {
            eval_time: '26m',
            alertname: 'IncidentWatchdogNotReceived',
            exp_alerts: [expected('IncidentWatchdogNotReceived')],
          },
        ],
      },
      {
        name: 'arrives',
        input_series: [{ series: heartbeats, values: '0+1x60' }, alertmanagerUp('1x60')],
        alert_rule_test: [{ eval_time: '60m', alertname: 'IncidentWatchdogNotReceived', exp_alerts: [] }],
      },
      {
        // Alertmanager itself is down: that is for its own alerts, not this one.
        name: 'alertmanager-down',
        input_series: [{ series: heartbeats, values: '0+1x10 10x30' }, alertmanagerUp('1x10 0x30')],
        alert_rule_test: [{ eval_time: '35m', alertname: 'IncidentWatchdogNotReceived', exp_alerts: [] }],
      },
      {
        // The API restarted and no heartbeat has come since (its counter does not exist yet).
        name: 'never',
        input_series: [
          { series: `incident_workers_polling{${API('a')}}`, values: '1x20' },
          alertmanagerUp('1x20'),
        ],
        alert_rule_test: [
          { eval_time: '4m', alertname: 'IncidentWatchdogNotReceived', exp_alerts: [] },
          {
            eval_time: '6m',
            alertname: 'IncidentWatchdogNotReceived',
            exp_alerts: [expected('IncidentWatchdogNotReceived')],
          },
        ],
      },
    ]);
    expect(out).toContain('SUCCESS');
  });

  it('IncidentWorkflowTaskFailures: a workflow task failing over and over fires; a single failure does not', async () => {
    const failing =
      'temporal_workflow_task_execution_failed_total{namespace="default",task_queue="incident-response",workflow_type="incidentWorkflow",instance="w:9464"}';
    const out = await promtoolTest([
      {
        name: 'failing',
        input_series: [{ series: failing, values: '0+1x30' }],
        alert_rule_test: [
          { eval_time: '8m', alertname: 'IncidentWorkflowTaskFailures', exp_alerts: [] },
          {
            eval_time: '12m',
            alertname: 'IncidentWorkflowTaskFailures',
            exp_alerts: [
              expected(
                'IncidentWorkflowTaskFailures',
                { namespace: 'default', task_queue: 'incident-response' },
                '10',
              ),
            ],
          },
        ],
      },
      {
        name: 'once',
        input_series: [{ series: failing, values: '0 0 1x30' }],
        alert_rule_test: [{ eval_time: '10m', alertname: 'IncidentWorkflowTaskFailures', exp_alerts: [] }],
      },
    ]);
    expect(out).toContain('SUCCESS');
  });

  it('IncidentActivitiesWaiting: a p95 schedule-to-start over 30 s for 10 minutes fires; fast starts do not', async () => {
    const bucket = (le: string, values: string) => ({
      series: `temporal_activity_schedule_to_start_latency_seconds_bucket{namespace="default",task_queue="incident-response",activity_type="deliver",le="${le}"}`,
      values,
    });
    const out = await promtoolTest([
      {
        // Every activity waits between 30 and 60 s: p95 = 30 + 0.95 × 30 = 58.5 s.
        name: 'slow',
        input_series: [
          bucket('1', '0x30'),
          bucket('30', '0x30'),
          bucket('60', '0+10x30'),
          bucket('+Inf', '0+10x30'),
        ],
        alert_rule_test: [
          { eval_time: '10m', alertname: 'IncidentActivitiesWaiting', exp_alerts: [] },
          {
            eval_time: '12m',
            alertname: 'IncidentActivitiesWaiting',
            exp_alerts: [
              expected(
                'IncidentActivitiesWaiting',
                { namespace: 'default', task_queue: 'incident-response' },
                '58.5s',
              ),
            ],
          },
        ],
      },
      {
        name: 'fast',
        input_series: [
          bucket('1', '0+10x30'),
          bucket('30', '0+10x30'),
          bucket('60', '0+10x30'),
          bucket('+Inf', '0+10x30'),
        ],
        alert_rule_test: [{ eval_time: '30m', alertname: 'IncidentActivitiesWaiting', exp_alerts: [] }],
      },
    ]);
    expect(out).toContain('SUCCESS');
  });

  it('deploy/k8s exposes what these rules read: the worker serves its SDK metrics on the scraped port', () => {
    const manifest = fileURLToPath(new URL('../../deploy/k8s/incident-response.yaml', import.meta.url));
    type Deployment = {
      kind: string;
      metadata: { name: string };
      spec: {
        template: {
          metadata: { annotations?: Record<string, string> };
          spec: {
            containers: {
              ports?: { name?: string; containerPort: number }[];
              env: { name: string; value?: string }[];
            }[];
          };
        };
      };
    };
    const docs = parseAllDocuments(readFileSync(manifest, 'utf8')).map((d) => d.toJS() as Deployment);
    const worker = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'incident-worker');
    const template = worker?.spec.template;
    const [container] = template?.spec.containers ?? [];
    const address = container?.env.find((e) => e.name === 'WORKER_METRICS_ADDRESS')?.value;
    expect(address).toBe('0.0.0.0:9464');
    expect(container?.ports).toContainEqual({ name: 'metrics', containerPort: 9464 });
    expect(template?.metadata.annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '9464',
      'prometheus.io/path': '/metrics',
    });
  });
});
