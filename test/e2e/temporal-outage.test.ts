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
import { loadSettings } from '../../src/config.ts';
import { TemporalIncidents, alertGroupWorkflowId } from '../../src/starter/incidents.ts';
import { startApi } from '../../src/starter/listen.ts';
import { createWorker } from '../../src/worker.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { eventually, readMetric, startAlertmanager, startPrometheus } from '../support/prometheus.ts';
import type { Daemon, PrometheusApi } from '../support/prometheus.ts';
import { SlackStandIn } from '../support/slack-server.ts';
import { startTestDevServer } from '../support/temporal.ts';
import { TestService } from '../support/test-service.ts';
import { workflowBundle } from '../support/workflow-env.ts';

const WEBHOOK_TOKEN = `am-${randomUUID()}`;
const SLACK_TOKEN = `xoxb-${randomUUID()}`;
const RECEIVER = 'incident-response';
const GROUP_KEY = '{}:{alertname="HighErrorRate"}';

let server: Awaited<ReturnType<typeof startTestDevServer>>;
let slack: SlackStandIn;
let worker: Worker;
let workerDone: Promise<void>;
let workerFailure: unknown;
let api: { app: FastifyInstance; address: string };
let service: TestService;
let alertmanager: Daemon;
let prometheus: Daemon & PrometheusApi;
let settings: ReturnType<typeof loadSettings>;

beforeAll(async () => {
  const [devServer, bundle] = await Promise.all([startTestDevServer(), workflowBundle()]);
  server = devServer;
  slack = new SlackStandIn({ token: SLACK_TOKEN });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: `e2e-outage-${randomUUID()}`,
    SLACK_API_URL: await slack.start(),
    SLACK_BOT_TOKEN: SLACK_TOKEN,
    ALERTMANAGER_WEBHOOK_TOKEN: WEBHOOK_TOKEN,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
  };
  settings = loadSettings(env);
  ({ worker } = await createWorker(settings, { workflowsPath: undefined, workflowBundle: bundle }, env));
  workerDone = worker.run().catch((err: unknown) => {
    workerFailure = err;
  });
  api = await startApi(settings, env);
  service = new TestService({ errorRatio: 0 });
  await service.start();
  alertmanager = await startAlertmanager({
    webhookUrl: `${api.address}/webhooks/alertmanager`,
    bearerToken: WEBHOOK_TOKEN,
    receiver: RECEIVER,
  });
  prometheus = await startPrometheus({ targets: [service.target], alertmanager: alertmanager.hostPort });
});

afterAll(async () => {
  await prometheus?.stop();
  await alertmanager?.stop();
  await service?.stop();
  await api?.app.close();
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await workerDone;
  await slack?.stop();
  await server?.stop();
});

const apiMetric = (name: string, labels: Record<string, string> = {}) =>
  readMetric(`${api.address}/metrics`, name, labels);
const readyz = async () => (await fetch(`${api.address}/readyz`, { signal: AbortSignal.timeout(15_000) })).status;

describe('a Temporal outage while Alertmanager delivers', () => {
  it('answers 503 + Retry-After while Temporal is down; after its restart the incident is created exactly once', async () => {
    expect(await readyz()).toBe(200);

    // Temporal crashes before the alert reaches it.
    server.kill9();
    await server.exited;
    await eventually('/readyz 503', async () => ((await readyz()) === 503 ? true : undefined), {
      timeoutMs: 20_000,
    });

    // The alert fires; Alertmanager's deliveries are refused with 503 and retried.
    service.setErrorRatio(0.5);
    await eventually(
      'Alertmanager deliveries refused with 503',
      async () =>
        (await apiMetric('incident_webhook_rejected_total', { reason: 'temporal_unavailable' })) >= 2
          ? true
          : undefined,
      { timeoutMs: 45_000, intervalMs: 500 },
    );
    expect(
      await readMetric(`${alertmanager.url}/metrics`, 'alertmanager_notification_requests_failed_total', {
        integration: 'webhook',
      }),
    ).toBeGreaterThanOrEqual(1);
    // What Alertmanager is told, seen directly: 503 with Retry-After, never a 4xx it would drop.
    const probeStarted = Date.now();
    const probe = await fetch(`${api.address}/webhooks/alertmanager`, {
      method: 'POST',
      headers: { authorization: `Bearer ${WEBHOOK_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(alertmanagerPayload({ groupKey: `{}:{probe="${randomUUID()}"}` })),
    });
    const probeMs = Date.now() - probeStarted;
    expect(probe.status).toBe(503);
    expect(Number(probe.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await probe.json()) as { error: { code: string } }).error.code).toBe('TEMPORAL_UNAVAILABLE');
    expect(await readyz()).toBe(503);
    console.log(`webhook answered 503 in ${probeMs} ms while Temporal was down`);

    // Temporal comes back on the same port and database.
    const downAt = Date.now();
    server = await server.restart();
    console.log(`dev server restarted after ${Date.now() - downAt} ms`);

    // The worker survived the outage and polls again; the API's lazy client reconnected.
    const readyAfterMs = Date.now();
    await eventually('/readyz 200 after the restart', async () => ((await readyz()) === 200 ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    console.log(`ready ${Date.now() - readyAfterMs} ms after the restart`);
    expect(workerFailure).toBeUndefined();
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
      const state = await incidents.getIncident(incident?.id ?? '');
      expect(state.alerts).toHaveLength(1);
      expect(state.timeline.filter((t) => t.kind === 'alert')).toHaveLength(1);
      // Every run of this workflow id: one.
      const runs: string[] = [];
      for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(w.runId);
      expect(runs).toHaveLength(1);
    } finally {
      await client.connection.close();
    }
  }, 150_000);
});
