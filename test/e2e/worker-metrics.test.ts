/**
 * Self-monitoring on a real dev server (issue 11, "Readiness and self-monitoring"):
 * - the worker process (`node src/worker.ts`, a child process: the SDK's runtime is installed once per
 *   process) with `WORKER_METRICS_ADDRESS` serves the Temporal SDK's Prometheus metrics; after one incident
 *   has run to its end, a scrape has the SDK's real series for this task queue (task slots, workflow and
 *   activity outcomes and latencies, Temporal requests), in the names the shipped rules use
 *   (deploy/prometheus/self-monitoring.yml);
 * - the API (in this process, as deployed) takes Prometheus' Watchdog alert as a heartbeat of the
 *   receiver's watchdog workflow, which that worker runs: 202, no incident.
 */
import { loopbackEnv } from '../support/loopback-env.ts';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/lib/ports.ts';
import type { ManagedProcess } from '../../scripts/lib/process.ts';
import { startProcess } from '../../scripts/lib/process.ts';
import { loadSettings } from '../../src/config.ts';
import type { Settings } from '../../src/config.ts';
import { incidentIdFrom } from '../../src/contract/incident-id.ts';
import { INCIDENT_WORKFLOW_TYPE, OPERATIONS } from '../../src/contract/messages.ts';
import type { IncidentInput } from '../../src/contract/messages.ts';
import { watchdogStateQuery } from '../../src/contract/watchdog.ts';
import { declaredWorkflowId, watchdogWorkflowId } from '../../src/contract/workflow-ids.ts';
import { startApi } from '../../src/starter/api/server.ts';
import { TemporalIncidents } from '../../src/starter/client/incidents.ts';
import { workerMetricsAddress } from '../../src/worker.ts';
import { alertmanagerPayload } from '../support/alerts.ts';
import { eventually } from '../support/eventually.ts';
import { startTestDevServer } from '../support/temporal.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

let server: Awaited<ReturnType<typeof startTestDevServer>>;
let worker: ManagedProcess;
let workerLines: string[];
let metricsUrl: string;
let dataDir: string;
let env: NodeJS.ProcessEnv;
let settings: Settings;
let client: Client;
let api: { app: FastifyInstance; address: string };
const webhookToken = `am-${randomUUID()}`;

beforeAll(async () => {
  server = await startTestDevServer();
  dataDir = await mkdtemp(path.join(tmpdir(), 'pno-worker-metrics-'));
  const port = await freePort();
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  env = {
    ...loopbackEnv(),
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: `e2e-worker-metrics-${randomUUID()}`,
    WORKER_METRICS_ADDRESS: `127.0.0.1:${port}`,
    // No provider: messages go to a local outbox, so deliveries succeed without any network.
    INCIDENT_OUTBOX: path.join(dataDir, 'outbox.jsonl'),
    INCIDENT_DATA_DIR: dataDir,
    ALERTMANAGER_WEBHOOK_TOKEN: webhookToken,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
  };
  for (const name of ['SLACK_BOT_TOKEN', 'SLACK_API_URL']) delete env[name];
  settings = loadSettings(env);
  workerLines = [];
  worker = startProcess(process.execPath, [path.join(ROOT, 'src/worker.ts')], {
    cwd: ROOT,
    env,
    stopGraceMs: 10_000,
    tailLines: 80,
    onLine: (line) => {
      workerLines.push(line);
      if (process.env['TEST_WORKER_LOG']) process.stderr.write(`[worker] ${line}\n`);
    },
  });
  await eventually(
    'the worker polling its task queue',
    () => {
      if (worker.hasExited) throw new Error(`the worker exited:\n${worker.tail().join('\n')}`);
      return workerLines.some((l) => l.startsWith('worker polling task queue')) ? true : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 200 },
  );
  client = new Client({ connection: await Connection.connect({ address: server.address }) });
  api = await startApi(settings, env);
}, 180_000);

afterAll(async () => {
  await api?.app.close();
  await worker?.stop();
  await client?.connection.close();
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** The samples of a Prometheus text page: `name{labels} value` lines, comments left out. */
function samples(text: string): { name: string; labels: string; value: number }[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
      if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
      return { name: match[1] ?? '', labels: match[2] ?? '', value: Number(match[3]) };
    });
}

