/**
 * The real alert path: a service's metrics → Prometheus (the repository's rules, second-scale windows) →
 * Alertmanager (webhook receiver with a bearer token, send_resolved) → our API → one incident workflow per
 * Alertmanager group on a real Temporal dev server, with the worker running it.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncidentState } from '../../src/domain/incident.ts';
import type { TemporalIncidents } from '../../src/starter/client/incidents.ts';
import { alertGroupWorkflowId } from '../../src/contract/workflow-ids.ts';
import type { IncidentSummary } from '../../src/starter/client/incidents.ts';
import { eventually } from '../support/eventually.ts';
import { readMetric } from '../support/prometheus.ts';
import type { Daemon, PrometheusApi } from '../support/prometheus.ts';
import type { SlackStandIn } from '../support/slack-server.ts';
import type { Stack } from '../support/stack.ts';
import type { TestService } from '../support/test-service.ts';
import { RECEIVER, startMonitoredStack } from '../support/monitored.ts';
import type { MonitoredStack } from '../support/monitored.ts';

/** Alertmanager's group key for a route grouping by alertname. */
const groupKeyOf = (alertname: string) => `{}:{alertname="${alertname}"}`;

let monitored: MonitoredStack;
let stack: Stack;
let slack: SlackStandIn;
let api: { app: FastifyInstance; address: string };
let service: TestService;
let alertmanager: Daemon;
let prometheus: Daemon & PrometheusApi;
let incidents: TemporalIncidents;

beforeAll(async () => {
  monitored = await startMonitoredStack('e2e-prom');
  ({ stack, service, alertmanager, prometheus } = monitored);
  ({ slack, api, incidents } = stack);
});

afterAll(async () => {
  await monitored?.stop();
});

const apiMetric = (name: string, labels: Record<string, string> = {}) =>
  readMetric(`${api.address}/metrics`, name, labels);
const amMetric = (name: string, labels: Record<string, string> = {}) =>
  readMetric(`${alertmanager.url}/metrics`, name, { integration: 'webhook', ...labels });

/** The incidents of one Alertmanager group, once there is at least one. */
async function incidentsOfGroup(groupKey: string, timeoutMs = 30_000): Promise<IncidentSummary[]> {
  const workflowId = alertGroupWorkflowId(RECEIVER, groupKey);
  return eventually(
    `an incident for group ${groupKey}`,
    async () => {
      const found = (await incidents.listIncidents()).filter((i) => i.workflowId === workflowId);
      return found.length > 0 ? found : undefined;
    },
    { timeoutMs },
  );
}

async function firingInPrometheus(alertname: string): Promise<void> {
  await eventually(
    `${alertname} firing in Prometheus`,
    async () =>
      (await prometheus.alerts()).some((a) => a.labels['alertname'] === alertname && a.state === 'firing')
        ? true
        : undefined,
    { timeoutMs: 30_000 },
  );
}

function expectEachAlertOnce(state: IncidentState): void {
  const fingerprints = state.alerts.map((a) => a.fingerprint);
  expect(new Set(fingerprints).size).toBe(fingerprints.length);
  // One `alert` timeline entry per alert: a redelivery adds none.
  expect(state.timeline.filter((t) => t.kind === 'alert')).toHaveLength(state.alerts.length);
}

