/**
 * Temporal goes away while Alertmanager is delivering an alert group: the webhook answers 503 with
 * Retry-After (so Alertmanager keeps retrying instead of dropping the group), `/readyz` says not ready, and
 * once the dev server is back on the same port and database the API's lazy client and the worker reconnect
 * by themselves and Alertmanager's retry creates the incident exactly once.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../../src/config.ts';
import { TemporalIncidents } from '../../src/starter/client/incidents.ts';
import { alertGroupWorkflowId } from '../../src/contract/workflow-ids.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { eventually } from '../support/eventually.ts';
import { readMetric } from '../support/prometheus.ts';
import type { Daemon } from '../support/prometheus.ts';
import type { Stack } from '../support/stack.ts';
import type { startTestDevServer } from '../support/temporal.ts';
import type { TestService } from '../support/test-service.ts';
import { RECEIVER, startMonitoredStack } from '../support/monitored.ts';
import type { MonitoredStack } from '../support/monitored.ts';

const GROUP_KEY = '{}:{alertname="HighErrorRate"}';

let server: Awaited<ReturnType<typeof startTestDevServer>>;
let monitored: MonitoredStack;
let stack: Stack;
let worker: Worker;
let api: { app: FastifyInstance; address: string };
let service: TestService;
let alertmanager: Daemon;
let settings: Settings;

beforeAll(async () => {
  monitored = await startMonitoredStack('e2e-outage');
  ({ server, stack, service, alertmanager } = monitored);
  ({ api, worker, settings } = stack);
});

afterAll(async () => {
  await monitored?.stop();
});

/**
 * How long the API may take to say "Temporal is unreachable": its calls carry deadlines (5 s for the
 * webhook's signal-with-start, 2 s for /readyz) and their retries end by them (src/starter/client/connection.ts;
 * without that the SDK's backoff ran past them, to 6–7.5 s), so the answer is a prompt 503 (4 s here): the
 * deadline and a second for a loaded machine, well inside Alertmanager's 10 s request timeout.
 */
const UNAVAILABLE_ANSWER_MS = 6_000;

const apiMetric = (name: string, labels: Record<string, string> = {}) =>
  readMetric(`${api.address}/metrics`, name, labels);
const readyz = async () =>
  (await fetch(`${api.address}/readyz`, { signal: AbortSignal.timeout(UNAVAILABLE_ANSWER_MS + 5_000) }))
    .status;

describe('a Temporal outage while Alertmanager delivers', () => {
  it('answers 503 + Retry-After while Temporal is down; after its restart the incident is created exactly once', async () => {
    expect(await readyz()).toBe(200);

    // Temporal crashes before the alert reaches it; then the alert fires.
    server.kill9();
    await server.exited;
    service.setErrorRatio(0.5);

    // What Alertmanager is told, seen directly: 503 with Retry-After (never a 4xx it would drop), and
    // /readyz 503.
    const probe = async () => {
      const started = Date.now();
      const res = await fetch(`${api.address}/webhooks/alertmanager`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.webhookToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(alertmanagerPayload({ groupKey: `{}:{probe="${randomUUID()}"}` })),
        signal: AbortSignal.timeout(UNAVAILABLE_ANSWER_MS + 5_000),
      });
      return { res, ms: Date.now() - started };
    };
    const [webhook, ready] = await Promise.all([probe(), readyz()]);
    expect(webhook.res.status).toBe(503);
    expect(Number(webhook.res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await webhook.res.json()) as { error: { code: string } }).error.code).toBe(
      'TEMPORAL_UNAVAILABLE',
    );
    expect(webhook.ms).toBeLessThan(UNAVAILABLE_ANSWER_MS);
    expect(ready).toBe(503);

    // Alertmanager is delivering the firing group meanwhile, and failing: the API refused its requests
    // (the probe was one refusal) and Alertmanager counts failed attempts it will retry.
    await eventually(
      'Alertmanager deliveries refused while Temporal is down',
      async () =>
        (await apiMetric('incident_webhook_rejected_total', { reason: 'temporal_unavailable' })) >= 2 &&
        (await readMetric(`${alertmanager.url}/metrics`, 'alertmanager_notification_requests_failed_total', {
          integration: 'webhook',
        })) >= 1
          ? true
          : undefined,
      { timeoutMs: UNAVAILABLE_ANSWER_MS + 20_000, intervalMs: 500 },
    );
    expect(await apiMetric('incident_webhook_groups_total', { action: 'started' })).toBe(0);

    // Temporal comes back on the same port and database. The worker survived the outage and polls again;
    // the API's lazy client reconnects by itself.
    server = await server.restart();
    monitored.server = server;
    await eventually(
      '/readyz 200 after the restart',
      async () => ((await readyz()) === 200 ? true : undefined),
      {
        timeoutMs: 30_000,
        intervalMs: 500,
      },
    );
    expect(stack.workerFailure()).toBeUndefined();
    expect(worker.getState()).toBe('RUNNING');

    // Alertmanager's retry creates the incident, once.
    const client = new Client({ connection: await Connection.connect({ address: server.address }) });
    try {
      const incidents = new TemporalIncidents(client, settings.temporal.taskQueue, settings.policy);
      const workflowId = alertGroupWorkflowId(RECEIVER, GROUP_KEY);
      const [incident] = await eventually(
        'the incident after the restart',
        async () => {
          const found = await incidents.listIncidents();
          return found.length > 0 ? found : undefined;
        },
        { timeoutMs: 45_000, intervalMs: 500 },
      );
      expect(incident).toMatchObject({ workflowId, severity: 'P1' });
      // Further redeliveries land in it.
      const signalledBefore = await apiMetric('incident_webhook_groups_total', { action: 'signalled' });
      await eventually(
        'a redelivery after the restart',
        async () =>
          (await apiMetric('incident_webhook_groups_total', { action: 'signalled' })) > signalledBefore
            ? true
            : undefined,
        { timeoutMs: 20_000 },
      );
      const all = await incidents.listIncidents();
      expect(all.map((i) => i.id)).toEqual([incident?.id]);
      expect(await apiMetric('incident_webhook_groups_total', { action: 'started' })).toBe(1);
      // Right after the restart Temporal lists no poller until the worker polls again: reads are refused
      // (503, "no worker is polling") for that moment, by design.
      const state = await eventually(
        'the worker to poll the restarted server',
        () => incidents.getIncident(incident?.id ?? '').catch(() => undefined),
        { timeoutMs: 45_000, intervalMs: 500 },
      );
      expect(state).toMatchObject({ mappingRule: 'high-error-rate', playbook: { name: 'highErrorRate' } });
      expect(state.alerts).toHaveLength(1);
      expect(state.timeline.filter((t) => t.kind === 'alert')).toHaveLength(1);
      // One run of the group's workflow: the retries never started a second one.
      const runs: string[] = [];
      for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
        runs.push(w.runId);
      expect(runs).toHaveLength(1);
    } finally {
      await client.connection.close();
    }
  }, 150_000);
});