describe('worker metrics through the SDK’s Prometheus exporter', () => {
  it('WORKER_METRICS_ADDRESS is host:port or refused', () => {
    expect(workerMetricsAddress({})).toBeUndefined();
    expect(workerMetricsAddress({ WORKER_METRICS_ADDRESS: ' ' })).toBeUndefined();
    expect(workerMetricsAddress({ WORKER_METRICS_ADDRESS: '0.0.0.0:9464' })).toBe('0.0.0.0:9464');
    expect(workerMetricsAddress({ WORKER_METRICS_ADDRESS: '[::]:9464' })).toBe('[::]:9464');
    for (const bad of ['9464', 'localhost', '0.0.0.0:99999', 'http://0.0.0.0:9464'])
      expect(() => workerMetricsAddress({ WORKER_METRICS_ADDRESS: bad }), bad).toThrow(
        /WORKER_METRICS_ADDRESS/,
      );
  });

  it('after one incident ran to its end, the scrape has the SDK’s series for the task queue', async () => {
    expect(workerLines).toContain(`worker metrics (Temporal SDK) on ${metricsUrl}`);
    // One declared P3 incident, resolved by an engineer: its run completes.
    const incidentId = incidentIdFrom(randomUUID());
    const handle = await client.workflow.start(INCIDENT_WORKFLOW_TYPE, {
      taskQueue: settings.temporal.taskQueue,
      workflowId: declaredWorkflowId(incidentId),
      args: [
        {
          incidentId,
          policy: settings.policy,
          declared: { by: 'alice', title: 'Metrics e2e', severity: 'P3' },
        } satisfies IncidentInput,
      ],
    });
    await handle.executeUpdate(OPERATIONS.resolve.update, {
      args: [{ by: 'alice', rootCause: 'test over' }],
    });
    expect(await handle.result()).toMatchObject({ id: incidentId, status: 'resolved' });
    const queue = `task_queue="${settings.temporal.taskQueue}"`;
    const text = await eventually(
      'the completed incident in the worker’s metrics',
      async () => {
        const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) });
        expect(res.status).toBe(200);
        const body = await res.text();
        const done = samples(body).some(
          (s) =>
            s.name === 'temporal_workflow_completed_total' &&
            s.labels.includes(queue) &&
            s.labels.includes('workflow_type="incidentWorkflow"') &&
            s.value >= 1,
        );
        return done ? body : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const ours = samples(text).filter((s) => s.labels.includes(queue));
    const names = new Set(ours.map((s) => s.name));
    if (process.env['TEST_WORKER_LOG']) console.log([...names].sort().join('\n'));
    for (const name of [
      'temporal_worker_task_slots_available',
      'temporal_worker_task_slots_used',
      'temporal_workflow_task_schedule_to_start_latency_seconds_bucket',
      'temporal_workflow_task_execution_latency_seconds_bucket',
      'temporal_activity_execution_latency_seconds_bucket',
      'temporal_activity_schedule_to_start_latency_seconds_bucket',
      'temporal_workflow_endtoend_latency_seconds_bucket',
      'temporal_long_request_total',
      'temporal_workflow_task_queue_poll_succeed_total',
    ])
      expect(names, name).toContain(name);
    // Temporal requests the worker made (not per task queue), by operation.
    expect(
      samples(text).some((s) => s.name === 'temporal_request_total' && s.labels.includes('operation="')),
    ).toBe(true);
    // The activities the incident ran (the deliveries) completed, on this task queue.
    expect(
      ours.some(
        (s) =>
          s.name === 'temporal_activity_execution_latency_seconds_count' &&
          s.labels.includes('activity_type="deliver"') &&
          s.value >= 1,
      ),
    ).toBe(true);
    // Slots of both kinds, each a number.
    const slots = ours.filter((s) => s.name === 'temporal_worker_task_slots_available');
    expect(slots.map((s) => /worker_type="(\w+)"/.exec(s.labels)?.[1]).sort()).toEqual(
      expect.arrayContaining(['ActivityWorker', 'WorkflowWorker']),
    );
    for (const s of slots) expect(s.value).toBeGreaterThan(0);
  });
});

describe('the Watchdog through the deployed API and this worker', () => {
  it('answers 202, opens no incident, and keeps the receiver’s watchdog workflow alive', async () => {
    const receiver = `am-${randomUUID().slice(0, 8)}`;
    const post = () =>
      fetch(`${api.address}/webhooks/alertmanager`, {
        method: 'POST',
        headers: { authorization: `Bearer ${webhookToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(
          alertmanagerPayload({
            receiver,
            groupKey: '{}/{alertname="Watchdog"}:{alertname="Watchdog"}',
            alerts: [{ labels: { alertname: 'Watchdog', severity: 'none' } }],
          }),
        ),
      });
    const before = (
      await new TemporalIncidents(client, settings.temporal.taskQueue, settings.policy).listIncidents()
    ).length;
    for (let i = 0; i < 2; i++) {
      const res = await post();
      expect(res.status).toBe(202);
      expect(await res.json()).toEqual({
        incidents: [],
        watchdog: { workflowId: watchdogWorkflowId(receiver), action: 'heartbeat' },
      });
    }
    const handle = client.workflow.getHandle(watchdogWorkflowId(receiver));
    const state = await eventually('both heartbeats counted', async () => {
      const s = await handle.query(watchdogStateQuery);
      return s.heartbeats === 2 ? s : undefined;
    });
    expect(state).toMatchObject({
      receiver,
      status: 'alive',
      settings: { alertname: 'Watchdog', timeoutMs: 600_000 },
    });
    expect(Date.parse(state.silentAt ?? '') - Date.parse(state.lastHeartbeatAt ?? '')).toBe(600_000);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    const incidents = new TemporalIncidents(client, settings.temporal.taskQueue, settings.policy);
    expect((await incidents.listIncidents()).length).toBe(before);
    await handle.terminate('test over');
  });
});