describe('Prometheus and Alertmanager drive incidents through the webhook', () => {
  it('HighErrorRate fires at 50% errors: one P1 incident for the group, redeliveries folded in, mitigated when the errors stop', async () => {
    const groupKey = groupKeyOf('HighErrorRate');
    const startedBefore = await apiMetric('incident_webhook_groups_total', { action: 'started' });
    service.setErrorRatio(0.5);
    await firingInPrometheus('HighErrorRate');

    // Alertmanager posts with the bearer token (our API answers 401 to anything else).
    const [incident] = await incidentsOfGroup(groupKey);
    expect(incident).toMatchObject({ severity: 'P1', status: 'triggered', service: 'pno-physics-bench' });
    const id = incident?.id ?? '';

    // Alertmanager re-sends the group every repeat_interval: wait for two redeliveries.
    const signalledBefore = await apiMetric('incident_webhook_groups_total', { action: 'signalled' });
    await eventually(
      'two redeliveries of the group',
      async () =>
        (await apiMetric('incident_webhook_groups_total', { action: 'signalled' })) >= signalledBefore + 2
          ? true
          : undefined,
      { timeoutMs: 20_000 },
    );
    expect(await apiMetric('incident_webhook_groups_total', { action: 'started' })).toBe(startedBefore + 1);
    expect(await apiMetric('incident_webhook_rejected_total', { reason: 'unauthorized' })).toBe(0);
    expect(await amMetric('alertmanager_notifications_failed_total')).toBe(0);
    expect(await amMetric('alertmanager_notifications_total')).toBeGreaterThanOrEqual(3);

    // Still exactly one incident, and each alert recorded once.
    const all = await incidents.listIncidents();
    expect(all.map((i) => i.id)).toEqual([id]);
    const state = await incidents.getIncident(id);
    expect(state).toMatchObject({
      workflowId: alertGroupWorkflowId(RECEIVER, groupKey),
      severity: 'P1',
      status: 'triggered',
      mappingRule: 'high-error-rate',
      playbook: { name: 'highErrorRate' },
      source: { kind: 'alertmanager', receiver: RECEIVER, groupKey },
      truncatedAlerts: 0,
    });
    expect(state.alerts).toHaveLength(1);
    expect(state.alerts[0]).toMatchObject({
      status: 'firing',
      severity: 'P1',
      labels: { alertname: 'HighErrorRate', severity: 'critical', service: 'pno-physics-bench' },
    });
    expectEachAlertOnce(state);
    // The page reached Slack.
    await eventually('a Slack post naming the incident', () =>
      slack.posts.some((p) => p.text.includes(id)) ? true : undefined,
    );

    // The service recovers: Prometheus resolves the alert, Alertmanager sends it resolved.
    service.setErrorRatio(0);
    const mitigated = await eventually(
      `${id} mitigated`,
      async () => {
        const s = await incidents.getIncident(id);
        return s.status === 'mitigated' ? s : undefined;
      },
      { timeoutMs: 45_000, intervalMs: 500 },
    );
    expect(mitigated.alerts).toHaveLength(1);
    expect(mitigated.alerts[0]?.status).toBe('resolved');
    expect(mitigated.alerts[0]?.endsAt).toBeDefined();
    const kinds = mitigated.timeline.map((t) => t.kind);
    expect(kinds).toContain('alert_resolved');
    expect(kinds).toContain('mitigated');
    expect(kinds.indexOf('alert_resolved')).toBeLessThan(kinds.lastIndexOf('mitigated'));
    expectEachAlertOnce(mitigated);
    // P1 waits for a person to resolve it.
    expect(mitigated.severity).toBe('P1');
    expect(mitigated.resolvedAt).toBeUndefined();
    expect((await incidents.listIncidents()).map((i) => i.id)).toEqual([id]);
  }, 90_000);

  it('the target going down fires ServiceDown: a P0 incident with the service outage playbook', async () => {
    const groupKey = groupKeyOf('ServiceDown');
    await service.down();
    await firingInPrometheus('ServiceDown');
    const [incident] = await incidentsOfGroup(groupKey);
    const state = await incidents.getIncident(incident?.id ?? '');
    expect(state).toMatchObject({
      workflowId: alertGroupWorkflowId(RECEIVER, groupKey),
      severity: 'P0',
      impact: 'critical',
      mappingRule: 'service-down',
      playbook: { name: 'serviceOutage' },
      status: 'triggered',
    });
    expect(state.alerts).toHaveLength(1);
    expect(state.alerts[0]?.labels).toMatchObject({
      alertname: 'ServiceDown',
      severity: 'page',
      job: 'pno-physics-bench',
      instance: service.target,
    });
    expectEachAlertOnce(state);

    // Back up: the alert resolves and the P0 incident is mitigated, waiting for a person.
    await service.up();
    const mitigated = await eventually(
      `${state.id} mitigated`,
      async () => {
        const s = await incidents.getIncident(state.id);
        return s.status === 'mitigated' ? s : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(mitigated.severity).toBe('P0');
    expectEachAlertOnce(mitigated);
    // Two groups, two incidents: nothing else was opened.
    expect((await incidents.listIncidents()).map((i) => i.workflowId).sort()).toEqual(
      [alertGroupWorkflowId(RECEIVER, groupKeyOf('HighErrorRate')), state.workflowId].sort(),
    );
  }, 60_000);
});
